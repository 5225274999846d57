"""The two baselines every run is judged against, scored on the same events as the system.

``static`` is the bootstrap champion frozen — what a train-once service would serve.
``online_only`` is the same model learning online but never replaced. ``delay`` makes the
online baseline learn each label that many events after predicting, as real feedback arrives
late (the demo), so it is compared fairly with what the service answered; replay uses 0.
Both are scored in the champion's task's metrics: accuracy and macro-F1, or MAE, RMSE, R².

>>> from training.learners.candidates import build_candidates
>>> b = Baselines(build_candidates("logreg")[0], window=10)
>>> b.step({"a": 1.0}, 1)
{'static': False, 'online_only': False}
>>> b.summary()["online_only"]["accuracy"]
0.0
>>> from training.spec import Task, numeric_spec
>>> r = Baselines(build_candidates("linear", numeric_spec(["a"], task=Task.REGRESSION))[0], window=10)
>>> r.step({"a": 1.0}, 2.0), r.step({"a": 1.0}, 4.0)
({'static': 2.0, 'online_only': 2.0}, {'static': 2.0, 'online_only': 2.0})
>>> r.summary()["online_only"]["mae"]
2.0
"""

from __future__ import annotations

import collections
import copy

from training.evaluation import PrequentialMetrics, RegressionMetrics
from training.learners.base import Features, Label, Learner
from training.spec import Task

NAMES = ("static", "online_only")


class Baselines:
    def __init__(self, champion: Learner, window: int, delay: int = 0) -> None:
        self.learners = {"static": copy.deepcopy(champion), "online_only": copy.deepcopy(champion)}
        self.regression = champion.task is Task.REGRESSION
        metrics = RegressionMetrics if self.regression else PrequentialMetrics
        self.metrics = {name: metrics(window) for name in NAMES}
        self.delay = delay
        self._pending: collections.deque[tuple[Features, Label]] = collections.deque()

    def step(self, x: Features, y: Label) -> dict[str, bool] | dict[str, float]:
        """Predict, score, then let the online baseline learn; returns who was right
        (regression: each one's absolute error)."""
        out = {}
        for name, learner in self.learners.items():
            if self.regression:
                out[name] = self.metrics[name].update(y, learner.predict_one(x))
                continue
            proba = learner.predict_proba_one(x)
            pred = max(proba, key=proba.__getitem__) if proba else None
            out[name] = self.metrics[name].update(y, pred, proba)
        self._pending.append((x, y))
        while len(self._pending) > self.delay:
            self.learners["online_only"].learn_one(*self._pending.popleft())
        return out

    def summary(self) -> dict[str, dict[str, float]]:
        if self.regression:
            return {name: {"mae": m.mae, "rmse": m.rmse, "r2": m.r2} for name, m in self.metrics.items()}
        return {name: {"accuracy": m.accuracy, "f1_macro": m.f1_macro} for name, m in self.metrics.items()}
