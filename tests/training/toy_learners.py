"""Tiny real learners for tests (MLServer-style toy models, not mocks)."""

from __future__ import annotations

import pickle

from training.learners.base import Learner, check_features


class ConstantLearner(Learner):
    """Always predicts ``label`` with probability ``confidence``; learning changes nothing."""

    def __init__(self, label, other, confidence: float = 0.9, name: str = "const") -> None:
        self.label, self.other, self.confidence, self.name = label, other, confidence, name

    def predict_proba_one(self, x):
        check_features(x)
        return {self.label: self.confidence, self.other: 1 - self.confidence}

    def learn_one(self, x, y):
        check_features(x)

    def params(self):
        return {"label": self.label, "other": self.other, "confidence": self.confidence, "name": self.name}

    def clone(self):
        return ConstantLearner(**self.params())

    def to_bytes(self):
        return pickle.dumps(self)

    @classmethod
    def from_bytes(cls, data):
        return pickle.loads(data)


class ConstantRegressor(Learner):
    """Always predicts ``value``; learning changes nothing (a regressor of fixed quality)."""

    def __init__(self, value: float, name: str = "const-reg") -> None:
        self.value, self.name = value, name

    @property
    def task(self):
        from training.spec import Task

        return Task.REGRESSION

    def predict_one(self, x):
        check_features(x)
        return self.value

    def learn_one(self, x, y):
        check_features(x)

    def params(self):
        return {"value": self.value, "name": self.name}

    def clone(self):
        return ConstantRegressor(**self.params())

    def to_bytes(self):
        return pickle.dumps(self)

    @classmethod
    def from_bytes(cls, data):
        return pickle.loads(data)
