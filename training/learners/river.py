"""River classifiers behind Perennial's learner protocol.

River already speaks ``predict_proba_one / learn_one`` and ``clone()``; this adapter adds
what River leaves to the caller: input checks (NaN refused with a clear error), a stable
family name for metrics, and a snapshot format (pickle, signed by the registry).
"""

from __future__ import annotations

from typing import Any

from river import base as river_base

from training.learners.base import Features, Label, Learner, PickleSnapshot, check_features


class RiverLearner(PickleSnapshot, Learner):
    """Wrap any River classifier or pipeline.

    >>> from river import linear_model, preprocessing
    >>> learner = RiverLearner(preprocessing.StandardScaler() | linear_model.LogisticRegression(), name="logreg")
    >>> learner.predict_proba_one({"a": 1.0})
    {}
    >>> learner.learn_one({"a": 1.0}, True); learner.learn_one({"a": -1.0}, False)
    >>> sorted(learner.predict_proba_one({"a": 1.0}))
    [False, True]
    >>> learner.clone().predict_proba_one({"a": 1.0})
    {}
    """


    def __init__(self, estimator: river_base.Classifier, name: str) -> None:
        self.estimator = estimator
        self.name = name
        self._seen: set[Label] = set()
        self._features: set[str] = set()

    def params(self) -> dict[str, Any]:
        return {"estimator": self.estimator.clone(), "name": self.name}

    def clone(self) -> RiverLearner:
        return RiverLearner(self.estimator.clone(), self.name)

    def predict_proba_one(self, x: Features) -> dict[Label, float]:
        check_features(x)
        if not self._seen:
            return {}
        proba = self.estimator.predict_proba_one(x)
        if len(proba) == 1 and len(self._seen) > 1:
            # Some River models only report classes that reached a leaf; fill the rest with 0
            # so callers always see every known class.
            proba = {c: proba.get(c, 0.0) for c in self._seen}
        return proba

    def learn_one(self, x: Features, y: Label) -> None:
        check_features(x)
        self._seen.add(y)
        if len(self._features) < len(x):
            self._features.update(x)
        self.estimator.learn_one(x, y)

    @property
    def classes(self) -> list[Label]:
        return sorted(self._seen, key=str)

    @property
    def n_features_in(self) -> list[str]:
        return sorted(self._features)
