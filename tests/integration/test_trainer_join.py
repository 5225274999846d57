"""Acceptance: label-only feedback joined to prediction records on the real broker —
before its prediction (late), after it (hit), and never matched (miss, dead-lettered)."""

from __future__ import annotations

import json
import time

import pytest

from streaming.dlq import DeadLetter
from streaming.producer import EventProducer
from streaming.topics import dlq_topic

pytestmark = pytest.mark.integration


def count(process, result: str) -> float:  # noqa: ANN001
    value = process.trainer.metrics.registry.get_sample_value(
        "perennial_label_join_total", {"model": process.trainer.model, "result": result})
    return value or 0.0


def test_label_join_hit_late_and_miss(kio, stream, trainer_settings, running_trainer):  # noqa: ANN001
    settings = trainer_settings(join_grace_s=2.0)
    model = settings.model
    events = stream(30)
    process = running_trainer(settings)
    producer = EventProducer(settings.bootstrap_servers)
    now = time.time

    # after: predictions first, then their labels -> hit
    for i, (x, _) in enumerate(events[:10]):
        producer.send_prediction(model, f"hit{i}", x, version=1, timestamp=now())
    producer.flush()
    kio.wait_for(lambda: process.trainer.loaded and len(process.trainer.join) == 10, "10 stored predictions")
    for i, (_, y) in enumerate(events[:10]):
        producer.send_feedback(model, f"e-hit{i}", y, prediction_id=f"hit{i}")
    producer.flush()
    kio.wait_for(lambda: count(process, "hit") == 10, "10 hits")

    # before: labels first, their predictions later -> late
    for i, (_, y) in enumerate(events[10:15]):
        producer.send_feedback(model, f"e-late{i}", y, prediction_id=f"late{i}")
    producer.flush()
    kio.wait_for(lambda: process.trainer.join.pending == 5, "5 labels waiting for their predictions")
    for i, (x, _) in enumerate(events[10:15]):
        producer.send_prediction(model, f"late{i}", x, version=1, timestamp=now())
    producer.flush()
    kio.wait_for(lambda: count(process, "late") == 5, "5 late joins")

    # never: labels whose prediction never comes -> miss after the grace period, dead-lettered
    for i, (_, y) in enumerate(events[15:18]):
        producer.send_feedback(model, f"e-miss{i}", y, prediction_id=f"never{i}")
    producer.flush()
    kio.wait_for(lambda: count(process, "miss") == 3, "3 misses after the grace period")
    producer.close()

    assert process.trainer.system.events_learned == 15
    assert count(process, "hit") == 10 and count(process, "late") == 5 and count(process, "miss") == 3
    letters = [DeadLetter.from_record(r) for r in kio.read_topic(settings.bootstrap_servers, dlq_topic(model), 3)]
    assert sorted(json.loads(x.value)["prediction_id"] for x in letters) == ["never0", "never1", "never2"]
    assert {str(x.reason) for x in letters} == {"no_prediction"}
    assert all(x.offset >= 0 for x in letters), "a miss points at its source feedback record"
