"""A user's network, fine-tuned by the generic fine-tuner, served through the data plane:
the champion is built from the registry (factory imported from an allowed module, weights
loaded with weights_only) and answers /predict like the learner itself."""

from __future__ import annotations

import asyncio

import pytest

from service.dataplane import DataPlane
from service.metrics_exposition import build_service_metrics
from service.model_holder import ModelHolder, build_champion
from service.prediction_log import KafkaEventLog
from training.learners.candidates import build_candidates
from training.registry import Registry
from training.spec_inference import infer_spec
from training.streams import iter_stream

NET = "training.learners.torch_module_examples:small_net"


def test_a_fine_tuned_network_is_served_from_the_registry(tmp_path):
    events = list(iter_stream("agrawal", 300, seed=4))  # numeric rows: what the data plane takes today
    spec = infer_spec([x for x, _ in events], [y for _, y in events])
    learner = build_candidates(NET, spec, **{NET: {"hidden": 8, "batch_size": 8}})[0]
    learner.learn_many([x for x, _ in events], [y for _, y in events])
    registry = Registry(tmp_path / "registry", key="k")
    info = registry.publish("own", learner)
    registry.promote("own", info.version, "test")
    metrics = build_service_metrics()
    holder = ModelHolder(registry, lambda loaded: build_champion(
        loaded, metrics, max_batch_size=16, max_latency_ms=5, device="cpu"), metrics)
    holder.poll_once()
    assert holder.ready, holder.refusals
    plane = DataPlane(holder, metrics, KafkaEventLog("", metrics), max_instances=8, admin_token="tok")
    loop = asyncio.new_event_loop()
    try:
        rows = [x for x, _ in events[:4]]
        out = loop.run_until_complete(plane.predict("own", [{"features": x} for x in rows]))
    finally:
        loop.close()
    assert out["version"] == info.version
    for row, prediction in zip(rows, out["predictions"], strict=True):
        expected = learner.predict_proba_one(row)
        assert prediction["probabilities"] == pytest.approx({str(k): v for k, v in expected.items()}, abs=1e-6)
