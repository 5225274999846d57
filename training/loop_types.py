"""The vocabulary of the learning loop: its settings, its members, what it reports.

Kept apart from `training.system` (the loop itself) so readers of events and settings —
the trainer, replay, the demo — see the shapes without the machinery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from training.drift import DriftConfig, DriftDetector
from training.evaluation import PrequentialMetrics, RegressionMetrics
from training.learners.base import Label, Learner
from training.lineage import Origin
from training.promotion import PromotionPolicy
from training.spec import Task

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"


class Publisher(Protocol):
    """Where the system writes versions and moves aliases (see `training.publishers`)."""

    def publish(self, learner: Learner, *, parent: int | None, metrics: dict, note: str,
                origin: Origin = Origin.MANUAL) -> int: ...
    def promote(self, version: int, reason: str) -> None: ...
    def rollback(self, reason: str) -> int: ...
    def refresh(self, version: int) -> None: ...
    def current_champion(self, expected: int | None) -> int | None: ...
    def load(self, version: int) -> Learner: ...


@dataclass(frozen=True)
class LoopConfig:
    """Knobs of the loop. Defaults suit streams of tens of thousands of events.

    Attributes:
        window: sliding window of the reported metrics (dashboards, replay windows).
        policy: the promotion and rollback policy.
        drift: the drift detector on each learner's error stream.
        check_every: events between two runs of the promotion / rollback test.
        spawn_on_drift: whether a champion drift spawns a fresh challenger.
        max_fresh_challengers: cap on post-drift challengers alive at once (oldest retired).
        fresh_challenger_ttl: events after which a fresh challenger that never won is retired.
        refresh_every: events between champion snapshot republications (0 disables).
        rejected_cooldown: events a learner whose promotion the serving-side guard undid
            may not be promoted again.
    """

    window: int = 1000
    policy: PromotionPolicy = field(default_factory=PromotionPolicy)
    drift: DriftConfig = field(default_factory=DriftConfig)
    check_every: int = 100
    spawn_on_drift: bool = True
    max_fresh_challengers: int = 2
    fresh_challenger_ttl: int = 20000
    refresh_every: int = 10000
    rejected_cooldown: int = 20000


@dataclass
class Member:
    """One learner in the pool, with its scorecard and detector."""

    learner_id: str
    learner: Learner
    metrics: PrequentialMetrics | RegressionMetrics
    detector: DriftDetector
    role: str
    born_at: int
    standing: bool  # a bootstrap candidate (kept for good) or a post-drift clone (may retire)


class EventKind(StrEnum):
    """Every kind of `SystemEvent` the loop emits. Readers ``match`` on it exhaustively
    (``assert_never`` in the default case), so a new kind fails type checks and the tests
    that feed every kind to each reader, instead of being silently ignored.

    A `StrEnum`: it equals its value (``EventKind.DRIFT == "drift"``) and serialises as
    the plain string in JSON and logs.
    """

    DRIFT = "drift"  # a learner's drift detector fired on its error stream
    CHALLENGER = "challenger"  # a fresh challenger was spawned after a champion drift
    RETIRED = "retired"  # a post-drift challenger was dropped (too many, or too old)
    PROMOTION = "promotion"  # a challenger became champion (new version, alias moved)
    ROLLBACK = "rollback"  # the previous champion came back (paired test or serving guard)
    REFRESH = "refresh"  # the learning champion's snapshot was republished
    ADOPTED = "adopted"  # someone outside the loop moved the alias; the loop followed
    ERROR = "error"  # a decision could not be written (registry failure); retried later


@dataclass(frozen=True)
class SystemEvent:
    """Something the loop did that operators want to see: drift, challenger, promotion, ..."""

    kind: EventKind
    at: int
    learner: str
    reason: str = ""
    from_version: int | None = None
    to_version: int | None = None
    role: str | None = None  # the learner's role when the event happened

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``kind`` as its plain string, unset optional fields left out."""
        return {k: (str(v) if k == "kind" else v) for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class StepResult:
    """What the champion answered for one event and how it scored.

    Classification: ``prediction`` is a class (None before learning) and ``correct`` says
    whether it was right. Regression: ``prediction`` is a value and ``loss`` its absolute
    error; ``correct`` is False.
    """

    prediction: Label | float | None
    correct: bool
    events: Sequence[SystemEvent] = ()
    loss: float | None = None


@dataclass(frozen=True)
class LearnerStats:
    """One learner's scorecard. The classification fields are 0.0 for a regressor and the
    regression fields (``window_mae``...) None for a classifier; ``task`` says which apply."""

    learner_id: str
    name: str
    role: str
    window_accuracy: float
    window_f1: float
    accuracy: float
    n: int
    task: Task = Task.CLASSIFICATION
    window_mae: float | None = None
    window_rmse: float | None = None
    window_r2: float | None = None
    mae: float | None = None
