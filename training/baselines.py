"""The two baselines every run is judged against, scored on the same events as the system.

``static`` is the bootstrap champion frozen — what a train-once service would serve.
``online_only`` is the same model learning online but never replaced. ``delay`` makes the
online baseline learn each label that many events after predicting, as real feedback arrives
late (the demo), so it is compared fairly with what the service answered; replay uses 0.

>>> from training.learners.candidates import build_candidates
>>> b = Baselines(build_candidates("logreg")[0], window=10)
>>> b.step({"a": 1.0}, 1)
{'static': False, 'online_only': False}
>>> b.summary()["online_only"]["accuracy"]
0.0
"""

from __future__ import annotations

import collections
import copy

from training.evaluation import PrequentialMetrics
from training.learners.base import Features, Label, Learner

NAMES = ("static", "online_only")


class Baselines:
    def __init__(self, champion: Learner, window: int, delay: int = 0) -> None:
        self.learners = {"static": copy.deepcopy(champion), "online_only": copy.deepcopy(champion)}
        self.metrics = {name: PrequentialMetrics(window) for name in NAMES}
        self.delay = delay
        self._pending: collections.deque[tuple[Features, Label]] = collections.deque()

    def step(self, x: Features, y: Label) -> dict[str, bool]:
        """Predict, score, then let the online baseline learn; returns who was right."""
        out = {}
        for name, learner in self.learners.items():
            proba = learner.predict_proba_one(x)
            pred = max(proba, key=proba.__getitem__) if proba else None
            out[name] = self.metrics[name].update(y, pred, proba)
        self._pending.append((x, y))
        while len(self._pending) > self.delay:
            self.learners["online_only"].learn_one(*self._pending.popleft())
        return out

    def summary(self) -> dict[str, dict[str, float]]:
        return {name: {"accuracy": m.accuracy, "f1_macro": m.f1_macro} for name, m in self.metrics.items()}
