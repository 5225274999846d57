"""The trainer's core: consumed records in; learning, dead letters and checkpoints out.

It knows records (topic, partition, offset, bytes), never a Kafka client: the poll loop
(`streaming.consumer`) feeds it and commits what it returns, so this module is tested with
plain lists and a temp directory, and the same object runs against Tansu or a Kafka cluster.

Exactly-once effect, in three rules:

1. ``offsets`` advance only past records whose effect (learned, parked in the join store,
   dead-lettered, skipped) is in memory; a checkpoint captures that memory and those offsets
   atomically (`streaming.checkpoint`), and only then are offsets committed to Kafka.
2. On (re)assignment the trainer restores the newest checkpoint and reads on from *its*
   offsets; a record below the expected offset was already handled and is skipped, a record
   above it means the consumer is ahead of the checkpoint and `OffsetGap` makes the loop
   seek back.
3. Event ids learned recently are part of the checkpoint, so a feedback event delivered
   twice is learned once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypedDict, assert_never

from streaming.checkpoint import Checkpoint, CheckpointStore
from streaming.dedupe import RecentIds
from streaming.dlq import DeadLetter, DeadLetterSink
from streaming.join import JoinResult, JoinStore, RecordRef, ServedAnswer
from streaming.metrics import TrainerMetrics
from streaming.promotion_guard import PromotionGuard
from streaming.schemas import (
    Feedback,
    InvalidEvent,
    Label,
    ModelSchema,
    Prediction,
    PredictionBatch,
    Reason,
    decode_event,
)
from streaming.served_score import ServedScore
from streaming.topics import feedback_topic, predictions_topic
from streaming.trainer_metrics import BoundTrainerMetrics
from training.loop_types import EventKind, SystemEvent
from training.system import LearningSystem

log = logging.getLogger(__name__)


class SchemaLimits(TypedDict, total=False):
    """Bounds on one event, passed to `ModelSchema.from_system` (settings of the trainer)."""

    max_event_bytes: int
    max_features: int
    allow_missing_features: bool


@dataclass(slots=True)
class Record:
    """One consumed Kafka record, decoupled from the client library.

    Read-only by convention, not ``frozen``: a frozen dataclass's ``__init__`` sets each
    field through ``object.__setattr__`` (about 1.5 µs here), and the trainer builds one of
    these — and one decoded event — per record on its hot path. The same goes for
    `Feedback`, `Prediction` and `JoinResult`.

    ``event`` is the record already decoded (a `Feedback`, a `Prediction` or the
    `InvalidEvent` it raised) when a fetcher process validated it; None means "decode here".
    ``span`` is how many offsets it stands for: 1, except for a record batch that could not
    be decoded (`streaming.undecodable`), which is dead-lettered as one record.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int = 0
    event: Feedback | Prediction | PredictionBatch | InvalidEvent | None = None
    span: int = 1


class OffsetGap(Exception):
    """The consumer delivered a record past the checkpointed position: seek back to `offset`."""

    def __init__(self, topic: str, partition: int, offset: int) -> None:
        super().__init__(f"{topic}[{partition}] is ahead of the checkpoint; seek to {offset}")
        self.topic, self.partition, self.offset = topic, partition, offset


class Trainer:
    """Test-then-train from consumed records, with checkpoints; see the module docstring.

    `restore_system(blob)` rebuilds a `LearningSystem` from checkpoint bytes (it attaches the
    publisher); `fresh_system()` builds one from the registry champion when no checkpoint
    exists yet. Both are given by the composition root.
    """

    def __init__(
        self,
        model: str,
        *,
        fresh_system: Callable[[], LearningSystem],
        restore_system: Callable[[bytes], LearningSystem],
        store: CheckpointStore,
        dead_letters: DeadLetterSink,
        metrics: TrainerMetrics,
        join: JoinStore | None = None,
        recent_ids: int = 100000,
        checkpoint_every: int = 10000,
        checkpoint_interval_s: float = 10.0,
        stats_interval_s: float = 1.0,
        schema_limits: SchemaLimits | None = None,
        allow_new_classes: bool = False,
        guard: PromotionGuard | None = None,
        lineage: Callable[[], str] | None = None,
        max_clock_skew_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.model = model
        self.guard = guard
        self.feedback_topic, self.predictions_topic = feedback_topic(model), predictions_topic(model)
        self._fresh_system, self._restore_system = fresh_system, restore_system
        self.store, self.dead_letters, self.metrics = store, dead_letters, metrics
        self._join_template = join if join is not None else JoinStore()
        self._recent_capacity = recent_ids
        self.checkpoint_every, self.checkpoint_interval_s = checkpoint_every, checkpoint_interval_s
        self.stats_interval_s = stats_interval_s
        self._schema_limits = schema_limits or {}
        self._allow_new_classes = allow_new_classes
        self._clock = clock
        self._wall_clock = wall_clock
        self._lineage = lineage  # the registry's id of this model; None: nothing to check against (tests)
        self.lineage: str | None = None
        self.max_clock_skew_s = max_clock_skew_s
        self._skew_warned = False
        self.system: LearningSystem | None = None  # set by `restore`
        self.loaded = False  # True once state is restored (or freshly built) for this ownership
        self._m = BoundTrainerMetrics(metrics, model)
        self.served = ServedScore(metrics, model)

    # -- ownership: restore and checkpoint ------------------------------------------------------

    def restore(self) -> dict[tuple[str, int], int]:
        """Resume from the newest usable checkpoint of this registry's model, else start fresh
        from the registry champion; returns the offsets to seek to.

        A checkpoint of another registry lineage (a namesake model elsewhere, or before this
        model was bootstrapped again) is never resumed: it is named in the log and skipped.
        An unusable one (unreadable, unsigned, state that does not load) falls back to an
        older one; when there are such files and none of this lineage is usable,
        `CheckpointError` says which and why (an operator decides, nothing is guessed).
        """
        lineage = self._lineage() if self._lineage is not None else None
        newest_seen = self.store.latest_seq()  # fencing: whatever is on disk now, we have seen
        problems: list[str] = []
        foreign: list[str] = []
        ckpt, restored = None, None
        for candidate in self.store.readable(problems):
            if lineage is not None and candidate.lineage != lineage:
                foreign.append(f"{candidate.seq} (registry lineage "
                               f"{candidate.lineage or 'unknown: written before lineage ids'})")
                continue
            try:
                restored = self._restore_system(candidate.system)
            except Exception as e:  # noqa: BLE001 - signed, yet not a state this code can use
                log.warning("%s: checkpoint %d's learning state does not load, trying an older one: %s: %s",
                            self.model, candidate.seq, type(e).__name__, e)
                problems.append(f"{candidate.seq}: its learning state does not load ({type(e).__name__}: {e})")
                continue
            ckpt = candidate
            break
        if ckpt is None and problems:
            raise self.store.none_usable(problems + [f"{f}: another registry's" for f in foreign])
        if foreign and ckpt is None:
            log.warning("%s: not resuming checkpoint(s) %s in %s: they continue another registry's model "
                        "of this name (this registry's lineage is %s); starting from the registry champion",
                        self.model, ", ".join(foreign), self.store.dir, lineage)
        self.lineage = lineage
        join = JoinStore(self._join_template.ttl_s, self._join_template.grace_s,
                         self._join_template.max_predictions, self._join_template.max_pending)
        if ckpt is None:
            self.system = self._fresh_system()
            self.offsets: dict[tuple[str, int], int] = {}
            self.recent = RecentIds(self._recent_capacity)
            self.stream_time: float | None = None
            log.info("%s: no checkpoint of this registry's model yet; starting from the registry champion "
                     "(version %s)", self.model, self.system.champion_version)
        else:
            self.system = restored
            self.offsets = dict(ckpt.offsets)
            self.recent = RecentIds(self._recent_capacity, ckpt.recent_ids)
            join.restore(ckpt.join)
            self.stream_time = ckpt.stream_time
            if self.stream_time is not None and self.stream_time > self._wall_clock() + self.max_clock_skew_s:
                log.warning("%s: checkpoint %d's stream time is ahead of this trainer's clock; using the clock",
                            self.model, ckpt.seq)
                self.stream_time = self._wall_clock()
            log.info("%s: resumed from checkpoint %d: %d events learned, offsets %s",
                     self.model, ckpt.seq, self.system.events_learned, _fmt(self.offsets))
        self._seq: int | None = newest_seen
        # dead letters written since this checkpoint (by an owner that died before its next
        # one) are read back before the first letter of this ownership: `_dead_letter`
        self.dead_letters.resume(ckpt.dlq_ends if ckpt is not None else {})
        self._recalled: set[tuple[str, int, int]] | None = None
        self.join = join
        self._join_counts = dict(join.counts)
        self.schema = self._build_schema()
        if self.schema.task is not self.served.task:  # served error, not accuracy, for a regressor
            self.served = ServedScore(self.metrics, self.model, task=self.schema.task)
        self._since_checkpoint = 0
        self._last_checkpoint = self._clock()
        self._last_stats = -1e18
        self._last_record_wall = self._clock()
        self.loaded = True
        self._m.model_events_learned.set(self.system.events_learned)
        self._set_champion_info()
        self.refresh_stats(force=True)
        return dict(self.offsets)

    def _build_schema(self) -> ModelSchema:
        limits = dict(self._schema_limits)
        if self.system.champion.spec is not None:
            # a spec says itself which features may be missing; the setting is for older models
            limits.pop("allow_missing_features", None)
        return ModelSchema.from_system(self.system, accept_new_classes=self._allow_new_classes, **limits)

    @property
    def unsaved_records(self) -> int:
        """Records handled since the last checkpoint (0: a checkpoint now would add nothing)."""
        return self._since_checkpoint

    def report_lag(self, partition: str, records: float) -> None:
        """The poll loop's view of one partition's lag; the trainer owns its metrics."""
        self._m.lag(partition, records)

    def count_fetcher_restart(self) -> None:
        """The fetcher child died and was started again (an alertable counter)."""
        self._m.fetcher_restarts.inc()

    def checkpoint_due(self) -> bool:
        if not self.loaded or self._since_checkpoint == 0:
            return False
        return (self._since_checkpoint >= self.checkpoint_every
                or self._clock() - self._last_checkpoint >= self.checkpoint_interval_s)

    def checkpoint(self) -> dict[tuple[str, int], int]:
        """Make everything handled so far durable; returns the offsets now safe to commit."""
        started = time.perf_counter()
        self.dead_letters.flush()  # dead letters first: a checkpoint must not outrun them
        ckpt = Checkpoint(
            model=self.model, system=self.system.to_bytes(), offsets=dict(self.offsets),
            recent_ids=self.recent.to_list(), join=self.join.state(), stream_time=self.stream_time,
            info={"events_learned": self.system.events_learned,
                  "champion_version": self.system.champion_version},
            lineage=self.lineage, dlq_ends=self.dead_letters.ends(),
        )
        self._seq = self.store.save(ckpt, self._seq)
        self._since_checkpoint = 0
        self._last_checkpoint = self._clock()
        elapsed = time.perf_counter() - started
        self._m.checkpoint_seconds.observe(elapsed)
        log.debug("%s: checkpoint %d (%d events learned, %.3fs)", self.model, self._seq,
                  self.system.events_learned, elapsed)
        return dict(self.offsets)

    def release(self) -> None:
        """Forget in-memory state (partitions revoked or lost); the next owner restores."""
        self.loaded = False
        self.system = None
        if self.guard is not None:  # a watch belongs to the system we just let go of
            self.guard.cancel()

    # -- the hot path --------------------------------------------------------------------------

    def handle(self, records: Iterable[Record]) -> int:
        """Handle a batch (predictions before feedback); returns events learned."""
        if not self.loaded:
            raise RuntimeError("trainer has no state: call restore() after partitions are assigned")
        learned = 0
        consumed = 0
        ignored = 0
        started = time.perf_counter()
        # stream time never jumps past the trainer's own clock (plus a skew allowance): a
        # record stamped a day ahead would otherwise expire the whole join store at once
        trusted_until = self._wall_clock() + self.max_clock_skew_s
        ordered = sorted(records, key=lambda r: r.topic != self.predictions_topic)
        for rec in ordered:
            tp = (rec.topic, rec.partition)
            expected = self.offsets.get(tp)
            if expected is not None and rec.offset != expected:
                if rec.offset < expected:
                    continue  # handled before the checkpoint we resumed from
                raise OffsetGap(rec.topic, rec.partition, expected)
            consumed += 1
            if rec.timestamp_ms > 0:
                ts = rec.timestamp_ms / 1000.0
                if self.stream_time is None or ts > self.stream_time:
                    if ts <= trusted_until:
                        self.stream_time = ts
                    else:
                        ignored += 1
            is_prediction = rec.topic == self.predictions_topic
            event = rec.event if rec.event is not None else decode_event(rec.value, self.schema, is_prediction)
            if type(event) is InvalidEvent:
                self._dead_letter(rec, event.reason, event.detail)
            elif is_prediction:
                learned += self._on_prediction(event)
            else:
                learned += self._on_feedback(rec, event)
            self.offsets[tp] = rec.offset + rec.span
        if consumed:
            self._last_record_wall = self._clock()
            self._since_checkpoint += consumed
            self._m.events_consumed.inc(consumed)
        if ignored:
            self._m.timestamps_ignored.inc(ignored)
            (log.debug if self._skew_warned else log.warning)(
                "%s: ignored %d record timestamp(s) more than %gs ahead of this trainer's clock "
                "(a producer's clock is wrong?); counted in perennial_record_timestamps_ignored_total",
                self.model, ignored, self.max_clock_skew_s)
            self._skew_warned = True
        if learned:
            self._m.events_learned.inc(learned)
            self._m.model_events_learned.set(self.system.events_learned)
            self._m.learn_seconds.observe(time.perf_counter() - started)
        self._count_joins()
        return learned

    def _on_feedback(self, rec: Record, event: Feedback) -> int:
        if not self.recent.add(event.event_id):
            log.debug("%s: event %s delivered again; already learned", self.model, event.event_id)
            return 0
        if event.features is not None:
            return self._learn(event.features, event.label, rec)
        joined = self.join.add_label(event.event_id, event.prediction_id, event.label,
                                     self._now(), ref=RecordRef(rec.partition, rec.offset))
        if joined is None:
            return 0
        self.served.observe(joined)
        return self._learn(joined.features, joined.label, rec)

    def _on_prediction(self, pred: Prediction | PredictionBatch) -> int:
        """Store a prediction — or each of a request's (one record, `PredictionBatch`) — for
        the join; learn the labels that were waiting for it."""
        learned = 0
        now = self._now()
        add = self.join.add_prediction
        for p in pred.predictions if type(pred) is PredictionBatch else (pred,):
            for joined in add(p.prediction_id, p.features, now, ServedAnswer(p.version, p.label, p.timestamp)):
                self.served.observe(joined)
                learned += self._learn(joined.features, joined.label, self._label_record(joined))
        return learned

    def _learn(self, features: dict[str, float], label: Label, rec: Record) -> int:
        try:
            result = self.system.process_one(features, label)
        except Exception as e:  # a learner bug must not stop the stream; the event is kept
            log.exception("%s: learning core refused %s[%d]@%d", self.model, rec.topic, rec.partition, rec.offset)
            self._dead_letter(rec, Reason.LEARN_FAILED, f"{type(e).__name__}: {e}")
            return 0
        if result.events:
            self._on_system_events(result.events)
        return 1

    def _now(self) -> float:
        return self.stream_time if self.stream_time is not None else time.time()

    def tick(self) -> None:
        """Between batches: expire the join store on stream time (advanced by wall time
        while idle, so a lone late label is not parked forever) and refresh gauges."""
        if not self.loaded:
            return
        idle = self._clock() - self._last_record_wall
        now = self._now() + (idle if self.stream_time is not None else 0.0)
        for miss in self.join.expire(now):
            rec = self._label_record(miss)
            self._dead_letter(rec, Reason.NO_PREDICTION,
                              f"no prediction {miss.prediction_id!r} arrived within {self.join.grace_s:g}s "
                              f"of label event {miss.event_id!r}", value=_label_only_json(self.model, miss))
        self._count_joins()
        self._poll_guard()
        self.refresh_stats()

    def _poll_guard(self) -> None:
        """The serving-side guard (Prometheus) may fail the last promotion: roll it back here,
        in the loop's thread, so the learning system and the registry move together."""
        if self.guard is None:
            return
        verdict = self.guard.poll()
        if verdict is None:
            return
        log.warning("%s: %s", self.model, verdict.reason)
        try:
            event = self.system.rollback_now(verdict.reason)
        except Exception:  # e.g. an operator already rolled back: the stream must go on
            log.exception("%s: the guard's rollback could not be written; the champion stays", self.model)
            return
        if event is None:
            log.warning("%s: nothing to roll back to; the champion stays", self.model)
            return
        self._since_checkpoint = max(self._since_checkpoint, 1)  # checkpoint it even if idle
        self._on_system_events([event])

    def _label_record(self, joined: JoinResult) -> Record:
        partition, offset = joined.ref if joined.ref else (-1, -1)
        return Record(self.feedback_topic, partition, offset, self.model.encode(), None)

    def _dead_letter(self, rec: Record, reason: Reason, detail: str, value: bytes | None = None) -> None:
        if self._recalled is None:
            self._recalled = self.dead_letters.recall(self.model)
        if self._recalled and (rec.topic, rec.partition, rec.offset) in self._recalled:
            self._recalled.discard((rec.topic, rec.partition, rec.offset))
            log.debug("%s: %s[%d]@%d was dead-lettered before the restart; not again",
                      self.model, rec.topic, rec.partition, rec.offset)
            return
        self.dead_letters.send(DeadLetter(self.model, reason, detail, rec.topic, rec.partition, rec.offset,
                                          rec.key, rec.value if value is None else value))
        self._m.dead_lettered(reason)
        log.debug("%s: dead-lettered %s[%d]@%d: %s %s", self.model, rec.topic, rec.partition, rec.offset, reason, detail)

    # -- metrics ------------------------------------------------------------------------------

    def _count_joins(self) -> None:
        counts = self.join.counts
        for result, n in counts.items():
            delta = n - self._join_counts.get(result, 0)
            if delta:
                self._m.join(result, delta)
        self._join_counts = dict(counts)

    def _on_system_events(self, events: Iterable[SystemEvent]) -> None:
        """Metrics and the serving-side guard follow what the loop did. Matched exhaustively:
        a kind with no branch here fails `assert_never` (and the test that feeds every kind)."""
        for e in events:
            match e.kind:
                case EventKind.DRIFT:
                    self._m.drift(e.learner)
                    continue
                case EventKind.CHALLENGER | EventKind.RETIRED | EventKind.ERROR:
                    continue  # the loop logged them; learner gauges follow at the next stats refresh
                case EventKind.PROMOTION:
                    self._m.promotions.inc()
                    if self.guard is not None and e.to_version is not None:
                        self.guard.watch(self.model, e.to_version, e.from_version)
                case EventKind.ROLLBACK:
                    self._m.rollbacks.inc()
                    if self.guard is not None:
                        self.guard.cancel()
                case EventKind.ADOPTED:
                    # an operator moved the alias: the version the guard watched is no longer
                    # served, and failing it now would undo the operator's choice
                    if self.guard is not None:
                        self.guard.cancel()
                case EventKind.REFRESH:
                    self._m.last_refresh_timestamp.set(time.time())
                case _:
                    assert_never(e.kind)
            self._set_champion_info()
            log.info("%s: %s to version %s (%s): %s", self.model, e.kind, e.to_version, e.learner, e.reason)

    def _set_champion_info(self) -> None:
        self._m.champion(self.system.champion_version, getattr(self.system.champion, "name", "?"))

    def refresh_stats(self, force: bool = False) -> None:
        now = self._clock()
        if not self.loaded or (not force and now - self._last_stats < self.stats_interval_s):
            return
        self._last_stats = now
        self._m.learner_stats(self.system.learner_stats())


def _label_only_json(model: str, miss: JoinResult) -> bytes:
    import json

    return json.dumps({"event_id": miss.event_id, "model": model, "prediction_id": miss.prediction_id,
                       "label": miss.label}).encode()


def _fmt(offsets: dict[tuple[str, int], int]) -> str:
    return ", ".join(f"{t}[{p}]={o}" for (t, p), o in sorted(offsets.items())) or "none"
