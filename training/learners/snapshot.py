"""Learner snapshots: bytes plus the two facts needed to turn them back into a learner.

A snapshot is ``(format, class_path, data)``. ``format`` is the learner's `snapshot_format`
("pickle" or "torch"); ``class_path`` is ``module:QualName`` of the learner class. Loading
refuses any class that is not a `Learner` defined in an allowed module (the ``training``
package, and the operator's ``PERENNIAL_ALLOWED_MODULES``; `training.learners.allowlist`),
so a tampered metadata file cannot make us import arbitrary code. Integrity and signatures are
the registry's job and are checked *before* `loads` is called.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from training.learners.allowlist import require_allowed
from training.learners.base import Learner


class SnapshotError(ValueError):
    """A snapshot names a class or format we refuse to load."""


@dataclass(frozen=True)
class Snapshot:
    format: str
    class_path: str
    data: bytes


def dumps(learner: Learner) -> Snapshot:
    cls = type(learner)
    return Snapshot(learner.snapshot_format, f"{cls.__module__}:{cls.__qualname__}", learner.to_bytes())


def resolve_class(class_path: str) -> type[Learner]:
    module_name, _, qualname = class_path.partition(":")
    if not module_name or not qualname:
        raise SnapshotError(f"snapshot class {class_path!r} is not a learner class (expected 'module:Class')")
    require_allowed(module_name, f"snapshot class {class_path!r}")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise SnapshotError(f"cannot import module {module_name!r} of snapshot class {class_path!r}: {e}") from e
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise SnapshotError(f"snapshot class {class_path!r} does not exist")
    if not (isinstance(obj, type) and issubclass(obj, Learner)):
        raise SnapshotError(f"snapshot class {class_path!r} is not a Learner")
    return obj


def loads(snapshot: Snapshot) -> Learner:
    cls = resolve_class(snapshot.class_path)
    if cls.snapshot_format != snapshot.format:
        raise SnapshotError(
            f"snapshot format {snapshot.format!r} does not match {snapshot.class_path} "
            f"(which writes {cls.snapshot_format!r})"
        )
    return cls.from_bytes(snapshot.data)
