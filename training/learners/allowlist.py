"""Which modules a process may import learner code from: the operator's allow-list.

The project's own package (``training``) is always allowed; ``PERENNIAL_ALLOWED_MODULES``
adds comma-separated prefixes (``acme,models.team``). A prefix allows the module of that
name and everything inside it, on a dot boundary: ``acme`` allows ``acme.nets`` but not
``acme_evil``. Factories named on a flag, in a candidates file or in a registry version's
metadata, and snapshot classes, are all checked here before anything is imported.

>>> is_allowed("training.learners.river"), is_allowed("os"), is_allowed("acme.nets", extra=["acme"])
(True, False, True)
>>> is_allowed("acme_evil", extra=["acme"])
False
"""

from __future__ import annotations

import os
from collections.abc import Iterable

ALLOWED_ENV = "PERENNIAL_ALLOWED_MODULES"
OWN_PACKAGE = "training"


class ModuleNotAllowedError(ValueError):
    """A factory's or snapshot class's module is outside the allow-list; the message names
    the module and the setting that would allow it."""


def allowed_prefixes(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The project's own package, the ``PERENNIAL_ALLOWED_MODULES`` prefixes and ``extra``."""
    listed = [p.strip().rstrip(".") for p in os.environ.get(ALLOWED_ENV, "").split(",")]
    return tuple(dict.fromkeys([OWN_PACKAGE, *(p for p in listed if p), *extra]))


def is_allowed(module: str, extra: Iterable[str] = ()) -> bool:
    """True when ``module`` is an allowed prefix or inside one (see module docstring)."""
    return any(module == p or module.startswith(p + ".") for p in allowed_prefixes(extra))


def require_allowed(module: str, what: str, extra: Iterable[str] = ()) -> None:
    """Raise `ModuleNotAllowedError` naming ``what`` unless ``module`` is allowed."""
    if not is_allowed(module, extra):
        raise ModuleNotAllowedError(
            f"module {module!r} of {what} is not allowed: {ALLOWED_ENV} allows "
            f"{', '.join(allowed_prefixes(extra))} only; add the module's package to it (comma-separated prefixes)"
        )


def allow(prefix: str) -> None:
    """Add ``prefix`` to this process's allow-list (``perennial check`` allows the module the
    user named on its command line)."""
    if not is_allowed(prefix):
        current = os.environ.get(ALLOWED_ENV, "")
        os.environ[ALLOWED_ENV] = f"{current},{prefix}" if current else prefix
