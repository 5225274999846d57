"""Prequential (test-then-train) evaluation: every event scores the learner *before* it learns.

`PrequentialMetrics` keeps accuracy, precision, recall, macro-F1 and log-loss over the whole
stream and over a sliding window, in O(1) per event: counts are incremented on arrival and
decremented when an event leaves the window, and the ratios are computed only when read.
That matters because the trainer updates one of these per learner per event.

It also keeps the last ``window`` correctness bits, which the promotion test pairs between
champion and challenger (both saw exactly the same events).

>>> m = PrequentialMetrics(window=2)
>>> for y, p in [(1, 1), (0, 1), (1, 1)]:
...     _ = m.update(y, p, {p: 0.9, 1 - p: 0.1})
>>> round(m.accuracy, 3), m.window_accuracy
(0.667, 0.5)
"""

from __future__ import annotations

import math
from collections import deque

from training.learners.base import Label

_EPS = 1e-15
_log = math.log


class _Counts:
    """Per-class true/predicted/true-positive counts, enough for precision, recall and F1."""

    __slots__ = ("n", "correct", "tp", "n_true", "n_pred", "log_loss_sum")

    def __init__(self) -> None:
        self.n = 0
        self.correct = 0
        self.tp: dict[Label, int] = {}
        self.n_true: dict[Label, int] = {}
        self.n_pred: dict[Label, int] = {}
        self.log_loss_sum = 0.0

    def add(self, y: Label, p: Label | None, loss: float, sign: int) -> None:
        self.n += sign
        self.log_loss_sum += sign * loss
        self.n_true[y] = self.n_true.get(y, 0) + sign
        if p is not None:
            self.n_pred[p] = self.n_pred.get(p, 0) + sign
        if y == p:
            self.correct += sign
            self.tp[y] = self.tp.get(y, 0) + sign

    def _classes(self) -> set[Label]:
        return {c for c, k in self.n_true.items() if k} | {c for c, k in self.n_pred.items() if k}

    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def precision(self) -> float:
        """Macro precision over classes that were predicted at least once."""
        scores = [self.tp.get(c, 0) / k for c, k in self.n_pred.items() if k]
        return sum(scores) / len(scores) if scores else 0.0

    def recall(self) -> float:
        """Macro recall over classes that occurred at least once."""
        scores = [self.tp.get(c, 0) / k for c, k in self.n_true.items() if k]
        return sum(scores) / len(scores) if scores else 0.0

    def f1_macro(self) -> float:
        classes = self._classes()
        if not classes:
            return 0.0
        total = 0.0
        for c in classes:
            denom = self.n_true.get(c, 0) + self.n_pred.get(c, 0)
            total += 2 * self.tp.get(c, 0) / denom if denom else 0.0
        return total / len(classes)

    def log_loss(self) -> float:
        return self.log_loss_sum / self.n if self.n else 0.0


class PrequentialMetrics:
    """Cumulative and sliding-window classification metrics for one learner."""

    def __init__(self, window: int = 1000, history: int | None = None) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1 event, got {window}")
        self.window = window
        self.total = _Counts()
        self.recent = _Counts()
        self._events: deque[tuple[Label, Label | None, float]] = deque()
        #: correctness of the last ``history`` (default ``window``) predictions, oldest first;
        #: the promotion test pairs these between champion and challenger
        self.correct_bits: deque[bool] = deque(maxlen=history or window)

    def update(self, y: Label, y_pred: Label | None, proba: dict[Label, float] | None = None) -> bool:
        """Score one prediction made *before* learning ``y``; returns whether it was right."""
        # an untrained learner (empty proba) knows nothing: score it as a coin flip
        p = proba.get(y, 0.0) if proba else 0.5
        loss = -_log(min(max(p, _EPS), 1.0))
        correct = y == y_pred
        # `_Counts.add(y, y_pred, loss, +1)` on both scorecards, inlined: this runs once per
        # learner per event and the calls were a third of its cost
        for c in (self.total, self.recent):
            c.n += 1
            c.log_loss_sum += loss
            n_true = c.n_true
            n_true[y] = n_true.get(y, 0) + 1
            if y_pred is not None:
                n_pred = c.n_pred
                n_pred[y_pred] = n_pred.get(y_pred, 0) + 1
            if correct:
                c.correct += 1
                tp = c.tp
                tp[y] = tp.get(y, 0) + 1
        events = self._events
        events.append((y, y_pred, loss))
        if len(events) > self.window:
            old_y, old_p, old_loss = events.popleft()
            self.recent.add(old_y, old_p, old_loss, -1)
        self.correct_bits.append(correct)
        return correct

    @property
    def n(self) -> int:
        return self.total.n

    @property
    def accuracy(self) -> float:
        return self.total.accuracy()

    @property
    def window_accuracy(self) -> float:
        return self.recent.accuracy()

    @property
    def f1_macro(self) -> float:
        return self.total.f1_macro()

    @property
    def window_f1(self) -> float:
        return self.recent.f1_macro()

    def summary(self) -> dict[str, float]:
        """Every metric, cumulative and windowed, as plain floats (for JSON and registry metadata)."""
        out: dict[str, float] = {"events": self.total.n}
        for prefix, counts in (("", self.total), ("window_", self.recent)):
            out[prefix + "accuracy"] = counts.accuracy()
            out[prefix + "precision"] = counts.precision()
            out[prefix + "recall"] = counts.recall()
            out[prefix + "f1_macro"] = counts.f1_macro()
            out[prefix + "log_loss"] = counts.log_loss()
        return out
