"""The model every peer serves: Perennial's registry champion, called once per instance.

The registry, model name and HMAC key come from ``PEER_REGISTRY``, ``PEER_MODEL`` and
``PEER_KEY`` (set by `benchmarks/serving.py`), so each peer loads the very artifact Perennial
serves: the same plain-Python logistic regression, the same ``predict_proba_one``. Imports
only ``training`` (River, NumPy), so it also runs in the bench venv, where MLServer lives.
"""

from __future__ import annotations

import os
from typing import Any

from training.learners.base import Learner


def load_learner() -> tuple[Learner, list[str]]:
    """The champion learner and its feature names (the column order of tensor inputs)."""
    from training.registry import Registry

    registry = Registry(os.environ["PEER_REGISTRY"], key=os.environ.get("PEER_KEY"))
    learner = registry.load(os.environ["PEER_MODEL"]).learner
    return learner, list(learner.n_features_in)


def predict_one(learner: Learner, features: dict[str, Any]) -> tuple[Any, dict[Any, float]]:
    """Label and class probabilities of one instance."""
    proba = learner.predict_proba_one(features)
    return max(proba, key=proba.__getitem__), proba


def predict_instances(learner: Learner, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``/predict``'s body (``[{"features": {...}}, ...]``) to one prediction per instance,
    ``{label, probabilities}``: what Perennial answers, less its prediction id."""
    out = []
    for instance in instances:
        label, proba = predict_one(learner, instance["features"])
        out.append({"label": label, "probabilities": {str(k): v for k, v in proba.items()}})
    return out
