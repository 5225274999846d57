"""What users actually got: joined feedback scores each served prediction, per version.

The learners' prequential metrics say how a model *would* do; a prediction record says
what the service *did* answer, with which version. Joining a label to it gives the live
score of each served version — what the serving-side promotion guard judges a promoted
version by — and the label delay (label arrival minus prediction time). The score is the
task's: accuracy for classification (``perennial_served_accuracy``), mean absolute error of
the served value against the label for regression (``perennial_served_mae``).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque

from streaming.join import JoinResult
from streaming.metrics import TrainerMetrics
from training.spec import Task


class ServedScore:
    """Rolling score per served version (the last ``keep_versions`` versions), label delay.

    ``task`` is the model's (its spec's): classification scores served labels right or
    wrong, regression the absolute error of the served value.
    """

    def __init__(self, metrics: TrainerMetrics, model: str, window: int = 1000, min_events: int = 50,
                 keep_versions: int = 8, task: Task | str = Task.CLASSIFICATION) -> None:
        self.metrics, self.model = metrics, model
        self.window, self.min_events, self.keep_versions = window, min_events, keep_versions
        self.task = Task(task)
        self._gauge = metrics.served_accuracy if self.task is Task.CLASSIFICATION else metrics.served_mae
        # version -> (last `window` outcomes, their sum, appends since the sum was exact); the
        # sum is kept alongside so each joined label costs O(1), not a sum over the window
        self._by_version: OrderedDict[str, tuple[deque[float], list[float]]] = OrderedDict()
        self._delay = metrics.label_delay.labels(model)

    def observe(self, joined: JoinResult) -> None:
        if not joined.served:
            return
        version, served_label, predicted_at = joined.served
        if joined.label_at is not None and predicted_at is not None:
            self._delay.observe(max(0.0, joined.label_at - predicted_at))
        if version is None or served_label is None:
            return
        outcome = self._outcome(served_label, joined.label)
        if outcome is None:
            return
        key = str(version)
        entry = self._by_version.get(key)
        if entry is None:
            entry = self._by_version[key] = (deque(maxlen=self.window), [0.0, 0])
            while len(self._by_version) > self.keep_versions:  # bounded label cardinality
                old, _ = self._by_version.popitem(last=False)
                self._gauge.remove(self.model, old)
        outcomes, total = entry
        if len(outcomes) == outcomes.maxlen:
            total[0] -= outcomes[0]  # the oldest outcome leaves the window on append
        outcomes.append(outcome)
        total[0] += outcome
        total[1] += 1
        if total[1] >= self.window:  # errors are floats: re-add exactly now and then
            total[0], total[1] = math.fsum(outcomes), 0
        if len(outcomes) >= self.min_events:
            self._gauge.labels(self.model, key).set(total[0] / len(outcomes))

    def _outcome(self, served, label) -> float | None:
        """1.0/0.0 for a right/wrong class; the absolute error of a served value (None when
        the record or the label is not a finite number)."""
        if self.task is Task.CLASSIFICATION:
            return float(str(served) == str(label))
        if not (_is_number(served) and _is_number(label)):
            return None
        error = abs(float(served) - float(label))
        return error if math.isfinite(error) else None


def _is_number(v: object) -> bool:
    return type(v) is int or type(v) is float
