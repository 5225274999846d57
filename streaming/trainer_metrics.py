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
        self._learners: set[tuple[str, str, bool]] = set()  # (learner, role, is a regressor)

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
        """Window metrics of the learner's task: accuracy and F1 for a classifier, MAE, RMSE
        and R² for a regressor (``window_mae`` set); series of learners gone are removed."""
        m = self.m
        seen = set()
        for s in stats:
            key = (s.learner_id, s.role)
            if getattr(s, "window_mae", None) is not None:
                seen.add((*key, True))
                m.online_mae.labels(self.model, *key).set(s.window_mae)
                m.online_rmse.labels(self.model, *key).set(s.window_rmse)
                m.online_r2.labels(self.model, *key).set(s.window_r2)
            else:
                seen.add((*key, False))
                m.online_accuracy.labels(self.model, *key).set(s.window_accuracy)
                m.online_f1.labels(self.model, *key).set(s.window_f1)
        for learner, role, regression in self._learners - seen:
            gauges = (m.online_mae, m.online_rmse, m.online_r2) if regression else (m.online_accuracy, m.online_f1)
            for gauge in gauges:
                gauge.remove(self.model, learner, role)
        self._learners = seen

    def lag(self, partition: str, value: float) -> None:
        self.m.consumer_lag.labels(self.model, partition).set(value)
