"""Time the trainer does not trust: one record stamped a day ahead must not expire the join
store; the labels that follow it still find their predictions."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from streaming.checkpoint import CheckpointStore
from streaming.dlq import MemoryDeadLetters
from streaming.metrics import TrainerMetrics
from streaming.trainer import Record, Trainer

NOW = 1_700_000_000.0  # the trainer's wall clock in these tests
DAY = 86400.0


def trainer_at_now(tmp_path, registry_dir, **kw):  # noqa: ANN001, ANN201
    from training.learners.candidates import build_candidates
    from training.registry import Registry
    from training.system import LearningSystem, LoopConfig

    def fresh():  # noqa: ANN202
        return LearningSystem("agr", Registry(registry_dir).load("agr", 1).learner, build_candidates("logreg"),
                              LoopConfig(), None, 1)

    dlq = MemoryDeadLetters()
    trainer = Trainer("agr", fresh_system=fresh, restore_system=LearningSystem.from_bytes,
                      store=CheckpointStore(tmp_path / "ck", "agr", b"k"), dead_letters=dlq,
                      metrics=TrainerMetrics(CollectorRegistry()), clock=lambda: 0.0,
                      wall_clock=lambda: NOW, **kw)
    trainer.restore()
    return trainer, dlq


def run_stream(trainer: Trainer, events: list, future_ts: float) -> None:
    preds = [Record("agr.predictions", 0, i, b"agr", json.dumps(
        {"prediction_id": f"p{i}", "model": "agr", "version": 1, "features": x, "timestamp": NOW}).encode(),
        int(NOW * 1000)) for i, (x, _) in enumerate(events)]
    trainer.handle(preds)
    x, y = events[0]
    ahead = Record("agr.feedback", 0, 0, b"agr", json.dumps(
        {"event_id": "ahead", "model": "agr", "features": x, "label": y}).encode(), int(future_ts * 1000))
    trainer.handle([ahead])
    trainer.tick()
    labels = [Record("agr.feedback", 0, 1 + i, b"agr", json.dumps(
        {"event_id": f"e{i}", "model": "agr", "prediction_id": f"p{i}", "label": y}).encode(),
        int((NOW + 1) * 1000)) for i, (_, y) in enumerate(events)]
    trainer.handle(labels)
    trainer.tick()


def test_a_record_a_day_ahead_does_not_expire_the_join_store(tmp_path, registry_dir, stream) -> None:  # noqa: ANN001
    trainer, dlq = trainer_at_now(tmp_path, registry_dir)
    run_stream(trainer, stream(100), NOW + DAY)
    assert trainer.join.counts["hit"] == 100, trainer.join.counts
    assert trainer.join.counts["miss"] == trainer.join.counts["expired"] == 0
    assert dlq.letters == []
    assert trainer.system.events_learned == 101
    assert trainer.stream_time == pytest.approx(NOW + 1)
    assert trainer.metrics.registry.get_sample_value(
        "perennial_record_timestamps_ignored_total", {"model": "agr"}) == 1


def test_without_the_guard_the_same_record_would_have_emptied_it(tmp_path, registry_dir, stream) -> None:  # noqa: ANN001
    """The control: a skew allowance larger than the jump reproduces the defect."""
    trainer, _ = trainer_at_now(tmp_path, registry_dir, max_clock_skew_s=2 * DAY)
    run_stream(trainer, stream(100), NOW + DAY)
    assert trainer.join.counts["hit"] == 0 and trainer.join.counts["expired"] == 100
    assert trainer.join.pending == 100, "the labels wait for predictions that are gone (then miss)"


def test_timestamps_within_the_allowance_still_drive_the_clock(tmp_path, registry_dir, stream) -> None:  # noqa: ANN001
    trainer, _ = trainer_at_now(tmp_path, registry_dir, max_clock_skew_s=300)
    (x, y), = stream(1)
    trainer.handle([Record("agr.feedback", 0, 0, b"agr", json.dumps(
        {"event_id": "soon", "model": "agr", "features": x, "label": y}).encode(), int((NOW + 200) * 1000))])
    assert trainer.stream_time == pytest.approx(NOW + 200)
    assert not trainer.metrics.registry.get_sample_value(
        "perennial_record_timestamps_ignored_total", {"model": "agr"})
