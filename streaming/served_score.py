"""What users actually got: joined feedback scores each served prediction, per version.

The learners' prequential accuracy says how a model *would* do; a prediction record says
what the service *did* answer, with which version. Joining a label to it gives the live
accuracy of each served version — what the serving-side promotion guard judges a promoted
version by — and the label delay (label arrival minus prediction time).
"""

from __future__ import annotations

from collections import OrderedDict, deque

from streaming.join import JoinResult
from streaming.metrics import TrainerMetrics


class ServedScore:
    """Rolling accuracy per served version (the last ``keep_versions`` versions), label delay."""

    def __init__(self, metrics: TrainerMetrics, model: str, window: int = 1000, min_events: int = 50,
                 keep_versions: int = 8) -> None:
        self.metrics, self.model = metrics, model
        self.window, self.min_events, self.keep_versions = window, min_events, keep_versions
        # version -> (last `window` outcomes, how many of them were right); the count is kept
        # alongside so each joined label costs O(1), not a sum over the window
        self._by_version: OrderedDict[str, tuple[deque[bool], list[int]]] = OrderedDict()
        self._delay = metrics.label_delay.labels(model)

    def observe(self, joined: JoinResult) -> None:
        if not joined.served:
            return
        version, served_label, predicted_at = joined.served
        if joined.label_at is not None and predicted_at is not None:
            self._delay.observe(max(0.0, joined.label_at - predicted_at))
        if version is None or served_label is None:
            return
        key = str(version)
        entry = self._by_version.get(key)
        if entry is None:
            entry = self._by_version[key] = (deque(maxlen=self.window), [0])
            while len(self._by_version) > self.keep_versions:  # bounded label cardinality
                old, _ = self._by_version.popitem(last=False)
                self.metrics.served_accuracy.remove(self.model, old)
        scores, right = entry
        if len(scores) == scores.maxlen:
            right[0] -= scores[0]  # the oldest outcome leaves the window on append
        correct = str(served_label) == str(joined.label)
        scores.append(correct)
        right[0] += correct
        if len(scores) >= self.min_events:
            self.metrics.served_accuracy.labels(self.model, key).set(right[0] / len(scores))
