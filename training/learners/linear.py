"""Online multinomial logistic regression in plain Python: the cheap learner of the pool.

Why not River's: ``StandardScaler | OneVsRestClassifier(LogisticRegression)`` costs about
40 µs per predict + learn on nine features, most of it in generic machinery (pipeline
dispatch, one binary model and one copy of the input per class, ``VectorDict`` arithmetic).
The trainer runs this model as champion *and* challenger on every event, so that cost
bounds the whole ingest rate. The same model written against plain dicts — online
standardisation (Welford), softmax over every class seen, SGD with L2 — does the same work
in a few microseconds, with no numpy per event (numpy's call overhead exceeds the arithmetic
at this size). Serving, which predicts whole requests of numeric rows, has a numpy path of
its own (`LinearLearner.predict_proba_rows`: one matrix product per batch).

Semantics, matching River's pipeline where it matters:

* ``learn_one`` first updates the running mean and variance with ``x``, then standardises
  ``x`` with them, then takes one SGD step on the softmax cross-entropy (plus ``l2 * w`` for
  the weights of features present in ``x``; intercepts are not regularised);
* ``predict_proba_one`` standardises with the current statistics; a feature never learned
  is ignored, a missing feature contributes nothing (mean imputation);
* the learning rate is ``lr / t ** power_t`` after ``t`` steps (``power_t=0``: constant);
* any hashable labels, any number of classes: a new class gets zero weights, so it starts
  with the same score as a class never predicted;
* deterministic: no randomness, and iteration follows insertion order.

>>> lr = LinearLearner()
>>> lr.predict_proba_one({"a": 1.0})
{}
>>> for i in range(200):
...     lr.learn_one({"a": float(i % 2), "b": 1.0}, "yes" if i % 2 else "no")
>>> lr.predict_one({"a": 1.0, "b": 1.0}), lr.predict_one({"a": 0.0})
('yes', 'no')
>>> sorted(lr.predict_proba_one({"a": 1.0}))
['no', 'yes']
>>> lr.clone().predict_proba_one({"a": 1.0})
{}
"""

from __future__ import annotations

import math
from itertools import repeat
from operator import add, mul, sub, truediv
from typing import Any

import numpy as np

from training.encoding import Encoding, RowEncoder
from training.learners.base import (
    Features,
    InvalidFeaturesError,
    Label,
    Learner,
    PickleSnapshot,
    check_features,
)
from training.spec import ModelSpec

_exp = math.exp
#: up to this many rows, `predict_proba_rows` runs the per-row Python arithmetic (measured:
#: ~8 µs a row, against ~20-30 µs for the dozen numpy calls of the vectorised path at any size)
_PYTHON_ROWS = 2
_NOT_FINITE = "rows contain NaN or infinity; features must be finite numbers"


class LinearLearner(PickleSnapshot, Learner):
    """Standardised softmax regression trained by SGD; see the module docstring.

    Args:
        lr: base learning rate of the SGD steps.
        l2: L2 penalty on the weights (not the intercepts).
        power_t: inverse-scaling exponent; the rate after ``t`` steps is ``lr / t ** power_t``.
        name: family name in metrics and reports.
        spec: the model's spec; its raw rows are one-hot / indicator encoded (`Encoding.DENSE`)
            into a layout fixed up front. None: numeric rows, layout grown as features appear.

    Layout, for speed: every feature seen gets a position (order of first appearance); the
    running statistics and each class's weights are plain lists in that order, so when an
    event carries exactly the known features in the known order (the usual case: one
    producer, one schema) the per-event arithmetic runs as ``map`` over lists in C. Any
    other event (missing, extra or reordered features) is first spread onto the layout.
    """


    def __init__(self, lr: float = 0.005, l2: float = 0.0, power_t: float = 0.0, name: str = "linear",
                 spec: ModelSpec | None = None) -> None:
        for arg, value, low in (("lr", lr, "positive"), ("l2", l2, "non-negative"), ("power_t", power_t, "non-negative")):
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0 or (arg == "lr" and value == 0):
                raise ValueError(f"{arg} must be a {low} finite number, got {value!r}")
        self.lr = lr
        self.l2 = l2
        self.power_t = power_t
        self.name = name
        self.spec = spec
        encoder = RowEncoder(spec, Encoding.DENSE) if spec is not None else None
        # None when rows need no encoding (no spec, or a numeric-only one): the fast path
        self._encode = None if encoder is None or encoder.identity else encoder.encode
        # learned state
        self._labels: list[Label] = []  # class index -> label, in order of first appearance
        self._index: dict[Label, int] = {}  # label -> class index
        self._weights: list[list[float]] = []  # per class, per feature position
        self._bias: list[float] = []  # per class intercept
        self._names: tuple[str, ...] = ()  # feature position -> name
        self._pos: dict[str, int] = {}  # feature name -> position
        self._count: list[float] = []  # per feature: events that carried it
        self._mean: list[float] = []  # per feature: running mean
        self._m2: list[float] = []  # per feature: sum of squared deviations (Welford)
        self._inv_std: list[float] = []  # per feature: 1 / std, or 0 while the feature is constant
        self._steps = 0
        self._last: tuple[Features, list[float], list[float], list[float]] | None = None
        if encoder is not None:  # the layout is the encoder's, known before any event
            for column in encoder.columns:
                self._pos[column] = len(self._names)
                self._names += (column,)
                for stat in (self._count, self._mean, self._m2, self._inv_std):
                    stat.append(0.0)

    # -- protocol ---------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {"lr": self.lr, "l2": self.l2, "power_t": self.power_t, "name": self.name, "spec": self.spec}

    def clone(self) -> LinearLearner:
        return LinearLearner(**self.params())

    def predict_proba_one(self, x: Features) -> dict[Label, float]:
        if self._encode is not None:
            x = self._encode(x)
        else:
            check_features(x)
        if not self._labels:
            return {}
        if tuple(x) == self._names:
            values = list(x.values())
            xs = list(map(mul, map(sub, values, self._mean), self._inv_std))
            proba = self._proba(xs)
            # test-then-train: the learn_one that follows on the same event reuses this work
            self._last = (x, values, xs, proba)
        else:
            xs = list(map(mul, map(sub, self._spread(x), self._mean), self._inv_std))
            proba = self._proba(xs)
        return dict(zip(self._labels, proba, strict=True))

    def predict_proba_rows(self, rows: np.ndarray) -> np.ndarray:
        """Serving's fast path (`training.learners.base.RowsPredictor`): ``[n, n_features]``
        numeric rows in `n_features_in` order in, ``[n, n_classes]`` probabilities in `classes`
        order out. Why: per instance, `predict_proba_one` is a few microseconds of Python; a
        request of 64 rows is one standardisation, one matrix product and one softmax here.
        The arithmetic is `predict_proba_one`'s (the same differences, products and
        exponentials); only the order in which each score's products are summed differs, so
        the two agree to about 1e-15. Non-finite values are refused, as there."""
        if self._encode is not None:
            raise TypeError("predict_proba_rows takes numeric rows; this model's spec has other kinds")
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2:
            x = x.reshape(len(x), -1)
        plan = self._rows_plan()
        if x.shape[1] != plan.width:
            raise ValueError(f"rows have {x.shape[1]} columns; expected {plan.width} ({self.n_features_in})")
        n = x.shape[0]
        if n <= _PYTHON_ROWS:  # numpy's per-call overhead exceeds a few rows' arithmetic
            return self._proba_rows_python(x, plan)
        if not np.isfinite(x).all():
            raise InvalidFeaturesError(_NOT_FINITE)
        if plan.weights is None:  # no class learned yet
            return np.zeros((n, 0))
        if plan.columns is not None:
            x = x[:, plan.columns]
        z = (x - plan.mean) * plan.inv_std  # standardised, layout order
        out = np.empty((n, len(plan.order)))
        if plan.binary:  # one logistic of the score difference, split by sign as `_proba` does
            d = z @ plan.weights + plan.bias
            e = np.exp(-np.abs(d))
            q = e / (1.0 + e)
            r = 1.0 - q
            positive = d >= 0.0
            out[:, plan.order[0]] = np.where(positive, q, r)
            out[:, plan.order[1]] = np.where(positive, r, q)
            return out
        scores = z @ plan.weights.T + plan.bias
        exps = np.exp(scores - scores.max(axis=1, keepdims=True))
        out[:, plan.order] = exps / exps.sum(axis=1, keepdims=True)
        return out

    def _proba_rows_python(self, x: np.ndarray, plan: _RowsPlan) -> np.ndarray:
        """`predict_proba_rows` of a few rows with `predict_proba_one`'s own code path."""
        mean, inv_std, learned = self._mean, self._inv_std, plan.learned
        out = []
        for values in x.tolist() if plan.columns is None else x[:, plan.columns].tolist():
            if not math.isfinite(sum(values)) and not all(map(math.isfinite, values)):  # `check_features`' test
                raise InvalidFeaturesError(_NOT_FINITE)
            if plan.weights is not None:
                p = self._proba(list(map(mul, map(sub, values, mean), inv_std)))
                out.append(p if learned is None else [p[k] for k in learned])
        return np.array(out, dtype=np.float64).reshape(x.shape[0], len(plan.order))

    def _rows_plan(self) -> _RowsPlan:
        """The learned state as arrays for `predict_proba_rows`, rebuilt only after learning."""
        key = (self._steps, len(self._labels), len(self._names))
        plan = self.__dict__.get("_plan")
        if plan is None or plan.key != key:
            plan = self._plan = _RowsPlan.of(self, key)
        return plan

    def learn_one(self, x: Features, y: Label) -> None:
        last, self._last = self._last, None
        if self._encode is not None:
            x = self._encode(x)  # a fresh dict: the cached prediction of the raw row is not reused
        else:
            check_features(x)
        index = self._index.get(y)
        if index is None:
            index = self._add_class(y)
            last = None  # one more class: the cached probabilities lack it
        # the usual event: exactly the known features in the known order (see the class doc)
        values = list(x.values()) if tuple(x) == self._names else None
        # the forward pass uses the statistics from *before* this event (what a prediction
        # of it saw), so a prediction just made of the same unchanged event is reused
        if last is not None and last[0] is x and values is not None and last[1] == values:
            xs, proba = last[2], last[3]
        else:
            xs = self._xs(x)
            proba = self._proba(xs)
        self._update_scale(x, values)
        self._steps += 1
        rate = self.lr / self._steps ** self.power_t if self.power_t else self.lr
        keep = 1.0 - rate * self.l2
        weights, bias = self._weights, self._bias
        for k, p in enumerate(proba):
            step = rate * (p - 1.0 if k == index else p)
            if not step:
                continue
            bias[k] -= step
            w = map(mul, weights[k], repeat(keep)) if keep != 1.0 else weights[k]
            weights[k] = list(map(sub, w, map(mul, xs, repeat(step))))

    @property
    def classes(self) -> list[Label]:
        return sorted(self._labels, key=str)

    @property
    def n_features_in(self) -> list[str]:
        return list(self.spec.feature_names) if self.spec is not None else sorted(self._names)

    # -- internals --------------------------------------------------------------------------

    def _add_class(self, y: Label) -> int:
        index = len(self._labels)
        self._labels.append(y)
        self._index[y] = index
        self._weights.append([0.0] * len(self._names))
        self._bias.append(0.0)
        return index

    def _xs(self, x: Features) -> list[float]:
        """Standardised values in layout order (0 for a missing feature: mean imputation)."""
        values = list(x.values()) if tuple(x) == self._names else self._spread(x)
        return list(map(mul, map(sub, values, self._mean), self._inv_std))

    def _spread(self, x: Features) -> list[float]:
        """Values in layout order; a missing feature takes its mean, a feature never learned
        is ignored."""
        values = self._mean.copy()
        pos = self._pos
        for f, v in x.items():
            i = pos.get(f)
            if i is not None:
                values[i] = v
        return values

    def _update_scale(self, x: Features, values: list[float] | None = None) -> None:
        """Welford's running mean and variance per feature, then the cached ``1 / std``.

        ``values``: ``x``'s values when its features are exactly the layout, in order."""
        if values is not None:  # every known feature, in order: update as vectors
            count = self._count = list(map(add, self._count, repeat(1.0)))
            delta = list(map(sub, values, self._mean))
            mean = self._mean = list(map(add, self._mean, map(truediv, delta, count)))
            self._m2 = list(map(add, self._m2, map(mul, delta, map(sub, values, mean))))
        else:
            pos = self._pos
            for f in x:
                if f not in pos:
                    pos[f] = len(self._names)
                    self._names += (f,)
                    for stat in (self._count, self._mean, self._m2, self._inv_std):
                        stat.append(0.0)
                    for w in self._weights:
                        w.append(0.0)
            count, mean, m2 = self._count, self._mean, self._m2
            for f, v in x.items():
                i = pos[f]
                n = count[i] = count[i] + 1.0
                delta = v - mean[i]
                mean[i] += delta / n
                m2[i] += delta * (v - mean[i])
        try:  # in C while every feature has varied (pow(a, 0.5) is exactly a ** 0.5)
            self._inv_std = list(map(pow, map(truediv, self._count, self._m2), repeat(0.5)))
        except ZeroDivisionError:  # a feature constant so far: 0, so it contributes nothing yet
            self._inv_std = [(n / m) ** 0.5 if m > 0.0 else 0.0 for n, m in zip(self._count, self._m2, strict=True)]

    def _proba(self, xs: list[float]) -> list[float]:
        weights, bias = self._weights, self._bias
        if len(weights) == 2:  # binary: one logistic of the score difference
            d = bias[1] - bias[0] + sum(map(mul, map(sub, weights[1], weights[0]), xs))
            if d >= 0.0:
                e = _exp(-d)
                p0 = e / (1.0 + e)
                return [p0, 1.0 - p0]
            e = _exp(d)
            p1 = e / (1.0 + e)
            return [1.0 - p1, p1]
        scores = [b + sum(map(mul, w, xs)) for w, b in zip(weights, bias, strict=True)]
        top = max(scores)
        exps = [_exp(z - top) for z in scores]
        total = sum(exps)
        return [e / total for e in exps]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_last"] = None  # a reference to the caller's last event is not state
        state["_encode"] = None  # a bound method of the encoder: rebuilt on load
        state.pop("_plan", None)  # arrays derived from the state, rebuilt on first use
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("spec", None)  # snapshots from before the model spec
        self.__dict__.update(state)
        encoder = RowEncoder(self.spec, Encoding.DENSE) if self.spec is not None else None
        self._encode = None if encoder is None or encoder.identity else encoder.encode


class _RowsPlan:
    """`LinearLearner`'s state as numpy arrays, in its layout order, for a batch of rows.

    ``binary``: ``weights`` and ``bias`` are the difference of class 1's and class 0's (what
    `LinearLearner._proba` uses for two classes); otherwise one row of weights per class.
    ``order[k]``: the output column (`LinearLearner.classes` order) of learned class ``k``;
    ``learned[j]``: the learned class of output column ``j`` (None when the two orders agree).
    ``columns``: the `n_features_in` column of each layout position, None when they agree."""

    __slots__ = ("key", "width", "columns", "mean", "inv_std", "weights", "bias", "binary", "order", "learned")

    @classmethod
    def of(cls, learner: LinearLearner, key: tuple) -> _RowsPlan:
        plan = cls()
        plan.key = key
        names = learner._names
        accepted = learner.n_features_in
        plan.width = len(accepted)
        if list(names) == accepted:
            plan.columns = None
        else:  # a learner without a spec: layout in order of first appearance, rows sorted
            where = {name: i for i, name in enumerate(accepted)}
            plan.columns = np.array([where[name] for name in names], dtype=np.intp)
        plan.mean = np.array(learner._mean, dtype=np.float64)
        plan.inv_std = np.array(learner._inv_std, dtype=np.float64)
        labels = learner._labels
        by_text = sorted(range(len(labels)), key=lambda k: str(labels[k]))  # `classes` order
        plan.learned = None if by_text == list(range(len(labels))) else by_text
        plan.order = [0] * len(labels)
        for column, k in enumerate(by_text):
            plan.order[k] = column
        plan.binary = len(labels) == 2
        if not labels:
            plan.weights = plan.bias = None
        elif plan.binary:
            w0, w1 = learner._weights
            plan.weights = np.array(list(map(sub, w1, w0)), dtype=np.float64)
            plan.bias = learner._bias[1] - learner._bias[0]
        else:
            plan.weights = np.array(learner._weights, dtype=np.float64).reshape(len(labels), len(names))
            plan.bias = np.array(learner._bias, dtype=np.float64)
        return plan
