"""Prequential (test-then-train) evaluation: every event scores the learner *before* it learns.

Classification: `PrequentialMetrics`; regression: `RegressionMetrics` (MAE, RMSE, R²).

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


class RegressionMetrics:
    """Cumulative and sliding-window MAE, RMSE and R² for one regressor, O(1) per event.

    The whole stream keeps sums of the absolute and squared errors and Welford's running
    variance of the target (R²'s denominator); the window keeps the same sums, adding an
    arriving event and subtracting the one that leaves, with the target's sums shifted by
    the first target seen (so a large mean does not cancel the variance away) and summed
    afresh from the window once per ``window`` events (so rounding cannot accumulate).

    A prediction of None (a learner that has learned nothing yet) is scored as the mean of
    the targets seen so far: the trivial regressor, not a free pass.

    ``abs_errors`` keeps the last ``history`` (default ``window``) absolute errors, oldest
    first; the paired promotion test pairs these between champion and challenger, as
    `PrequentialMetrics.correct_bits` for classification.

    >>> m = RegressionMetrics(window=2)
    >>> for y, p in [(1.0, 2.0), (3.0, 3.0), (5.0, 2.0)]:
    ...     _ = m.update(y, p)
    >>> m.mae, m.window_mae, round(m.rmse, 4), m.window_r2
    (1.3333333333333333, 1.5, 1.8257, -3.5)
    >>> list(m.abs_errors)
    [0.0, 3.0]
    """

    def __init__(self, window: int = 1000, history: int | None = None) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1 event, got {window}")
        self.window = window
        self.n = 0
        self._abs = 0.0
        self._sq = 0.0
        self._y_mean = 0.0
        self._y_m2 = 0.0
        self._events: deque[tuple[float, float]] = deque()  # (y - shift, error)
        self._shift: float | None = None
        self._w_abs = self._w_sq = self._w_dy = self._w_dy2 = 0.0
        self._since_sum = 0
        #: absolute errors of the last ``history`` predictions, oldest first
        self.abs_errors: deque[float] = deque(maxlen=history or window)

    def update(self, y: float, y_pred: float | None) -> float:
        """Score one prediction made *before* learning ``y``; returns its absolute error."""
        if y_pred is None:
            y_pred = self._y_mean
        err = y - y_pred
        a = abs(err)
        sq = err * err
        n = self.n = self.n + 1
        self._abs += a
        self._sq += sq
        delta = y - self._y_mean
        self._y_mean += delta / n
        self._y_m2 += delta * (y - self._y_mean)
        if self._shift is None:
            self._shift = y
        dy = y - self._shift
        events = self._events
        events.append((dy, err))
        self._w_abs += a
        self._w_sq += sq
        self._w_dy += dy
        self._w_dy2 += dy * dy
        if len(events) > self.window:
            old_dy, old_err = events.popleft()
            self._w_abs -= abs(old_err)
            self._w_sq -= old_err * old_err
            self._w_dy -= old_dy
            self._w_dy2 -= old_dy * old_dy
        self._since_sum += 1
        if self._since_sum >= self.window:
            self._resum()
        self.abs_errors.append(a)
        return a

    def _resum(self) -> None:
        self._since_sum = 0
        events = self._events
        self._w_abs = math.fsum(abs(e) for _, e in events)
        self._w_sq = math.fsum(e * e for _, e in events)
        self._w_dy = math.fsum(d for d, _ in events)
        self._w_dy2 = math.fsum(d * d for d, _ in events)

    # -- whole stream ---------------------------------------------------------------------

    @property
    def mae(self) -> float:
        return self._abs / self.n if self.n else 0.0

    @property
    def rmse(self) -> float:
        return math.sqrt(self._sq / self.n) if self.n else 0.0

    @property
    def r2(self) -> float:
        """1 - SSE / SST; 0.0 while the target has not varied (R² is undefined then)."""
        return 1.0 - self._sq / self._y_m2 if self._y_m2 > 0.0 else 0.0

    # -- sliding window -------------------------------------------------------------------

    @property
    def window_n(self) -> int:
        return len(self._events)

    @property
    def window_mae(self) -> float:
        k = len(self._events)
        return max(self._w_abs, 0.0) / k if k else 0.0

    @property
    def window_rmse(self) -> float:
        k = len(self._events)
        return math.sqrt(max(self._w_sq, 0.0) / k) if k else 0.0

    @property
    def window_r2(self) -> float:
        k = len(self._events)
        if not k:
            return 0.0
        sst = self._w_dy2 - self._w_dy * self._w_dy / k
        return 1.0 - max(self._w_sq, 0.0) / sst if sst > 1e-12 * max(self._w_dy2, 1.0) else 0.0

    def summary(self) -> dict[str, float]:
        """Every metric, cumulative and windowed, as plain floats (for JSON and registry metadata)."""
        return {"events": self.n, "mae": self.mae, "rmse": self.rmse, "r2": self.r2,
                "window_mae": self.window_mae, "window_rmse": self.window_rmse, "window_r2": self.window_r2}
