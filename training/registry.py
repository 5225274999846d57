"""The model registry: immutable, signed versions and atomically moved aliases on a file system.

Why a directory tree and not a database: the trainer writes and every serving replica reads
the same shared volume, and POSIX gives us exactly the atomic steps needed (see
`training.registry_files`). The layout::

    <root>/<model>/versions/<n>/artifact.bin    learner bytes (training.learners.snapshot)
                               /metadata.json   every VersionInfo field
                               /signature       hex HMAC-SHA256(metadata.json + artifact)
    <root>/<model>/aliases/<name>               "<n>\\n", replaced atomically
    <root>/<model>/decisions.jsonl              append-only log of alias moves, with reasons
    <root>/<model>/lineage                      random id written with the model's first version

Guarantees:

- A reader never sees a half-written version: a version is written into a scratch folder in
  the model directory, fsynced, and renamed to ``versions/<n>`` in one step. Two publishers
  racing for the same ``n`` cannot both win the rename; the loser re-signs for ``n + 1``.
- Nothing is deserialized before it verifies: the artifact's SHA-256 must match the
  metadata, and the HMAC (keyed from ``PERENNIAL_REGISTRY_KEY``) must match the exact bytes
  of metadata.json and artifact together, so neither can be altered, swapped, or replayed
  under another model/version (the metadata names both). Pickles run code when loaded,
  hence the key; "torch" artifacts are signed and checked too, and their class loads them
  with ``weights_only=True``.
- The champion never moves to a version that fails to load; a corrupt or unsigned version is
  refused (`IntegrityError`) and the last good one keeps serving.
- Rollback sets ``champion := previous`` and *clears* ``previous``: the rolled-back version
  was judged worse, so a second rollback must not bring it back (ping-pong); it raises
  instead. The rolled-back version stays on disk (unaliased) and in the decision log.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import importlib.util
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from training.learners import snapshot
from training.learners.allowlist import ALLOWED_ENV, allowed_prefixes, is_allowed
from training.learners.base import Learner
from training.learners.factories import factory_of
from training.lineage import Origin, legacy_origin
from training.registry_files import (
    append_line,
    atomic_write_bytes,
    create_once,
    file_lock,
    numbered_entries,
    publish_numbered_dir,
    read_files,
    read_json_lines,
    read_with_stat,
    remove_durable,
    remove_tree,
    sweep_scratch,
)
from training.spec import ModelSpec, numeric_spec

log = logging.getLogger(__name__)

KEY_ENV = "PERENNIAL_REGISTRY_KEY"
CHAMPION = "champion"
PREVIOUS = "previous"
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ALIAS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
LINEAGE_FILE = "lineage"
_LINEAGE = re.compile(r"^[0-9a-f]{32}$")
_DEV_KEY = b"perennial-development-key-NOT-SECRET"


class RegistryError(Exception):
    """A registry operation could not be done; the message names the value at fault."""


class VersionNotFoundError(RegistryError):
    """The model, version or alias asked for does not exist (or was pruned meanwhile)."""


class IntegrityError(RegistryError):
    """A stored version cannot be trusted or used: checksum, signature or metadata is wrong."""


class RefusedModuleError(IntegrityError):
    """A verified version names code this process may not import: its factory or learner
    class lives in a module outside ``PERENNIAL_ALLOWED_MODULES``, or that module cannot be
    imported here. Refused like a corrupt version (the last good one keeps serving)."""


@dataclass(frozen=True)
class VersionInfo:
    """Everything `metadata.json` records about one immutable version."""

    model: str
    version: int
    learner: str
    format: str
    class_path: str
    parent: int | None
    created_at: str
    metrics: dict
    data_range: dict
    reference: dict | None
    note: str
    sha256: str
    origin: Origin = Origin.MANUAL  # lineage: how it was made (``parent`` says from what)
    #: the model spec (`training.spec.ModelSpec.to_dict`); None in versions written before it
    spec: dict | None = None
    #: ``module:factory`` the learner was built from, and its keyword parameters, for a
    #: user's learner (`training.learners.factories`); None for the built-ins and in older
    #: versions. Loading refuses a version whose factory module is not allowed.
    factory: str | None = None
    factory_params: dict | None = None

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "origin": str(self.origin)}

    @classmethod
    def from_dict(cls, d: dict) -> VersionInfo:
        fields = [f for f in dataclasses.fields(cls) if f.name != "origin"]
        missing = [f.name for f in fields if f.name not in d
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"metadata lacks fields {missing}")
        # versions written before the field existed: their note is all there is to go by
        origin = Origin(d["origin"]) if "origin" in d else legacy_origin(str(d["note"]))
        return cls(**{f.name: d[f.name] for f in fields if f.name in d}, origin=origin)


def model_spec(info: VersionInfo, learner: Learner) -> ModelSpec:
    """The spec of a version: as stored, or (versions from before the spec) the numeric spec
    its learner implies."""
    if info.spec is not None:
        return ModelSpec.from_dict(info.spec)
    if learner.spec is not None:
        return learner.spec
    return numeric_spec(learner.n_features_in, learner.classes or None)


def _check_modules(info: VersionInfo) -> None:
    """Refuse, before anything is deserialized, a version whose factory or learner class is
    outside the allow-list or cannot be imported (`RefusedModuleError`, with the reason)."""
    where = f"model {info.model!r} version {info.version}"
    paths = [("factory", info.factory)] if info.factory else []
    paths.append(("learner class", info.class_path))
    for what, path in paths:
        module = str(path).partition(":")[0]
        if not is_allowed(module):
            raise RefusedModuleError(
                f"{where} is refused: its {what} {path!r} is in module {module!r}, which {ALLOWED_ENV} does "
                f"not allow (allowed: {', '.join(allowed_prefixes())}); add the package to {ALLOWED_ENV} to serve it"
            )
        if importlib.util.find_spec(module.split(".")[0]) is None:
            raise RefusedModuleError(f"{where} is refused: its {what} {path!r} cannot be imported "
                                     f"(no module {module.split('.')[0]!r} on this process's path)")


@dataclass(frozen=True)
class LoadedVersion:
    info: VersionInfo
    learner: Learner


@functools.cache
def _warn_dev_key_once() -> None:
    log.warning(
        "%s is not set: registry pickles are signed with a public development key, so anyone "
        "who can write to the registry can make this process run code. Set %s to a secret in "
        "production.", KEY_ENV, KEY_ENV,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_name(kind: str, name: object, pattern: re.Pattern[str]) -> str:
    if not isinstance(name, str) or not pattern.fullmatch(name):
        uses = "a path and Kafka topic names" if kind == "model" else "a file name"
        raise RegistryError(
            f"invalid {kind} name {name!r}: it becomes {uses}, so it must match "
            f"{pattern.pattern} (letters, digits, '.', '_', '-'; at most 64 characters)"
        )
    return name


def _check_version(version: object, what: str = "version") -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RegistryError(f"invalid {what} {version!r}: versions are integers >= 1")
    return version


class Registry:
    """A registry rooted at `root`; cheap to construct, safe to share between processes.

    `key` signs and verifies artifacts (bytes or str; default: the ``PERENNIAL_REGISTRY_KEY``
    environment variable, else a public development key with a warning). `retain` is how
    many unaliased versions `prune` keeps per model besides every aliased one.
    """

    def __init__(self, root: str | Path, key: bytes | str | None = None, retain: int = 10):
        self.root = Path(root)
        if key is None:
            key = os.environ.get(KEY_ENV) or None
            if key is None:  # warned about when first used: listing versions signs nothing
                key = _DEV_KEY
        if not isinstance(key, str | bytes | bytearray) or not key:
            raise RegistryError(f"invalid registry key of type {type(key).__name__}: "
                                "pass non-empty bytes or str, or None for the environment")
        self._key = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if isinstance(retain, bool) or not isinstance(retain, int) or retain < 1:
            raise RegistryError(f"invalid retain {retain!r}: keep at least 1 unaliased version")
        self.retain = retain

    def _model_dir(self, model: str, *, must_exist: bool = True) -> Path:
        d = self.root / _check_name("model", model, MODEL_NAME)
        if must_exist and not (d / "versions").is_dir():
            raise VersionNotFoundError(
                f"no model {model!r} in registry {self.root}; known models: {self.models()}"
            )
        return d

    def models(self) -> list[str]:
        """Names of models that have a versions folder, sorted."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(
            n for n in names if MODEL_NAME.fullmatch(n) and (self.root / n / "versions").is_dir()
        )

    def lineage(self, model: str) -> str:
        """This registry's id for `model`: random, written with its first version (or here,
        for a model registered before lineage ids existed), never changed after.

        Why: a trainer's checkpoint must continue *this* registry's model, not a namesake in
        another registry (or one that was deleted and bootstrapped again); the checkpoint
        stores the id and the trainer compares it before resuming.
        """
        return _lineage_of(self._model_dir(model))

    def versions(self, model: str) -> list[VersionInfo]:
        """All readable versions, ascending. A damaged one is skipped with a warning (so one
        bad folder does not hide the others); `info` and `load` raise for it."""
        out = []
        for n in numbered_entries(self._model_dir(model) / "versions"):
            try:
                out.append(self.info(model, n))
            except VersionNotFoundError:
                continue  # pruned while we listed
            except IntegrityError as e:
                log.warning("skipping %s", e)
        return out

    def info(self, model: str, version: int) -> VersionInfo:
        """Metadata of one version (not signature-checked; `load` checks everything)."""
        return self._read(model, _check_version(version), verify=False)[0]

    def _signature(self, metadata: bytes, artifact: bytes) -> str:
        """HMAC over the metadata *bytes* as stored, so verifying never depends on how a
        later version of this code would re-serialize them."""
        if self._key == _DEV_KEY:
            _warn_dev_key_once()
        mac = hmac.new(self._key, len(metadata).to_bytes(8, "big") + metadata, hashlib.sha256)
        mac.update(artifact)
        return mac.hexdigest()

    def _read(self, model: str, version: int, *, verify: bool = True) -> tuple[VersionInfo, bytes]:
        """Metadata and artifact of a version; with `verify`, only if checksum and signature
        both verify. Nothing here deserializes anything but JSON."""
        where = f"model {model!r} version {version}"
        vdir = self._model_dir(model) / "versions" / str(version)
        wanted = ("metadata.json", "artifact.bin", "signature") if verify else ("metadata.json",)
        files = read_files(vdir, wanted)
        if files is None:  # never published, or pruned while we read
            known = numbered_entries(vdir.parent)
            raise VersionNotFoundError(f"{where} does not exist; versions: {known}")
        if missing := [name for name, data in files.items() if data is None]:
            unsigned = missing == ["signature"]
            what = "unsigned (no signature file)" if unsigned else f"missing {', '.join(missing)}"
            raise IntegrityError(f"{where} is refused: {what}")
        try:
            info = VersionInfo.from_dict(json.loads(files["metadata.json"]))
        except (ValueError, TypeError) as e:
            raise IntegrityError(f"{where} is refused: metadata.json is invalid ({e})") from e
        if info.model != model or info.version != version:
            raise IntegrityError(
                f"{where} is refused: its metadata says model {info.model!r} version "
                f"{info.version} (a version folder was copied or renamed)"
            )
        if not verify:
            return info, b""
        artifact = files["artifact.bin"]
        digest = hashlib.sha256(artifact).hexdigest()
        if not hmac.compare_digest(digest.encode(), str(info.sha256).encode("utf-8")):
            raise IntegrityError(
                f"{where} is refused: corrupt artifact (checksum {digest}, metadata says {info.sha256})"
            )
        expected = self._signature(files["metadata.json"], artifact).encode()
        if not hmac.compare_digest(expected, files["signature"].strip()):
            raise IntegrityError(
                f"{where} is refused: signature does not verify (signed with another key, "
                f"or artifact/metadata tampered); check {KEY_ENV}"
            )
        return info, artifact

    def load(self, model: str, version: int | str = CHAMPION) -> LoadedVersion:
        """Verify, then deserialize a version given by number or alias name.

        An alias is re-resolved if the version it named vanished meanwhile (the alias moved
        and the old version was pruned), so a polling server sees old or new, never an error.
        """
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        if not isinstance(version, str):
            return self._load_number(model, _check_version(version))
        for _ in range(5):
            number = self.alias(model, version)
            if number is None:
                raise VersionNotFoundError(
                    f"model {model!r} has no {version!r} alias; aliases: {self._aliases(model)}"
                )
            try:
                return self._load_number(model, number)
            except VersionNotFoundError:
                if self.alias(model, version) == number:
                    raise
        raise RegistryError(f"alias {version!r} of model {model!r} kept moving while loading")

    def _load_number(self, model: str, version: int) -> LoadedVersion:
        info, artifact = self._read(model, version)
        _check_modules(info)
        try:
            learner = snapshot.loads(snapshot.Snapshot(info.format, info.class_path, artifact))
        except Exception as e:
            raise IntegrityError(
                f"model {model!r} version {version} verified but could not be deserialized "
                f"as {info.class_path} ({info.format}): {e}"
            ) from e
        return LoadedVersion(info, learner)

    def alias(self, model: str, name: str) -> int | None:
        """The version an alias points at, or None when it is not set."""
        path = self._model_dir(model) / "aliases" / _check_name("alias", name, ALIAS_NAME)
        try:
            text = path.read_bytes().decode("ascii", "replace").strip()
        except FileNotFoundError:
            return None
        if not text.isdigit():
            raise IntegrityError(f"alias {name!r} of model {model!r} holds {text!r}, not a version")
        return int(text)

    def _aliases(self, model: str) -> dict[str, int]:
        d = self._model_dir(model) / "aliases"
        names = [n for n in os.listdir(d) if ALIAS_NAME.fullmatch(n)] if d.is_dir() else []
        return {n: v for n in sorted(names) if (v := self.alias(model, n)) is not None}

    def alias_token(self, model: str) -> tuple | None:
        """``(champion version, mtime_ns, inode)`` of the champion alias; None when unset.

        One open + fstat + read: cheap enough to poll every second. The inode changes on every
        atomic replace, so even a re-promotion of the same number within a clock tick shows.
        An unknown model also gives None, so a server can wait for its first promotion.
        """
        path = self._model_dir(model, must_exist=False) / "aliases" / CHAMPION
        got = read_with_stat(path)
        if got is None:
            return None
        text = got[0].decode("ascii", "replace").strip()
        return (int(text) if text.isdigit() else None, got[1].st_mtime_ns, got[1].st_ino)

    def _write_alias(self, model_dir: Path, name: str, version: int | None) -> None:
        path = model_dir / "aliases" / name
        if version is None:
            remove_durable(path)
        else:
            atomic_write_bytes(path, f"{version}\n".encode("ascii"))

    def _decide(self, model_dir: Path, action: str, alias: str, old: int | None,
                new: int | None, reason: str, learner: str | None = None) -> None:
        # the learner is recorded so the log still says what was promoted after retention
        # has pruned the version itself
        entry = {"time": _now(), "model": model_dir.name, "action": action, "alias": alias,
                 "from": old, "to": new, "reason": reason, "learner": learner}
        append_line(model_dir / "decisions.jsonl", json.dumps(entry))
        log.info("registry %s: %s %s %s -> %s (%s)", entry["model"], action, alias, old, new, reason)

    def set_alias(self, model: str, name: str, version: int, *, reason: str = "") -> None:
        """Point `name` at `version` (atomic replace) after checking the version verifies.

        A raw move (promote/rollback keep champion and previous consistent); logged as a
        decision all the same.
        """
        model_dir = self._model_dir(model)
        _check_name("alias", name, ALIAS_NAME)
        _check_version(version)
        with file_lock(model_dir / ".lock"):
            self._read(model, version)
            old = self.alias(model, name)
            self._write_alias(model_dir, name, version)
            self._decide(model_dir, "set_alias", name, old, version, reason or "set directly")

    def promote(self, model: str, version: int, reason: str) -> None:
        """Make `version` the champion: previous := old champion (if any); champion := version.

        The target is fully loaded first; if it does not verify or deserialize this raises
        and no alias moves. Promoting the current champion again is a no-op.
        """
        model_dir = self._model_dir(model)
        _check_version(version)
        with file_lock(model_dir / ".lock"):
            loaded = self._load_number(model, version)
            old = self.alias(model, CHAMPION)
            if old == version:
                log.info("registry %s: version %d is already champion", model, version)
                return
            if old is not None:  # previous first: a crash in between leaves champion intact
                self._write_alias(model_dir, PREVIOUS, old)
            self._write_alias(model_dir, CHAMPION, version)
            self._decide(model_dir, "promote", CHAMPION, old, version, reason, loaded.info.learner)

    def rollback(self, model: str, reason: str) -> int:
        """champion := previous, previous := None; returns the restored champion.

        Raises `RegistryError` when there is no previous version, and `IntegrityError` (moving
        nothing) when the previous version no longer verifies.
        """
        model_dir = self._model_dir(model)
        with file_lock(model_dir / ".lock"):
            target = self.alias(model, PREVIOUS)
            if target is None:
                raise RegistryError(
                    f"cannot roll back model {model!r}: no previous version "
                    f"(champion is {self.alias(model, CHAMPION)}; a rollback is not undoable twice)"
                )
            self._load_number(model, target)
            old = self.alias(model, CHAMPION)
            self._write_alias(model_dir, CHAMPION, target)
            self._write_alias(model_dir, PREVIOUS, None)
            self._decide(model_dir, "rollback", CHAMPION, old, target, reason)
            return target

    def decisions(self, model: str) -> list[dict]:
        """Every alias move, oldest first: dicts with ``time`` (ISO-8601 UTC), ``model``,
        ``action`` ("promote", "rollback", "set_alias"), ``alias``, ``from``, ``to``, ``reason``.
        """
        return read_json_lines(self._model_dir(model) / "decisions.jsonl")

    def publish(self, model: str, learner: Learner, *, parent: int | None = None,
                metrics: dict | None = None, data_range: dict | None = None,
                reference: dict | None = None, note: str = "",
                origin: Origin | str = Origin.MANUAL) -> VersionInfo:
        """Write `learner` as a new immutable version (next number) and return its info.

        ``origin`` and ``parent`` are its lineage (see `training.lineage`); ``note`` is free
        text for people, never parsed.

        Aliases do not move (see `promote`). Older unaliased versions beyond `retain` are
        pruned afterwards.
        """
        model_dir = self._model_dir(model, must_exist=False)
        if not isinstance(learner, Learner):
            raise RegistryError(f"can only publish a Learner, got {type(learner).__name__}")
        if parent is not None:
            _check_version(parent, "parent version")
        try:
            origin = Origin(origin)
        except ValueError:
            raise RegistryError(f"invalid origin {origin!r}: one of {[o.value for o in Origin]}") from None
        fields = {"metrics": metrics or {}, "data_range": data_range or {}, "reference": reference}
        for field, value in fields.items():
            if value is not None and not isinstance(value, dict):
                raise RegistryError(f"{field} must be a dict, got {type(value).__name__}")
            try:  # normalise through JSON now, so what we sign is what we will read back
                fields[field] = json.loads(json.dumps(value))
            except (TypeError, ValueError) as e:
                raise RegistryError(f"{field} is not JSON-serializable: {e}") from e
        snap = snapshot.dumps(learner)
        spec = learner.spec.to_dict() if learner.spec is not None else None
        factory, factory_params = factory_of(learner)
        if factory_params is not None:
            try:
                factory_params = json.loads(json.dumps(factory_params))
            except (TypeError, ValueError) as e:
                raise RegistryError(f"parameters of factory {factory!r} are not JSON-serializable: {e}") from e
        base = dict(model=model, learner=getattr(learner, "name", type(learner).__name__), spec=spec,
                    factory=factory, factory_params=factory_params,
                    format=snap.format, class_path=snap.class_path, parent=parent,
                    created_at=_now(), note=str(note), origin=origin,
                    sha256=hashlib.sha256(snap.data).hexdigest(), **fields)

        (model_dir / "versions").mkdir(parents=True, exist_ok=True)
        (model_dir / "aliases").mkdir(exist_ok=True)
        _lineage_of(model_dir)
        signed: dict[int, VersionInfo] = {}

        def numbered(n: int) -> dict[str, bytes]:
            signed[n] = info = VersionInfo(version=n, **base)
            meta = json.dumps(info.to_dict(), indent=2).encode("utf-8")
            return {"metadata.json": meta, "signature": self._signature(meta, snap.data).encode()}

        try:
            n = publish_numbered_dir(model_dir / "versions", model_dir,
                                     {"artifact.bin": snap.data}, numbered)
        except OSError as e:
            raise RegistryError(f"could not publish model {model!r} under {self.root}: {e}") from e
        try:
            self.prune(model)
        except (OSError, RegistryError) as e:  # published; retention can catch up next time
            log.warning("registry %s: pruning after publish failed: %s", model, e)
        return signed[n]

    def prune(self, model: str) -> list[int]:
        """Delete old versions: keep every aliased one and the newest `retain` unaliased ones.

        The newest version is always kept, so version numbers are never reused. Scratch
        folders left by publishers that crashed over an hour ago are swept too.
        """
        model_dir = self._model_dir(model)
        with file_lock(model_dir / ".lock"):
            aliased = set(self._aliases(model).values())
            unaliased = [n for n in numbered_entries(model_dir / "versions") if n not in aliased]
            doomed = unaliased[: -self.retain]
            for n in doomed:
                remove_tree(model_dir / "versions" / str(n), model_dir)
            sweep_scratch(model_dir, older_than_s=3600)
        if doomed:
            log.info("registry %s: pruned versions %s", model, doomed)
        return doomed


def _lineage_of(model_dir: Path) -> str:
    try:
        text = create_once(model_dir / LINEAGE_FILE, (os.urandom(16).hex() + "\n").encode()).decode("ascii", "replace")
    except OSError as e:
        raise RegistryError(f"cannot read or write the lineage id {model_dir / LINEAGE_FILE}: {e}") from e
    lineage = text.strip()
    if not _LINEAGE.fullmatch(lineage):
        raise IntegrityError(f"lineage file {model_dir / LINEAGE_FILE} holds {lineage[:40]!r}; "
                             "expected 32 hexadecimal digits (restore it from a backup of this registry)")
    return lineage
