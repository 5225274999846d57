"""Where the learning loop writes versions: the registry, or memory for replay and tests.

Both implement `training.system.Publisher`. `RegistryPublisher` carries the parent
version's reference histograms and data range forward, so every version the service loads
can compute feature drift against the data its lineage was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from training.learners import snapshot
from training.learners.base import Learner
from training.lineage import Origin
from training.registry import Registry


class RegistryPublisher:
    """Publishes to a `Registry`: new immutable versions, aliases moved with a reason."""

    def __init__(self, registry: Registry, model: str) -> None:
        self.registry = registry
        self.model = model

    def publish(self, learner: Learner, *, parent: int | None, metrics: dict, note: str,
                origin: Origin = Origin.MANUAL) -> int:
        reference, data_range = None, {}
        if parent is not None:
            parent_info = self.registry.info(self.model, parent)
            reference, data_range = parent_info.reference, parent_info.data_range
        info = self.registry.publish(self.model, learner, parent=parent, metrics=metrics,
                                     data_range=data_range, reference=reference, note=note,
                                     origin=origin)
        return info.version

    def promote(self, version: int, reason: str) -> None:
        self.registry.promote(self.model, version, reason)

    def rollback(self, reason: str) -> int:
        return self.registry.rollback(self.model, reason)

    def refresh(self, version: int) -> None:
        # a refresh follows the stream; it must not overwrite `previous`, the rollback target
        self.registry.set_alias(self.model, "champion", version, reason="refresh")

    def current_champion(self, expected: int | None) -> int | None:
        """The alias when it is not ``expected`` (an operator moved it), else None."""
        version = self.registry.alias(self.model, "champion")
        return None if version == expected else version

    def load(self, version: int) -> Learner:
        return self.registry.load(self.model, version).learner


@dataclass
class InMemoryPublisher:
    """Counts versions and keeps the decision log in memory (replay, tests, benchmarks).

    It snapshots each published learner (``to_bytes``) so that replay pays the same
    serialisation cost the trainer pays, without touching the disk.
    """

    versions: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    champion: int | None = None
    previous: int | None = None
    keep_bytes: bool = False

    def publish(self, learner: Learner, *, parent: int | None, metrics: dict, note: str,
                origin: Origin = Origin.MANUAL) -> int:
        snap = snapshot.dumps(learner)
        version = len(self.versions) + 1
        self.versions.append({"version": version, "learner": learner.name, "parent": parent,
                              "metrics": metrics, "note": note, "origin": str(origin), "size": len(snap.data),
                              **({"snapshot": snap} if self.keep_bytes else {})})
        return version

    def promote(self, version: int, reason: str) -> None:
        self.previous, self.champion = self.champion, version
        self.decisions.append({"action": "promote", "to": version, "from": self.previous, "reason": reason})

    def rollback(self, reason: str) -> int:
        if self.previous is None:
            raise RuntimeError("no previous version to roll back to")
        old, self.champion, self.previous = self.champion, self.previous, None
        self.decisions.append({"action": "rollback", "to": self.champion, "from": old, "reason": reason})
        return self.champion

    def refresh(self, version: int) -> None:
        self.champion = version

    def current_champion(self, expected: int | None) -> int | None:
        return None if self.champion == expected else self.champion

    def load(self, version: int) -> Learner:
        entry = self.versions[version - 1]
        if "snapshot" not in entry:
            raise RuntimeError("InMemoryPublisher(keep_bytes=False) cannot load versions back")
        return snapshot.loads(entry["snapshot"])
