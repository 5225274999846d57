"""Refuse to run with a secret everybody knows, unless nothing outside this machine can reach us.

Why: the shipped examples once carried placeholder keys (``replace-me-…``, the compose
default) and the trainer falls back to a public development key for checkpoints. A registry
key anyone knows lets anyone forge a "signed" model; an admin token anyone knows lets anyone
promote. On loopback-only settings (a laptop, the demo, tests) that is harmless and
convenient; anywhere else the process refuses to start and says which setting to change.
An explicit opt-out (``PERENNIAL_ALLOW_INSECURE_SECRETS=true``) exists for demos on a LAN.

>>> is_known_placeholder("replace-me-with-a-random-secret"), is_known_placeholder("9f2c…")
(True, False)
>>> loopback_only(["127.0.0.1", "localhost:9092"]), loopback_only(["0.0.0.0"])
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: The checkpoint key the trainer uses when no key is configured (public, in this repository).
DEVELOPMENT_KEY = "perennial-development-key-NOT-SECRET"

#: Values shipped in examples and defaults of this repository, and the usual placeholder words.
KNOWN_PLACEHOLDERS = {
    DEVELOPMENT_KEY,
    "local-compose-key-not-for-production",
    "replace-me-with-a-random-secret",
    "replace-me-with-a-random-token",
}
_PLACEHOLDER_PREFIXES = ("replace-me", "changeme", "change-me", "change_me", "placeholder")


class InsecureSecretError(ValueError):
    """A known placeholder or development secret on settings reachable from other machines."""


def is_known_placeholder(value: str | None) -> bool:
    if not value:
        return False
    v = value.strip().lower()
    return value.strip() in KNOWN_PLACEHOLDERS or v.startswith(_PLACEHOLDER_PREFIXES) or "not-for-production" in v


def loopback_only(addresses: Iterable[str]) -> bool:
    """True when every address (``host`` or ``host:port``, comma lists allowed) is a loopback one."""
    hosts = []
    for entry in addresses:
        for part in str(entry).split(","):
            part = part.strip()
            if not part:
                continue
            host = part.rsplit(":", 1)[0] if part.count(":") == 1 else part.strip("[]").removesuffix("]")
            hosts.append(host.strip("[]"))
    return bool(hosts) and all(h in ("localhost", "::1") or h.startswith("127.") for h in hosts)


def refuse_insecure_secrets(secrets: Mapping[str, object], addresses: Iterable[str], allow: bool) -> None:
    """Raise `InsecureSecretError` naming each setting that holds a known secret, unless allowed."""
    if allow or loopback_only(addresses):
        return
    bad = []
    for name, value in secrets.items():
        text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        if isinstance(text, str) and is_known_placeholder(text):
            bad.append(name)
    if bad:
        raise InsecureSecretError(
            f"{', '.join(bad)} holds a placeholder or development value known to everyone, and this process is "
            f"reachable beyond loopback ({', '.join(map(str, addresses))}). Set a random secret "
            "(e.g. `openssl rand -hex 32`), or bind to 127.0.0.1, or set PERENNIAL_ALLOW_INSECURE_SECRETS=true "
            "for a demo."
        )
