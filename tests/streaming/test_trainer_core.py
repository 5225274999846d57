"""The trainer core without Kafka: offsets, duplicates, dead letters, joins, restore."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from streaming.checkpoint import CheckpointStore
from streaming.dlq import MemoryDeadLetters
from streaming.join import JoinStore
from streaming.metrics import TrainerMetrics
from streaming.publishing import JournaledPublisher
from streaming.trainer import OffsetGap, Record, Trainer


def make(tmp_path, registry_dir, **kw):  # noqa: ANN001, ANN201
    from training.learners.candidates import build_candidates
    from training.registry import Registry
    from training.system import LearningSystem, LoopConfig

    def fresh():  # noqa: ANN202
        return LearningSystem("agr", Registry(registry_dir).load("agr", 1).learner, build_candidates("logreg"),
                              LoopConfig(), None, 1)

    dlq = MemoryDeadLetters()
    trainer = Trainer("agr", fresh_system=fresh, restore_system=LearningSystem.from_bytes,
                      store=CheckpointStore(tmp_path / "ck", "agr", b"k"), dead_letters=dlq,
                      metrics=TrainerMetrics(CollectorRegistry()), **kw)
    return trainer, dlq


def fb(offset: int, eid: str, x: dict, y: object) -> Record:
    value = json.dumps({"event_id": eid, "model": "agr", "features": x, "label": y}).encode()
    return Record("agr.feedback", 0, offset, b"agr", value, 1000)


def test_learns_skips_duplicates_and_dead_letters(tmp_path, registry_dir, stream) -> None:  # noqa: ANN001
    trainer, dlq = make(tmp_path, registry_dir)
    trainer.restore()
    (x0, y0), (x1, y1) = stream(2)
    records = [fb(0, "a", x0, y0), fb(1, "a", x0, y0), Record("agr.feedback", 0, 2, b"agr", b"{", 0), fb(3, "b", x1, y1)]
    assert trainer.handle(records) == 2
    assert [str(d.reason) for d in dlq.letters] == ["not_json"] and dlq.letters[0].offset == 2
    assert trainer.offsets == {("agr.feedback", 0): 4}
    assert trainer.handle([fb(2, "c", x1, y1)]) == 0, "records below the position were handled already"
    with pytest.raises(OffsetGap):
        trainer.handle([fb(9, "d", x1, y1)])


def test_restore_continues_exactly(tmp_path, registry_dir, stream) -> None:  # noqa: ANN001
    events = stream(400)
    records = [fb(i, f"e{i}", x, y) for i, (x, y) in enumerate(events)]
    straight, _ = make(tmp_path / "a", registry_dir)
    straight.restore()
    straight.handle(records)

    first, _ = make(tmp_path / "b", registry_dir)
    first.restore()
    first.handle(records[:150])
    first.checkpoint()
    first.handle(records[150:220])  # learned, never checkpointed: lost in the "crash"
    again, _ = make(tmp_path / "b", registry_dir)
    assert again.restore() == {("agr.feedback", 0): 150}
    again.handle(records[150:])
    assert again.system.events_learned == straight.system.events_learned == 400
    probe = [x for x, _ in stream(50, seed=3)]
    assert [again.system.champion.predict_proba_one(x) for x in probe] == \
           [straight.system.champion.predict_proba_one(x) for x in probe]


def test_label_join_in_the_core(tmp_path, registry_dir, stream) -> None:  # noqa: ANN001
    trainer, dlq = make(tmp_path, registry_dir, join=JoinStore(grace_s=5))
    trainer.restore()
    (x, y), = stream(1)
    pred = json.dumps({"prediction_id": "p", "model": "agr", "version": 1, "features": x, "timestamp": 1}).encode()
    label = json.dumps({"event_id": "e", "model": "agr", "prediction_id": "p", "label": y}).encode()
    orphan = json.dumps({"event_id": "o", "model": "agr", "prediction_id": "none", "label": y}).encode()
    assert trainer.handle([Record("agr.feedback", 0, 0, b"agr", label, 1000),
                           Record("agr.feedback", 0, 1, b"agr", orphan, 1000)]) == 0
    assert trainer.handle([Record("agr.predictions", 0, 0, b"agr", pred, 2000)]) == 1
    trainer.stream_time = 10.0
    trainer.tick()
    assert trainer.join.counts == {"hit": 0, "late": 1, "miss": 1, "expired": 0}
    assert [(str(d.reason), d.offset) for d in dlq.letters] == [("no_prediction", 1)]


def test_publisher_journal_makes_registry_writes_idempotent(tmp_path) -> None:  # noqa: ANN001
    calls = []

    class Inner:
        def publish(self, learner, *, parent, metrics, note, origin=None):  # noqa: ANN001, ANN201
            calls.append("publish")
            return len(calls)

        def promote(self, version, reason):  # noqa: ANN001, ANN201
            calls.append("promote")

    at = [100]
    journal = JournaledPublisher(Inner(), tmp_path / "j.jsonl", lambda: at[0])
    v = journal.publish(None, parent=1, metrics={}, note="")
    journal.promote(v, "better")
    replay = JournaledPublisher(Inner(), tmp_path / "j.jsonl", lambda: at[0])  # after a crash
    assert replay.publish(None, parent=1, metrics={}, note="") == v
    replay.promote(v, "better")
    assert calls == ["publish", "promote"]


def test_the_join_reads_one_record_of_many_predictions_and_old_records(tmp_path, registry_dir, stream) -> None:  # noqa: ANN001
    """The service logs one record per request (issue 11); records of one prediction each,
    written before, still join — a trainer upgraded with old records in the topic loses none."""
    trainer, dlq = make(tmp_path, registry_dir, join=JoinStore(grace_s=5))
    trainer.restore()
    (x0, y0), (x1, y1), (x2, y2) = stream(3)
    request = json.dumps({"model": "agr", "version": 1, "timestamp": 1.0, "prediction_ids": ["r-0", "r-1"],
                          "features": [x0, x1], "labels": [y0, y1], "classes": ["0", "1"],
                          "probabilities": [[0.5, 0.5], [0.5, 0.5]]}).encode()
    old = json.dumps({"prediction_id": "old", "model": "agr", "version": 1, "features": x2, "timestamp": 1}).encode()

    def label(offset: int, pid: str, y: object) -> Record:
        value = json.dumps({"event_id": f"e-{pid}", "model": "agr", "prediction_id": pid, "label": y}).encode()
        return Record("agr.feedback", 0, offset, b"agr", value, 1000)

    assert trainer.handle([label(0, "r-1", y1)]) == 0  # the label first: it waits
    assert trainer.handle([Record("agr.predictions", 0, 0, b"agr", old, 1500),
                           Record("agr.predictions", 0, 1, b"agr", request, 2000)]) == 1  # late join
    assert trainer.handle([label(1, "r-0", y0), label(2, "old", y2)]) == 2  # hits
    assert trainer.join.counts == {"hit": 2, "late": 1, "miss": 0, "expired": 0}
    assert trainer.offsets[("agr.predictions", 0)] == 2 and not dlq.letters
    assert trainer.system.events_learned == 3
