"""Joining label-only feedback to the prediction record it labels.

An application often learns the truth long after it asked for a prediction (a chargeback, a
click), so it sends back only ``prediction_id`` and ``label``; the features come from the
service's prediction log. Both arrive on different topics, in either order:

- **hit**: the prediction was already here when its label came;
- **late**: the label came first, waited, and its prediction arrived within the grace period;
- **miss**: the grace period passed without the prediction (the caller dead-letters it);
- **expired**: a prediction waited ``ttl`` without a label and was dropped (normal for
  traffic that is never labeled).

Time here is *stream time* (record timestamps) supplied by the caller, not the wall clock, so
a replay after a crash takes the same decisions. The store is bounded on both sides; its whole
state goes into the checkpoint (records before the checkpoint's offsets are never re-read).

>>> store = JoinStore(ttl_s=60, grace_s=5)
>>> store.add_prediction("p1", {"a": 1.0}, now=0.0)
[]
>>> store.add_label("e1", "p1", 1, now=1.0)
JoinResult(event_id='e1', features={'a': 1.0}, label=1, result='hit')
>>> store.add_label("e2", "p2", 0, now=2.0) is None
True
>>> store.add_prediction("p2", {"a": 2.0}, now=3.0)
[JoinResult(event_id='e2', features={'a': 2.0}, label=0, result='late')]
>>> store.counts
{'hit': 1, 'late': 1, 'miss': 0, 'expired': 0}
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NamedTuple

from streaming.schemas import Label


class RecordRef(NamedTuple):
    """Where a label came from: its feedback record (a dead letter for a miss names it)."""

    partition: int
    offset: int


class ServedAnswer(NamedTuple):
    """What a prediction record says the service answered; scores what users got and
    measures label delay (`streaming.served_score`)."""

    version: int | None
    label: Label | None
    timestamp: float | None


# JSON: both are tuples, stored as lists in the checkpoint's join state and rebuilt on restore


@dataclass(slots=True)  # read-only by convention; see `streaming.trainer.Record`
class JoinResult:
    event_id: str
    features: dict[str, float] | None
    label: Label
    result: str  # "hit" | "late" | "miss"
    prediction_id: str = ""
    ref: RecordRef | None = None  # the label's source record
    served: ServedAnswer | None = None  # what the prediction record says was served
    label_at: float | None = None  # when the label arrived (stream time)

    def __repr__(self) -> str:
        return f"JoinResult(event_id={self.event_id!r}, features={self.features!r}, label={self.label!r}, result={self.result!r})"


class JoinStore:
    """Bounded prediction store and pending-label buffer, keyed by prediction id."""

    def __init__(self, ttl_s: float = 3600.0, grace_s: float = 30.0,
                 max_predictions: int = 200000, max_pending: int = 50000) -> None:
        self.ttl_s, self.grace_s = ttl_s, grace_s
        self.max_predictions, self.max_pending = max_predictions, max_pending
        # prediction_id -> (features, arrived_at, served); insertion order = arrival order
        self._predictions: OrderedDict[str, tuple[dict[str, float], float, ServedAnswer | None]] = OrderedDict()
        # prediction_id -> list of (event_id, label, arrived_at, ref)
        self._pending: OrderedDict[str, list[tuple[str, Label, float, RecordRef | None]]] = OrderedDict()
        self.counts = {"hit": 0, "late": 0, "miss": 0, "expired": 0}

    def __len__(self) -> int:
        return len(self._predictions)

    @property
    def pending(self) -> int:
        return sum(len(v) for v in self._pending.values())

    def add_prediction(self, prediction_id: str, features: dict[str, float], now: float,
                       served: ServedAnswer | None = None) -> list[JoinResult]:
        """Store a prediction; returns the waiting labels it completes (result "late").

        ``served`` (version, label, timestamp of what the service answered) travels with
        the join so the caller can score what users actually got and measure label delay.
        """
        waiting = self._pending.pop(prediction_id, None)
        if waiting:
            self.counts["late"] += len(waiting)
            return [JoinResult(e, features, y, "late", prediction_id, r, served, at) for e, y, at, r in waiting]
        self._predictions[prediction_id] = (features, now, served)
        self._predictions.move_to_end(prediction_id)
        while len(self._predictions) > self.max_predictions:
            self._predictions.popitem(last=False)
            self.counts["expired"] += 1
        return []

    def add_label(self, event_id: str, prediction_id: str, label: Label, now: float,
                  ref: RecordRef | None = None) -> JoinResult | None:
        """Join a label to its prediction (result "hit"), or park it until the grace ends."""
        found = self._predictions.pop(prediction_id, None)
        if found is not None:
            self.counts["hit"] += 1
            return JoinResult(event_id, found[0], label, "hit", prediction_id, ref, found[2], now)
        self._pending.setdefault(prediction_id, []).append((event_id, label, now, ref))
        return None

    def expire(self, now: float) -> list[JoinResult]:
        """Drop predictions past their TTL; return labels whose grace ended (result "miss")."""
        ttl_cut = now - self.ttl_s
        while self._predictions:
            pid, (_, at, _served) = next(iter(self._predictions.items()))
            if at > ttl_cut:
                break
            del self._predictions[pid]
            self.counts["expired"] += 1
        misses: list[JoinResult] = []
        grace_cut = now - self.grace_s
        over = self.pending - self.max_pending
        while self._pending:
            pid, waiting = next(iter(self._pending.items()))
            if waiting[0][2] > grace_cut and over <= 0:
                break
            del self._pending[pid]
            over -= len(waiting)
            misses.extend(JoinResult(e, None, y, "miss", pid, r) for e, y, _, r in waiting)
        self.counts["miss"] += len(misses)
        return misses

    # -- checkpoint state (JSON-friendly) -----------------------------------------------------

    def state(self) -> dict[str, Any]:  # JSON for the checkpoint: untyped on purpose
        return {
            "predictions": [[pid, f, at, served] for pid, (f, at, served) in self._predictions.items()],
            "pending": [[pid, [list(w) for w in ws]] for pid, ws in self._pending.items()],
        }

    def restore(self, state: dict[str, Any]) -> None:
        # entries written before `served` existed have three fields
        self._predictions = OrderedDict(
            (p[0], (p[1], p[2], ServedAnswer(*p[3]) if len(p) > 3 and p[3] else None))
            for p in state.get("predictions", [])
        )
        self._pending = OrderedDict(
            (pid, [(e, y, at, RecordRef(*r) if r else None) for e, y, at, r in ws])
            for pid, ws in state.get("pending", [])
        )
