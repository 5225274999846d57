"""Online linear regression in plain Python: the cheap regressor of the pool (``linear``).

It shares `training.learners.linear.LinearLearner`'s layout and online standardisation of
the inputs (Welford per feature, lists in layout order, ``map`` in C on the usual event), for
the same reason: the trainer runs it as champion and challenger on every event, and River's
``StandardScaler | LinearRegression`` pipeline costs several times more per event.

The target is standardised too, with its own running mean and variance, so one learning
rate suits a target in the units of a price (1e5) as well as of a temperature: the model
fits ``z(y) = b + w · z(x)`` by SGD on the squared error, and predicts
``mean(y) + std(y) * (b + w · z(x))``.

Semantics, as for the classifier: ``learn_one`` computes the forward pass with the statistics
from before the event (what a prediction of it saw), then updates the feature and target
statistics, then takes one SGD step (``l2 * w`` on the weights, not the intercept); the rate
is ``lr / t ** power_t``; a feature never learned is ignored and a missing one is imputed
with its mean; deterministic.

>>> reg = LinearRegressor()
>>> reg.predict_one({"a": 1.0}) is None
True
>>> for i in range(2000):
...     a = (i * 7 % 11) / 10
...     reg.learn_one({"a": a, "b": 1.0}, 3.0 * a + 100.0)
>>> round(reg.predict_one({"a": 0.5, "b": 1.0}), 1)
101.5
>>> reg.classes, reg.clone().predict_one({"a": 1.0})
([], None)
"""

from __future__ import annotations

from itertools import repeat
from operator import mul, sub

from training.learners.base import Features, Learner, check_features
from training.learners.linear import LinearLearner
from training.spec import ModelSpec, Task


class LinearRegressor(LinearLearner):
    """Standardised linear regression trained by SGD on the squared error; see the module
    docstring. Arguments as `LinearLearner`'s (``lr`` is the step in standardised units)."""

    def __init__(self, lr: float = 0.01, l2: float = 0.0, power_t: float = 0.0, name: str = "linear",
                 spec: ModelSpec | None = None) -> None:
        if spec is not None and spec.task is not Task.REGRESSION:
            raise ValueError(f"LinearRegressor predicts a number; the spec's task is {spec.task.value}")
        super().__init__(lr=lr, l2=l2, power_t=power_t, name=name, spec=spec)
        self._weights = [[0.0] * len(self._names)]  # one row: the layout code grows it with new features
        self._bias = [0.0]
        self._y_n = 0.0  # target: events, running mean, sum of squared deviations
        self._y_mean = 0.0
        self._y_m2 = 0.0

    @property
    def task(self) -> Task:
        return Task.REGRESSION

    def clone(self) -> LinearRegressor:
        return LinearRegressor(**self.params())

    def predict_proba_one(self, x: Features) -> dict:
        return Learner.predict_proba_one(self, x)  # a regressor: no class probabilities

    def predict_one(self, x: Features) -> float | None:
        if self._encode is not None:
            x = self._encode(x)
        else:
            check_features(x)
        if not self._steps:
            return None
        if tuple(x) == self._names:
            values = list(x.values())
            xs = list(map(mul, map(sub, values, self._mean), self._inv_std))
            score = self._bias[0] + sum(map(mul, self._weights[0], xs))
            self._last = (x, values, xs, score)  # the learn_one that follows reuses this pass
        else:
            xs = list(map(mul, map(sub, self._spread(x), self._mean), self._inv_std))
            score = self._bias[0] + sum(map(mul, self._weights[0], xs))
        return self._y_mean + self._y_std() * score

    def learn_one(self, x: Features, y: float) -> None:
        last, self._last = self._last, None
        if self._encode is not None:
            x = self._encode(x)
        else:
            check_features(x)
        y = float(y)
        values = list(x.values()) if tuple(x) == self._names else None
        if last is not None and last[0] is x and values is not None and last[1] == values:
            xs, score = last[2], last[3]
        else:
            xs = self._xs(x)
            score = self._bias[0] + sum(map(mul, self._weights[0], xs))
        self._update_scale(x, values)
        # target statistics first, so the first event's standardised target is 0, not a guess
        n = self._y_n = self._y_n + 1.0
        delta = y - self._y_mean
        self._y_mean += delta / n
        self._y_m2 += delta * (y - self._y_mean)
        std = self._y_std()
        z = (y - self._y_mean) / std if std > 0.0 else 0.0
        self._steps += 1
        rate = self.lr / self._steps ** self.power_t if self.power_t else self.lr
        step = rate * (score - z)
        if not step and not self.l2:
            return
        self._bias[0] -= step
        w = self._weights[0]
        if self.l2:
            w = map(mul, w, repeat(1.0 - rate * self.l2))
        self._weights[0] = list(map(sub, w, map(mul, xs, repeat(step))))

    def _y_std(self) -> float:
        return (self._y_m2 / self._y_n) ** 0.5 if self._y_m2 > 0.0 else 0.0

    @property
    def classes(self) -> list:
        return []
