"""The baseline of `benchmarks/serving.py`: a plain adaptive-batching BentoML service.

What a BentoML user would write for the same model: load the registry's champion once, one
``@bentoml.api(batchable=True)`` endpoint, nothing else (no validation beyond pydantic, no
prediction log, no drift, no hot swap, no gRPC). Started with
``bentoml serve baseline_service:Baseline --working-dir benchmarks``; configured by
environment: ``BASELINE_REGISTRY``, ``BASELINE_MODEL``, ``BASELINE_KEY`` (registry HMAC key),
``BASELINE_MAX_LATENCY_MS`` (BentoML's latency budget; requests estimated to exceed it are shed
with 503) and ``BASELINE_MAX_BATCH_SIZE``.

The request body is the one Perennial's ``/predict`` takes (``{"model", "instances"}``);
pydantic ignores ``model``, and each request's ``instances`` is one slice of the batch.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml


@bentoml.service(name="baseline", workers=1)
class Baseline:
    def __init__(self) -> None:
        from training.registry import Registry

        registry = Registry(os.environ["BASELINE_REGISTRY"], key=os.environ.get("BASELINE_KEY"))
        self.learner = registry.load(os.environ["BASELINE_MODEL"]).learner

    @bentoml.api(
        batchable=True,
        max_batch_size=int(os.environ.get("BASELINE_MAX_BATCH_SIZE", "256")),
        max_latency_ms=int(os.environ.get("BASELINE_MAX_LATENCY_MS", "10")),
    )
    def predict(self, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
        probas = self.learner.predict_proba_many([i["features"] for i in instances])
        return [
            {"label": max(p, key=p.__getitem__), "probabilities": {str(k): v for k, v in p.items()}}
            for p in probas
        ]
