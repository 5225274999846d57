"""Tiny real learners for tests (MLServer-style toy models, not mocks)."""

from __future__ import annotations

import copy
import pickle

from training.learners.base import Learner, PickleSnapshot, check_features


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


# -- learners that break one property of the contract each (for `perennial check`) -----------


class CountingLearner(PickleSnapshot, Learner):
    """Predicts the class frequencies it has learned: a correct, minimal learner."""

    name = "counting"

    def __init__(self, spec=None) -> None:
        self.spec = spec
        self.counts: dict = {}

    def predict_proba_one(self, x):
        total = sum(self.counts.values())
        return {c: n / total for c, n in self.counts.items()} if total else {}

    def learn_one(self, x, y):
        self.counts[y] = self.counts.get(y, 0) + 1

    def params(self):
        return {"spec": self.spec}

    def clone(self):
        return type(self)(**self.params())


class PeekingLearner(CountingLearner):
    """Broken: learns while predicting (counts its own predictions)."""

    name = "peeking"

    def predict_proba_one(self, x):
        proba = super().predict_proba_one(x)
        if proba:
            best = max(proba, key=proba.__getitem__)
            self.counts[best] += 1
        return proba


class StickyCloneLearner(CountingLearner):
    """Broken: its clone keeps the learned state."""

    name = "sticky-clone"

    def clone(self):
        return copy.deepcopy(self)


class ForgetfulSnapshotLearner(CountingLearner):
    """Broken: its snapshot drops the learned state."""

    name = "forgetful-snapshot"

    def to_bytes(self):
        return pickle.dumps(self.params())

    @classmethod
    def from_bytes(cls, data):
        return cls(**pickle.loads(data))


def counting(spec):
    return CountingLearner(spec)


def peeking(spec):
    return PeekingLearner(spec)


def sticky_clone(spec):
    return StickyCloneLearner(spec)


def forgetful_snapshot(spec):
    return ForgetfulSnapshotLearner(spec)
