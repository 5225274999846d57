"""A candidates file: named candidates, each a factory and its keyword parameters.

Real users tune several parameters of several learners; a flag per parameter does not
scale, so ``--candidates-file candidates.yaml`` (or ``PERENNIAL_CANDIDATES_FILE``) names
them once::

    tree:
      factory: acme.models:tree          # module:factory, or a built-in name (hat, mlp, ...)
      params: {grace_period: 50}
    net:
      factory: acme.nets:tabular
      params: {hidden: 32, lr: 0.003, freeze: ["0."]}

``--candidates tree,net,logreg`` then picks entries by name (built-in names and import paths
still work beside them); with no ``--candidates`` every entry of the file is a candidate.
The entry's name labels the learner in metrics, reports and the registry, which records
its factory and parameters (`training.registry.VersionInfo`).

>>> entries = parse_candidates({"tree": {"factory": "hat", "params": {"grace_period": 50}}})
>>> entries["tree"]
CandidateEntry(name='tree', factory='hat', params={'grace_period': 50})
>>> [c.name for c in build_named("tree,logreg", None, entries)]
['tree', 'logreg']
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.learners.base import Learner
from training.spec import ModelSpec


class CandidatesFileError(ValueError):
    """The candidates file cannot be read or an entry is malformed; the message says where."""


@dataclass(frozen=True)
class CandidateEntry:
    name: str
    factory: str
    params: dict[str, Any] = field(default_factory=dict)


def load_candidates_file(path: str | Path) -> dict[str, CandidateEntry]:
    """Entries of a YAML (``.yaml``/``.yml``) or JSON candidates file, in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CandidatesFileError(f"cannot read candidates file {path}: {e.strerror or e}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # noqa: BLE001 - YAML and JSON raise different types
        raise CandidatesFileError(f"candidates file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {e}") from None
    return parse_candidates(data, str(path))


def parse_candidates(data: Any, where: str = "candidates") -> dict[str, CandidateEntry]:
    """Entries from the file's parsed content: ``{name: {factory, params}}``."""
    if not isinstance(data, Mapping) or not data:
        raise CandidatesFileError(f"{where}: expected a mapping of candidate name to {{factory, params}}, "
                                  f"got {type(data).__name__}")
    entries = {}
    for name, entry in data.items():
        if not isinstance(name, str) or not name or "," in name:
            raise CandidatesFileError(f"{where}: candidate name {name!r} must be a non-empty string without commas")
        if not isinstance(entry, Mapping) or not isinstance(entry.get("factory"), str):
            raise CandidatesFileError(f"{where}: candidate {name!r} needs 'factory: module:factory' "
                                      "(or a built-in name)")
        unknown = sorted(set(entry) - {"factory", "params"})
        if unknown:
            raise CandidatesFileError(f"{where}: candidate {name!r} has unknown key(s) {unknown}; "
                                      "an entry has factory and params")
        params = entry.get("params") or {}
        if not isinstance(params, Mapping):
            raise CandidatesFileError(f"{where}: params of candidate {name!r} must be a mapping, "
                                      f"got {type(params).__name__}")
        entries[name] = CandidateEntry(name, entry["factory"], dict(params))
    return entries


def build_named(names: str | Sequence[str] | None, spec: ModelSpec | None,
                entries: Mapping[str, CandidateEntry] | None = None, **overrides: Any) -> list[Learner]:
    """Learners for ``names``: an entry of the candidates file by its name, else a built-in
    name or an import path (`training.learners.candidates.build_candidates`). No names:
    every entry of the file."""
    from training.learners.candidates import build_candidates
    from training.learners.factories import build_from_path

    entries = dict(entries or {})
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(names or entries)
    learners = []
    for name in names:
        entry = entries.get(name)
        if entry is None:
            learners.extend(build_candidates([name], spec, **overrides))
        elif ":" in entry.factory:
            learners.append(build_from_path(entry.factory, spec, entry.params, name=name))
        else:  # a built-in family with the file's parameters, under the entry's name
            learner = build_candidates([entry.factory], spec, **{entry.factory: entry.params})[0]
            learner.name = name
            learners.append(learner)
    return learners


def entries_from(path: str | Path | None) -> dict[str, CandidateEntry]:
    """The file's entries, or none when no file is set."""
    return load_candidates_file(path) if path else {}
