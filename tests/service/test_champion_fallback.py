"""A champion that does not verify: the service serves `previous` at start (counted, logged)
and picks the champion up once its file is repaired, without an alias move."""

from __future__ import annotations

import time

from service.metrics_exposition import build_service_metrics
from service.model_holder import ModelHolder, build_champion
from training.learners.candidates import logistic_regression
from training.reference import reference_histograms
from training.registry import Registry
from training.streams import iter_stream

MODEL = "fallback"


def test_corrupt_champion_serves_previous_then_the_repaired_champion(tmp_path, caplog):
    data = list(iter_stream("agrawal", 300, 3))
    registry = Registry(tmp_path / "registry", key="k")
    learner = logistic_regression()
    for x, y in data:
        learner.learn_one(x, y)
    reference = reference_histograms([x for x, _ in data])
    registry.publish(MODEL, learner, reference=reference)
    registry.publish(MODEL, learner, reference=reference)
    registry.promote(MODEL, 1, "first")
    registry.promote(MODEL, 2, "second")  # previous := 1
    version_dir = tmp_path / "registry" / MODEL / "versions"
    artifact = max((p for p in version_dir.rglob("*") if p.is_file() and "2" in p.parent.name),
                   key=lambda p: p.stat().st_size)
    original = artifact.read_bytes()
    artifact.write_bytes(original[:-10] + b"tampered!!")

    metrics = build_service_metrics()
    now = [0.0]
    holder = ModelHolder(registry, lambda loaded: build_champion(loaded, metrics, max_batch_size=8,
                                                                 max_latency_ms=1000),
                         metrics, retry_s=10, clock=lambda: now[0])
    holder.poll_once()
    assert holder.get(MODEL).version == 1 and holder.ready
    assert metrics.champion_fallbacks.labels(model=MODEL)._value.get() == 1
    assert "serving previous version 1" in caplog.text

    artifact.write_bytes(original)  # an operator restores the file; the alias does not move
    holder.poll_once()
    assert holder.get(MODEL).version == 1  # not yet: retries are spaced by retry_s
    now[0] += 10
    holder.poll_once()
    assert holder.get(MODEL).version == 2
    holder.stop()
    time.sleep(0)  # batchers of retired champions close in their own threads
