"""The learning loop of one model: champion and challengers, test-then-train, drift, promotion.

`LearningSystem.process_one(x, y)` is the whole loop for one labeled event:

1. every learner predicts (the champion's prediction is what serving would have answered),
2. each prediction is scored (prequential metrics) and its error fed to that learner's
   drift detector,
3. every learner learns the event,
4. a drift on the champion spawns a fresh challenger (an untrained clone that learns only
   post-drift data); every ``check_every`` events the promotion policy compares each
   challenger with the champion on their shared recent events, and during the guard period
   after a promotion the rollback test compares the new champion with the one it replaced;
5. every ``refresh_every`` events the champion's snapshot is republished.

The loop is task-agnostic; the task comes from the champion (`Learner.task`). Regression
runs its own copy of step 1-3 (`predict_one`, `RegressionMetrics`, the absolute error fed to
the detector's `update_loss`), so the classification hot path stays as it was, and pairs
per-event absolute errors instead of correctness bits for the promotion tests (Wilcoxon
instead of McNemar; `training.promotion`). Every other step is shared.

The system does no I/O of its own: version writes go through a `Publisher` (the registry in
production, `InMemoryPublisher` in replay and tests). Its whole state pickles, so the
trainer checkpoints it and resumes exactly.
"""

from __future__ import annotations

import itertools
import logging
import operator
import pickle
from collections import deque
from collections.abc import Sequence

from training.evaluation import PrequentialMetrics, RegressionMetrics
from training.learners.base import Features, Label, Learner, check_features
from training.lineage import Origin
from training.loop_types import (  # re-exported: callers import them from here
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    EventKind,
    LearnerStats,
    LoopConfig,
    Member,
    Publisher,
    StepResult,
    SystemEvent,
)
from training.promotion import (
    Decision,
    PairedLosses,
    PairedResult,
    decide_promotion,
    decide_rollback,
)
from training.spec import ModelSpec, Task, numeric_spec

log = logging.getLogger(__name__)

_NO_EVENTS: tuple[SystemEvent, ...] = ()


class LearningSystem:
    """Champion + challengers of one model, scored on exactly the same events.

    Every learner must be of the champion's task (a ValueError says which is not)."""

    # defaults for systems checkpointed before regression existed
    task = Task.CLASSIFICATION
    _regression = False

    def __init__(
        self,
        model: str,
        champion: Learner,
        candidates: Sequence[Learner] = (),
        config: LoopConfig | None = None,
        publisher: Publisher | None = None,
        champion_version: int | None = None,
    ) -> None:
        self.model = model
        self.config = config or LoopConfig()
        self.publisher = publisher
        self.champion_version = champion_version
        self.events_learned = 0
        self.task = champion.task
        self._regression = self.task is Task.REGRESSION
        self.served = self._new_metrics(self.config.window)  # what the champion answered
        self.members: list[Member] = []
        self._history = max(self.config.window, self.config.policy.window, self.config.policy.guard_events)
        self._ids = itertools.count(1)
        self._drifts_seen = 0  # champion drifts that spawned a challenger
        self._last_change = -10**9  # event index of the last promotion or rollback
        self._last_refresh = 0
        self._guard: tuple[str, str, int] | None = None  # (new champion id, previous id, since)
        self._replaced: str | None = None  # the champion the last promotion replaced
        self._quarantine: dict[str, int] = {}  # learner id -> event until which it may not be promoted
        self._champion = self._add(champion, CHAMPION, standing=True)
        for learner in candidates:
            self._add(learner, CHALLENGER, standing=True)

    # -- pool management ---------------------------------------------------------------

    def _add(self, learner: Learner, role: str, *, standing: bool, fresh: bool = False) -> Member:
        # ids are metric labels: "hat" for a bootstrap candidate, "hat-d3" for the challenger
        # spawned at the third champion drift (bounded: fresh ones are capped and retired)
        if learner.task is not self.task:
            raise ValueError(f"learner {learner.name!r} does {learner.task.value}, but this model's champion "
                             f"does {self.task.value}; every learner of a model has the model's task")
        taken = {m.learner_id for m in self.members}
        learner_id = f"{learner.name}-d{self._drifts_seen}" if fresh else learner.name
        while learner_id in taken:
            learner_id = f"{learner.name}-{next(self._ids)}"
        member = Member(
            learner_id, learner, self._new_metrics(self.config.window, self._history),
            self.config.drift.build(), role, self.events_learned, standing,
        )
        self.members.append(member)
        return member

    def _new_metrics(self, window: int, history: int | None = None) -> PrequentialMetrics | RegressionMetrics:
        return (RegressionMetrics if self._regression else PrequentialMetrics)(window, history)

    @property
    def champion(self) -> Learner:
        return self._champion.learner

    def member(self, learner_id: str) -> Member:
        for m in self.members:
            if m.learner_id == learner_id:
                return m
        raise KeyError(f"no learner {learner_id!r}; have {[m.learner_id for m in self.members]}")

    # -- the loop ----------------------------------------------------------------------

    def process_one(self, x: Features, y: Label) -> StepResult:
        """Test-then-train one labeled event through every learner; see the module docstring."""
        if self._regression:
            return self._process_regression(x, y)
        if self.champion.spec is None:
            # once here; a bad event must not reach any learner half-way (rows of a model
            # with a spec come through `training.rows.RowValidator` before they get here)
            check_features(x)
        champion = self._champion
        drifted: list[Member] = []
        served_pred, served_correct, served_proba = None, False, None
        for m in self.members:
            learner = m.learner
            proba = learner.predict_proba_one(x)
            pred = max(proba, key=proba.__getitem__) if proba else None
            correct = m.metrics.update(y, pred, proba)
            if m is champion:
                served_pred, served_correct, served_proba = pred, correct, proba
            if m.detector.update(not correct):
                drifted.append(m)
            learner.learn_one(x, y)
        self.served.update(y, served_pred, served_proba)
        self.events_learned = t = self.events_learned + 1

        config = self.config
        if (not drifted and t % config.check_every
                and not (config.refresh_every and t - self._last_refresh >= config.refresh_every)):
            return StepResult(served_pred, served_correct, _NO_EVENTS)  # the common case
        return StepResult(served_pred, served_correct, self._decide(t, drifted))

    def _process_regression(self, x: Features, y: float) -> StepResult:
        """`process_one` for regressors: the same steps, scored by absolute error."""
        check_features(x)
        champion = self._champion
        drifted: list[Member] = []
        served_pred, served_loss = None, 0.0
        for m in self.members:
            learner = m.learner
            pred = learner.predict_one(x)
            loss = m.metrics.update(y, pred)
            if m is champion:
                served_pred, served_loss = pred, loss
            if m.detector.update_loss(loss):
                drifted.append(m)
            learner.learn_one(x, y)
        self.served.update(y, served_pred)
        self.events_learned = t = self.events_learned + 1
        config = self.config
        if (not drifted and t % config.check_every
                and not (config.refresh_every and t - self._last_refresh >= config.refresh_every)):
            return StepResult(served_pred, False, _NO_EVENTS, served_loss)
        return StepResult(served_pred, False, self._decide(t, drifted), served_loss)

    def _decide(self, t: int, drifted: list[Member]) -> list[SystemEvent]:
        """Steps 4 and 5 of the module docstring, when an event calls for any of them."""
        champion = self._champion
        events: list[SystemEvent] = []
        for m in drifted:
            events.append(SystemEvent(EventKind.DRIFT, t, m.learner_id,
                                      f"{self.config.drift.method} on {m.role} {m.learner_id}'s error stream",
                                      role=m.role))
            if m is champion and self.config.spawn_on_drift:
                events.extend(self._spawn_challenger(m))
        try:
            # The event is learned by now; what follows writes versions and moves aliases. A
            # registry that fails (disk full, lock timeout) must not make the caller think the
            # event was not learned: the decision is logged and tried again at the next check.
            if t % self.config.check_every == 0:
                events.extend(self._retire_stale())
                events.extend(self._adopt_external_champion())
                events.extend(self._check_rollback() or self._check_promotion())
            if self._refresh_due():
                events.extend(self._refresh())
        except Exception as exc:  # noqa: BLE001 - any publisher failure, reported as an event
            log.exception("%s: a decision at event %d could not be written", self.model, t)
            events.append(SystemEvent(EventKind.ERROR, t, self._champion.learner_id,
                                      f"decision not written: {type(exc).__name__}: {exc}"))
        for e in events:
            log.info("%s at event %d: %s %s", e.kind, e.at, e.learner, e.reason)
        return events

    def _spawn_challenger(self, champion: Member) -> list[SystemEvent]:
        self._drifts_seen += 1
        fresh = self._add(champion.learner.clone(), CHALLENGER, standing=False, fresh=True)
        events = [SystemEvent(EventKind.CHALLENGER, self.events_learned, fresh.learner_id,
                              f"fresh {champion.learner.name} learning only post-drift data")]
        spawned = [m for m in self.members if not m.standing and m.role == CHALLENGER]
        while len(spawned) > self.config.max_fresh_challengers:
            oldest = spawned.pop(0)
            events.append(self._retire(oldest, "too many fresh challengers; oldest retired"))
        return events

    def _retire_stale(self) -> list[SystemEvent]:
        ttl = self.config.fresh_challenger_ttl
        return [
            self._retire(m, f"no promotion within {ttl} events")
            for m in list(self.members)
            if not m.standing and m.role == CHALLENGER and self.events_learned - m.born_at > ttl
        ]

    def _retire(self, m: Member, reason: str) -> SystemEvent:
        self.members.remove(m)
        return SystemEvent(EventKind.RETIRED, self.events_learned, m.learner_id, reason)

    def _pair(self, incumbent: Member, contender: Member, last: int) -> PairedResult | PairedLosses:
        """`PairedResult.from_bits` of the last ``last`` shared events, counted in C: this
        runs for every challenger every ``check_every`` events over up to ``policy.window``
        bits, which a Python loop made a visible share of the whole loop. Regression:
        `PairedLosses` of their absolute errors on those events."""
        if self._regression:
            k = min(last, len(incumbent.metrics.abs_errors), len(contender.metrics.abs_errors))
            inc_losses = list(itertools.islice(reversed(incumbent.metrics.abs_errors), k))
            con_losses = list(itertools.islice(reversed(contender.metrics.abs_errors), k))
            return PairedLosses.from_losses(inc_losses, con_losses)
        k = min(last, len(incumbent.metrics.correct_bits), len(contender.metrics.correct_bits))
        inc = list(itertools.islice(reversed(incumbent.metrics.correct_bits), k))
        con = list(itertools.islice(reversed(contender.metrics.correct_bits), k))
        return PairedResult(k, sum(inc), sum(con), sum(map(operator.gt, inc, con)),
                            sum(map(operator.lt, inc, con)))

    def _check_promotion(self) -> list[SystemEvent]:
        policy = self.config.policy
        t = self.events_learned
        best: tuple[Member, Decision] | None = None
        for m in self.members:
            if m.role != CHALLENGER:  # the replaced champion comes back only through the rollback test
                continue
            if self._quarantine.get(m.learner_id, 0) > t:  # rejected by the serving-side guard
                continue
            shared = min(policy.window, t - m.born_at)
            decision = decide_promotion(
                self._pair(self._champion, m, shared), t - m.born_at, policy,
                events_since_change=t - self._last_change,
            )
            if decision.act and (best is None or decision.gain > best[1].gain):
                best = (m, decision)
        if best is None:
            return []
        return [self._promote(*best)]

    def _promote(self, new: Member, decision: Decision) -> SystemEvent:
        old = self._champion
        from_version = self.champion_version
        to_version = None
        if self.publisher is not None:
            metrics = dict(new.metrics.summary(), p_value=decision.p_value, gain=decision.gain)
            to_version = self.publisher.publish(new.learner, parent=from_version, metrics=metrics,
                                                note=f"promotion: {decision.reason}", origin=Origin.PROMOTION)
            self.publisher.promote(to_version, decision.reason)
        for m in self.members:  # at most one "previous": the one this promotion replaces
            if m.role == PREVIOUS:
                m.role = CHALLENGER
        old.role, new.role = PREVIOUS, CHAMPION
        self._champion = new
        self.champion_version = to_version
        self._last_change = self._last_refresh = self.events_learned
        self._guard = (new.learner_id, old.learner_id, self.events_learned)
        self._replaced = old.learner_id
        return SystemEvent(EventKind.PROMOTION, self.events_learned, new.learner_id, decision.reason,
                           from_version, to_version)

    def _check_rollback(self) -> list[SystemEvent]:
        if self._guard is None:
            return []
        new_id, old_id, since = self._guard
        t = self.events_learned
        try:
            new, old = self.member(new_id), self.member(old_id)
        except KeyError:
            self._guard = None
            return []
        decision = decide_rollback(self._pair(new, old, t - since), t - since, self.config.policy)
        if decision.act:
            return [self._roll_back(new, old, decision.reason)]
        if t - since > self.config.policy.guard_events:
            self._guard = None
            old.role = CHALLENGER
        return []

    def rollback_now(self, reason: str) -> SystemEvent | None:
        """Undo the last promotion because something outside the loop says so.

        The serving-side guard (error rate, latency, live accuracy judged from Prometheus)
        calls this; the paired test in here only sees learning quality. Returns None when
        there is nothing to roll back to (no promotion yet, or the replaced learner retired).
        """
        if self._replaced is None:
            return None
        try:
            old = self.member(self._replaced)
        except KeyError:
            return None
        rejected = self._champion
        event = self._roll_back(rejected, old, reason)
        # It may still learn better (that is why it was promoted); without a pause it would be
        # promoted again at the end of the cooldown and rejected again, round after round.
        self._quarantine[rejected.learner_id] = self.events_learned + self.config.rejected_cooldown
        return event

    def _roll_back(self, new: Member, old: Member, reason: str) -> SystemEvent:
        t = self.events_learned
        from_version = self.champion_version
        to_version = self.publisher.rollback(reason) if self.publisher is not None else None
        new.role, old.role = CHALLENGER, CHAMPION
        self._champion = old
        self.champion_version = to_version
        self._guard = self._replaced = None
        self._last_change = self._last_refresh = t
        return SystemEvent(EventKind.ROLLBACK, t, old.learner_id, reason, from_version, to_version)

    def _adopt_external_champion(self) -> list[SystemEvent]:
        """Someone else moved the ``champion`` alias (an operator's rollback or promotion):
        make that version the champion here too, instead of overwriting it at the next
        refresh. The replaced learner stays as a challenger; the paired test goes on."""
        current = getattr(self.publisher, "current_champion", None)
        version = current(self.champion_version) if current is not None else None
        if version is None or version == self.champion_version:
            return []
        learner = self.publisher.load(version)
        old = self._champion
        new = self._add(learner, CHAMPION, standing=True)
        if not any(m.learner_id == f"{learner.name}-v{version}" for m in self.members):
            new.learner_id = f"{learner.name}-v{version}"  # readable: the registry version it came from
        old.role = CHALLENGER
        for m in self.members:
            if m.role == PREVIOUS:
                m.role = CHALLENGER
        self._champion, self._guard, self._replaced = new, None, None
        from_version, self.champion_version = self.champion_version, version
        self._last_change = self._last_refresh = self.events_learned
        return [SystemEvent(EventKind.ADOPTED, self.events_learned, new.learner_id,
                            f"champion alias moved outside the trainer to v{version}; adopted",
                            from_version, version)]

    def reconfigure(self, config: LoopConfig) -> None:
        """Apply current settings to a system restored from a checkpoint (which pickled the
        settings it was started with). Metric windows keep their size; histories grow or shrink."""
        if config == self.config:
            return
        if config.window != self.config.window:
            log.warning("%s: metrics window stays %d (was checkpointed); new setting %d applies to new learners",
                        self.model, self.config.window, config.window)
        self.config = config
        self._history = max(config.window, config.policy.window, config.policy.guard_events)
        for m in self.members:
            if self._regression:
                m.metrics.abs_errors = deque(m.metrics.abs_errors, maxlen=self._history)
            else:
                m.metrics.correct_bits = deque(m.metrics.correct_bits, maxlen=self._history)

    def _refresh_due(self) -> bool:
        every = self.config.refresh_every
        return bool(every) and self.events_learned - self._last_refresh >= every

    def _refresh(self) -> list[SystemEvent]:
        self._last_refresh = self.events_learned
        if self.publisher is None:
            return []
        champ = self._champion
        version = self.publisher.publish(champ.learner, parent=self.champion_version,
                                         metrics=champ.metrics.summary(), note="refresh",
                                         origin=Origin.REFRESH)
        self.publisher.refresh(version)
        from_version, self.champion_version = self.champion_version, version
        return [SystemEvent(EventKind.REFRESH, self.events_learned, champ.learner_id,
                            f"champion snapshot after {self.events_learned} events", from_version, version)]

    # -- reporting and persistence ---------------------------------------------------

    def learner_stats(self) -> list[LearnerStats]:
        if self._regression:
            return [
                LearnerStats(m.learner_id, m.learner.name, m.role, 0.0, 0.0, 0.0, m.metrics.n, Task.REGRESSION,
                             m.metrics.window_mae, m.metrics.window_rmse, m.metrics.window_r2, m.metrics.mae)
                for m in self.members
            ]
        return [
            LearnerStats(m.learner_id, m.learner.name, m.role, m.metrics.window_accuracy,
                         m.metrics.window_f1, m.metrics.accuracy, m.metrics.n)
            for m in self.members
        ]

    @property
    def feature_names(self) -> list[str]:
        return self.champion.n_features_in

    @property
    def spec(self) -> ModelSpec | None:
        """The model's spec: the champion's (every learner of a model shares it); for a
        learner built without one, the numeric spec its features imply (None while it has
        seen none, meaning "any numeric features")."""
        champion = self.champion
        if champion.spec is not None:
            return champion.spec
        names = champion.n_features_in
        return numeric_spec(names, champion.classes or None) if names else None

    @property
    def classes(self) -> list[Label]:
        return self.champion.classes

    def to_bytes(self) -> bytes:
        """The whole state (learners, metrics, detectors, roles) except the publisher."""
        publisher, self.publisher = self.publisher, None
        try:
            return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            self.publisher = publisher

    @classmethod
    def from_bytes(cls, data: bytes, publisher: Publisher | None = None) -> LearningSystem:
        """Inverse of `to_bytes`; callers verify the checkpoint's integrity first."""
        system = pickle.loads(data)  # noqa: S301 - checkpoint integrity is verified by the caller
        if not isinstance(system, cls):
            raise TypeError(f"checkpoint holds {type(system).__name__}, expected {cls.__name__}")
        system.publisher = publisher
        return system
