"""Online multinomial logistic regression in plain Python: the cheap learner of the pool.

Why not River's: ``StandardScaler | OneVsRestClassifier(LogisticRegression)`` costs about
40 µs per predict + learn on nine features, most of it in generic machinery (pipeline
dispatch, one binary model and one copy of the input per class, ``VectorDict`` arithmetic).
The trainer runs this model as champion *and* challenger on every event, so that cost
bounds the whole ingest rate. The same model written against plain dicts — online
standardisation (Welford), softmax over every class seen, SGD with L2 — does the same work
in a few microseconds, with no numpy per event (numpy's call overhead exceeds the arithmetic
at this size).

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
import pickle
from typing import Any

from training.learners.base import Features, Label, Learner, check_features

_exp = math.exp
_sqrt = math.sqrt


class LinearLearner(Learner):
    """Standardised softmax regression trained by SGD; see the module docstring.

    Args:
        lr: base learning rate of the SGD steps.
        l2: L2 penalty on the weights (not the intercepts).
        power_t: inverse-scaling exponent; the rate after ``t`` steps is ``lr / t ** power_t``.
        name: family name in metrics and reports.
    """

    snapshot_format = "pickle"

    def __init__(self, lr: float = 0.05, l2: float = 0.0, power_t: float = 0.0, name: str = "logreg") -> None:
        if lr <= 0 or not math.isfinite(lr):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}")
        if l2 < 0 or not math.isfinite(l2):
            raise ValueError(f"l2 must be a non-negative finite number, got {l2!r}")
        if power_t < 0 or not math.isfinite(power_t):
            raise ValueError(f"power_t must be a non-negative finite number, got {power_t!r}")
        self.lr = lr
        self.l2 = l2
        self.power_t = power_t
        self.name = name
        # learned state
        self._labels: list[Label] = []  # class index -> label, in order of first appearance
        self._index: dict[Label, int] = {}  # label -> class index
        self._weights: list[dict[str, float]] = []  # per class: feature -> weight
        self._bias: list[float] = []  # per class intercept
        self._stats: dict[str, list[float]] = {}  # feature -> [count, mean, sum of squared deviations]
        self._scale: dict[str, tuple[float, float]] = {}  # feature -> (mean, 1 / std or 0)
        self._steps = 0

    # -- protocol ---------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {"lr": self.lr, "l2": self.l2, "power_t": self.power_t, "name": self.name}

    def clone(self) -> LinearLearner:
        return LinearLearner(**self.params())

    def predict_proba_one(self, x: Features) -> dict[Label, float]:
        check_features(x)
        if not self._labels:
            return {}
        return dict(zip(self._labels, self._proba(self._standardize(x)), strict=True))

    def learn_one(self, x: Features, y: Label) -> None:
        check_features(x)
        index = self._index.get(y)
        if index is None:
            index = self._add_class(y)
        self._update_scale(x)
        xs = self._standardize(x)
        proba = self._proba(xs)
        self._steps += 1
        rate = self.lr if not self.power_t else self.lr / self._steps ** self.power_t
        decay = rate * self.l2
        bias = self._bias
        for k, w in enumerate(self._weights):
            g = proba[k] - 1.0 if k == index else proba[k]
            if not g:
                continue
            step = rate * g
            bias[k] -= step
            if decay:
                for f, v in xs.items():
                    w[f] -= step * v + decay * w[f]
            else:
                for f, v in xs.items():
                    w[f] -= step * v

    @property
    def classes(self) -> list[Label]:
        return sorted(self._labels, key=str)

    @property
    def n_features_in(self) -> list[str]:
        return sorted(self._stats)

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> LinearLearner:
        obj = pickle.loads(data)  # noqa: S301 - the registry verifies the HMAC before this call
        if not isinstance(obj, cls):
            raise TypeError(f"snapshot holds {type(obj).__name__}, expected {cls.__name__}")
        return obj

    # -- internals --------------------------------------------------------------------------

    def _add_class(self, y: Label) -> int:
        index = len(self._labels)
        self._labels.append(y)
        self._index[y] = index
        self._weights.append(dict.fromkeys(self._stats, 0.0))
        self._bias.append(0.0)
        return index

    def _update_scale(self, x: Features) -> None:
        """Welford's running mean and variance per feature; caches ``(mean, 1/std)``."""
        stats, scale = self._stats, self._scale
        for f, v in x.items():
            s = stats.get(f)
            if s is None:
                s = stats[f] = [0.0, 0.0, 0.0]
                for w in self._weights:
                    w[f] = 0.0
            n = s[0] + 1.0
            delta = v - s[1]
            mean = s[1] + delta / n
            m2 = s[2] + delta * (v - mean)
            s[0], s[1], s[2] = n, mean, m2
            scale[f] = (mean, 1.0 / _sqrt(m2 / n) if m2 > 0.0 else 0.0)

    def _standardize(self, x: Features) -> dict[str, float]:
        scale = self._scale
        out = {}
        for f, v in x.items():
            s = scale.get(f)
            if s is not None:
                out[f] = (v - s[0]) * s[1]
        return out

    def _proba(self, xs: dict[str, float]) -> list[float]:
        scores = []
        for w, b in zip(self._weights, self._bias, strict=True):
            z = b
            for f, v in xs.items():
                z += w[f] * v
            scores.append(z)
        top = max(scores)
        exps = [_exp(z - top) for z in scores]
        total = sum(exps)
        return [e / total for e in exps]
