"""The trainer follows every kind of loop event: metrics and the serving-side guard.

Real parts: a registry on a temp dir, the trainer core fed plain records, prometheus_client's
own registry read back through ``get_sample_value``.
"""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry

from streaming.checkpoint import CheckpointStore
from streaming.dlq import MemoryDeadLetters
from streaming.metrics import TrainerMetrics
from streaming.promotion_guard import GuardCheck, PromotionGuard
from streaming.trainer import Record, Trainer
from training.learners.candidates import build_candidates
from training.loop_types import EventKind, LoopConfig
from training.publishers import RegistryPublisher
from training.registry import Registry
from training.system import LearningSystem


def feedback(offset: int, x: dict, y: object) -> Record:
    value = json.dumps({"event_id": f"e{offset}", "model": "m", "features": x, "label": y}).encode()
    return Record("m.feedback", 0, offset, b"m", value, 1000)


def champion_info(metrics: CollectorRegistry, version: int) -> float | None:
    learner = "logreg"
    return metrics.get_sample_value("perennial_champion_info", {"model": "m", "version": str(version),
                                                                 "learner": learner})


def test_an_operators_rollback_updates_champion_info_and_stops_the_guard(tmp_path, stream) -> None:  # noqa: ANN001
    registry = Registry(tmp_path / "registry", key="k")
    v1 = registry.publish("m", build_candidates("logreg")[0], note="bootstrap").version
    registry.promote("m", v1, "bootstrap")
    v2 = registry.publish("m", build_candidates("logreg")[0], parent=v1, note="promotion").version
    registry.promote("m", v2, "better on the stream")

    config = LoopConfig(check_every=50, refresh_every=0, spawn_on_drift=False)
    publisher = RegistryPublisher(registry, "m")

    def fresh() -> LearningSystem:
        return LearningSystem("m", registry.load("m", "champion").learner, [], config, publisher, v2)

    prom = CollectorRegistry()
    guard = PromotionGuard([GuardCheck("p99", "q", max_value=1.0)], lambda q: [])
    trainer = Trainer("m", fresh_system=fresh, restore_system=LearningSystem.from_bytes,
                      store=CheckpointStore(tmp_path / "ck", "m", b"k"), dead_letters=MemoryDeadLetters(),
                      metrics=TrainerMetrics(prom), guard=guard)
    trainer.restore()
    events = stream(200)
    trainer.handle([feedback(i, x, y) for i, (x, y) in enumerate(events[:100])])
    assert champion_info(prom, v2) == 1.0
    guard.watch("m", v2, v1)  # the guard still judges v2 when the operator steps in

    assert registry.rollback("m", "operator: v2 misbehaves") == v1  # `perennial models rollback m`
    trainer.handle([feedback(i, x, y) for i, (x, y) in enumerate(events[100:], start=100)])

    assert trainer.system.champion_version == v1
    assert champion_info(prom, v1) == 1.0, "perennial_champion_info follows the operator's rollback"
    assert champion_info(prom, v2) is None, "the stale series is removed, not left at 1"
    assert not guard.active, "the guard no longer judges a version that is not served"


def test_every_event_kind_serialises_as_its_plain_string() -> None:
    from training.loop_types import SystemEvent

    for kind in EventKind:
        event = SystemEvent(kind, 1, "hat-d1")
        assert json.loads(json.dumps(event.to_dict()))["kind"] == kind.value == kind
