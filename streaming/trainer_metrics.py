"""The trainer's metrics with the ``model`` label bound once, and series hygiene for gauges
whose label sets change (the champion's version, learners that retire)."""

from __future__ import annotations

from collections.abc import Iterable

from streaming.metrics import TrainerMetrics
from streaming.schemas import Reason
from training.loop_types import LearnerStats


class BoundTrainerMetrics:
    """Label-bound children, created once: ``.labels()`` per event would cost a dict lookup
    and a lock on the hot path."""

    def __init__(self, m: TrainerMetrics, model: str) -> None:
        self.m, self.model = m, model
        self.events_consumed = m.events_consumed.labels(model)
        self.events_learned = m.events_learned.labels(model)
        self.model_events_learned = m.model_events_learned.labels(model)
        self.checkpoint_seconds = m.checkpoint_seconds.labels(model)
        self.learn_seconds = m.learn_seconds.labels(model)
        self.promotions = m.promotions.labels(model)
        self.rollbacks = m.rollbacks.labels(model)
        self.fetcher_restarts = m.fetcher_restarts.labels(model)  # 0 from the start: a series to alert on
        self.timestamps_ignored = m.timestamps_ignored.labels(model)
        self.last_refresh_timestamp = m.last_refresh_timestamp.labels(model)
        self._champion: tuple[str, str] | None = None
        self._learners: set[tuple[str, str]] = set()

    def dead_lettered(self, reason: Reason | str) -> None:
        self.m.events_dead_lettered.labels(self.model, str(reason)).inc()

    def join(self, result: str, n: int) -> None:
        self.m.label_join.labels(self.model, result).inc(n)

    def drift(self, learner: str) -> None:
        self.m.drift_detected.labels(self.model, learner).inc()

    def champion(self, version: int | None, learner: str) -> None:
        new = (str(version), learner)
        if self._champion is not None and self._champion != new:
            self.m.champion_info.remove(self.model, *self._champion)
        self._champion = new
        self.m.champion_info.labels(self.model, *new).set(1)

    def learner_stats(self, stats: Iterable[LearnerStats]) -> None:
        seen = set()
        for s in stats:
            key = (s.learner_id, s.role)
            seen.add(key)
            self.m.online_accuracy.labels(self.model, *key).set(s.window_accuracy)
            self.m.online_f1.labels(self.model, *key).set(s.window_f1)
        for key in self._learners - seen:
            self.m.online_accuracy.remove(self.model, *key)
            self.m.online_f1.remove(self.model, *key)
        self._learners = seen

    def lag(self, partition: str, value: float) -> None:
        self.m.consumer_lag.labels(self.model, partition).set(value)
