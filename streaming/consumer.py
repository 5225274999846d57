"""The Kafka side of the trainer: the consumer, its group assignment, and the poll loop.

Poll → handle (validate, join, learn) → checkpoint → commit, and never commit before the
checkpoint that contains those events is durable (confluent-kafka's and quix-streams' rule).
SIGTERM sets a flag; the loop finishes the batch in hand, checkpoints, commits and closes.

Why a custom partition assignor: a model's learning state is one object, so exactly one
trainer may consume a model's partitions at a time. `ActiveStandbyAssignor` gives *every*
partition to one member and nothing to the others (hot standbys); it keeps the current
owner when there is one, so a standby joining does not steal the stream. With the stock
range assignor two members would split the partitions and both write the checkpoint.

Rebalance callbacks run on kafka-python's IO loop, so they touch only the trainer and files
(never a consumer call that waits on that loop); a lock serialises them with the main loop.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.cluster import ClusterMetadata
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.abstract import (
    AbstractPartitionAssignor,
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)
from kafka.errors import KafkaError

from streaming.checkpoint import CheckpointError, CheckpointFenced
from streaming.settings import KafkaSettings
from streaming.sources import ConsumerSource, RecordSource
from streaming.topics import feedback_topic, group_id, predictions_topic
from streaming.trainer import OffsetGap, Trainer

log = logging.getLogger(__name__)

#: kafka-python's loggers that report a socket torn down under an in-flight request
_TEARDOWN_LOGGERS = ("kafka.net.transport", "kafka.cluster")


class _TeardownNoise(logging.Filter):
    """While our consumer closes, kafka-python 3 may close a socket its network thread is
    still reading (a metadata refresh in flight) and log that at ERROR with a traceback
    ('NoneType' object has no attribute 'recv', 'Metadata refresh: failed Cancelled'): the
    close is complete and nothing is lost, so such records are kept at DEBUG, not shown
    to an operator as a failure at every clean shutdown."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            log.debug("during close, %s: %s", record.name, record.getMessage(), exc_info=record.exc_info)
            return False
        return True


@contextlib.contextmanager
def _quiet_client_teardown() -> Iterator[None]:
    noise = _TeardownNoise()
    for name in _TEARDOWN_LOGGERS:
        logging.getLogger(name).addFilter(noise)
    try:
        yield
    finally:
        for name in _TEARDOWN_LOGGERS:
            logging.getLogger(name).removeFilter(noise)

_ACTIVE, _STANDBY = b"active", b"standby"


class GroupMember(Protocol):
    """A member as kafka-python's coordinator hands it to `assign` (id and subscription)."""

    member_id: str
    metadata: ConsumerProtocolSubscription


class ActiveStandbyAssignor(AbstractPartitionAssignor):
    """All partitions to one member (the current owner if any), none to the rest."""

    name = "perennial-active-standby"
    version = 0

    def __init__(self) -> None:
        self.active = False

    def metadata(self, topics: Collection[str]) -> ConsumerProtocolSubscription:
        return ConsumerProtocolSubscription(self.version, sorted(topics), _ACTIVE if self.active else _STANDBY)

    def assign(self, cluster: ClusterMetadata, members: list[GroupMember]) -> dict[str, ConsumerProtocolAssignment]:
        topics = sorted({t for m in members for t in m.metadata.topics})
        owners = sorted(m.member_id for m in members if m.metadata.user_data == _ACTIVE)
        chosen = owners[0] if owners else min(m.member_id for m in members)
        everything = [(t, sorted(cluster.partitions_for_topic(t) or ())) for t in topics]
        return {
            m.member_id: ConsumerProtocolAssignment(self.version, everything if m.member_id == chosen else [], b"")
            for m in members
        }

    def on_assignment(self, assignment: ConsumerProtocolAssignment, generation: int) -> None:
        self.active = bool(assignment.partitions())


def build_consumer(settings: KafkaSettings, model: str, client_id: str | None = None) -> KafkaConsumer:
    """A consumer of the model's group, offsets managed by the trainer (no auto-commit)."""
    return KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers.split(","),
        group_id=group_id(model),
        client_id=client_id or f"perennial-trainer-{model}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        max_poll_interval_ms=settings.max_poll_interval_ms,
        request_timeout_ms=max(settings.request_timeout_ms, settings.session_timeout_ms + 5000),
        max_poll_records=settings.max_poll_records,
        partition_assignment_strategy=[ActiveStandbyAssignor()],
    )


class _Rebalance(ConsumerRebalanceListener):
    """Checkpoint before partitions go; restore the shared checkpoint when they come."""

    def __init__(self, loop: TrainerLoop) -> None:
        self.loop = loop

    def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        if revoked:
            self.loop.give_up(checkpoint=True)

    def on_partitions_lost(self, lost: Collection[TopicPartition]) -> None:
        if lost:
            self.loop.give_up(checkpoint=False)

    def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        if assigned:
            self.loop.take_over(list(assigned))


class TrainerLoop:
    """Drives a `Trainer` from a `KafkaConsumer` until `stop` is set.

    `source` is where records come from (`streaming.sources`): by default the consumer's own
    poll; `FetcherSource` moves fetching and validation to a second process.
    """

    def __init__(self, trainer: Trainer, consumer: KafkaConsumer, *, poll_timeout_ms: int = 200,
                 max_records: int = 2000, stop: threading.Event | None = None,
                 on_batch: Callable[[Trainer], None] | None = None,
                 source: RecordSource | None = None) -> None:
        self.trainer, self.consumer = trainer, consumer
        self.source: RecordSource = source if source is not None else ConsumerSource(consumer)
        self.poll_timeout_ms, self.max_records = poll_timeout_ms, max_records
        self.stop = stop or threading.Event()
        self.on_batch = on_batch
        self._lock = threading.RLock()
        self._to_commit: dict[tuple[str, int], int] | None = None
        self._check_ends: list[TopicPartition] = []
        self.assigned: list[TopicPartition] = []
        self._refused: CheckpointError | None = None
        self.lag_lookup_s = 5.0
        self._looked_up_at = -1e18
        self._looked_up: dict[tuple[str, int], int] = {}

    # -- rebalance (called on the consumer's IO loop) -----------------------------------------

    def give_up(self, checkpoint: bool) -> None:
        with self._lock:
            if self.trainer.loaded and checkpoint:
                try:
                    self._to_commit = self.trainer.checkpoint()
                except CheckpointFenced as e:
                    log.warning("%s", e)
            if self.trainer.loaded:
                log.info("%s: partitions %s; state released", self.trainer.model,
                         "revoked" if checkpoint else "lost")
            self.trainer.release()
            self.source.revoked()
            self.assigned = []

    def take_over(self, assigned: list[TopicPartition]) -> None:
        with self._lock:
            try:
                offsets = self.trainer.restore()
            except CheckpointError as e:
                # raised from the loop (not from this callback, where kafka-python would wrap
                # it as "User rebalance callback throws an error"): the trainer stops and says why
                log.error("%s: cannot take over: %s", self.trainer.model, e)
                self._refused = e
                return
            self.assigned = assigned
            self.source.assigned(assigned, offsets, self.trainer.schema)
            self._check_ends = [tp for tp in assigned if (tp.topic, tp.partition) in offsets]
            log.info("%s: now active on %s", self.trainer.model,
                     ", ".join(f"{tp.topic}[{tp.partition}]" for tp in assigned))

    # -- main loop -----------------------------------------------------------------------------

    def run(self) -> None:
        topics = [predictions_topic(self.trainer.model), feedback_topic(self.trainer.model)]
        self.consumer.subscribe(topics, listener=_Rebalance(self))
        self.source.start()
        try:
            while not self.stop.is_set():
                self.step()
            log.info("%s: stopping", self.trainer.model)
        finally:
            self._finish()

    def step(self) -> None:
        records = self.source.poll(self.poll_timeout_ms, self.max_records)
        if self._refused is not None:
            raise self._refused
        self._commit_pending()
        self._verify_ends()
        with self._lock:
            if not self.trainer.loaded:
                return  # a standby, or between revocation and assignment
            try:
                if records:
                    self.trainer.handle(records)
            except OffsetGap as gap:
                log.warning("%s; seeking back", gap)
                self.source.seek(TopicPartition(gap.topic, gap.partition), gap.offset)
            self.trainer.tick()
            self._report_lag()
            if self.trainer.checkpoint_due():
                self._to_commit = self.trainer.checkpoint()
        if self.on_batch is not None:
            self.on_batch(self.trainer)
        self._commit_pending()

    def _commit_pending(self) -> None:
        offsets, self._to_commit = self._to_commit, None
        if not offsets:
            return
        from kafka.structs import OffsetAndMetadata

        try:
            self.consumer.commit({TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()})
        except KafkaError as e:  # the checkpoint is what counts; a failed commit only skews lag tools
            log.warning("%s: offset commit failed after a durable checkpoint (harmless): %s", self.trainer.model, e)

    def _verify_ends(self) -> None:
        """A checkpoint offset past the end of its partition means the topic was recreated
        (the in-memory broker restarted): say so and read that partition from its start.

        The end is the high watermark from fetch responses; ListOffsets is not used because
        the embedded broker can answer it with a stale value right after a produce.
        """
        if not self._check_ends:
            return
        pending = []
        with self._lock:
            for tp in self._check_ends:
                expected = self.trainer.offsets.get((tp.topic, tp.partition)) if self.trainer.loaded else None
                if expected is None or tp not in self.assigned:
                    continue
                high = self.source.highwater(tp)
                if high is None:
                    pending.append(tp)
                elif high < expected:
                    log.warning(
                        "%s[%d] ends at %d but the checkpoint resumes at %d: the topic was recreated "
                        "(an in-memory broker restarted?); reading it from the start",
                        tp.topic, tp.partition, high, expected)
                    del self.trainer.offsets[(tp.topic, tp.partition)]
                    self.source.seek(tp, None)
        self._check_ends = pending

    def _report_lag(self) -> None:
        """Records between the trainer's position and each partition's end — also while the
        partition is stuck: when the source knows no end (its fetcher keeps failing, say),
        the end is looked up from the broker (at most every `lag_lookup_s`), and where the
        trainer has no position yet it is where reading began, so a stream that never
        starts shows its whole backlog instead of no lag at all."""
        unknown = [tp for tp in self.assigned if self.source.highwater(tp) is None]
        now = time.monotonic()
        if unknown and now - self._looked_up_at >= self.lag_lookup_s:
            self._looked_up_at = now
            try:
                self._looked_up = {(tp.topic, tp.partition): o for tp, o in
                                   self.consumer.end_offsets(unknown, timeout_ms=1000).items()}
            except KafkaError as e:  # the broker is unreachable too: the last known value stays
                log.debug("%s: partition ends unknown: %s", self.trainer.model, e)
        for tp in self.assigned:
            key = (tp.topic, tp.partition)
            high = self.source.highwater(tp)
            if high is None:
                high = self._looked_up.get(key)
            position = self.trainer.offsets.get(key)
            if position is None:
                position = self.source.reading_from(tp)
            if high is not None and position is not None:
                self.trainer.report_lag(f"{tp.topic}:{tp.partition}", max(0, high - position))

    def _finish(self) -> None:
        """Finish cleanly: checkpoint what was handled, commit it, leave the group.

        If that last checkpoint fails (a full disk), its error is the one that propagates:
        the state is released before the consumer closes, so leaving the group (which revokes
        the partitions) does not try the same checkpoint again inside a rebalance callback —
        whose failure kafka-python would raise as "User rebalance callback throws an error",
        hiding the ENOSPC — and an error while closing is only logged next to it.
        """
        failure: BaseException | None = None
        try:
            with self._lock:
                if self.trainer.loaded and self.trainer.unsaved_records:
                    try:
                        self._to_commit = self.trainer.checkpoint()
                    except CheckpointFenced as e:
                        log.warning("%s", e)
            self._commit_pending()
        except BaseException as e:
            failure = e
            raise
        finally:
            started = time.monotonic()
            with self._lock:
                if self.trainer.loaded:  # checkpointed above (or it failed): nothing left to save
                    self.trainer.release()
            closing: list[Exception] = []
            for close in (self.source.close, lambda: self.consumer.close(autocommit=False)):
                try:
                    with _quiet_client_teardown():
                        close()
                except Exception as e:
                    closing.append(e)
                    if failure is not None:
                        log.exception("%s: closing after %s: %s also failed", self.trainer.model,
                                      type(failure).__name__, failure)
            log.info("%s: consumer closed (%.1fs)", self.trainer.model, time.monotonic() - started)
            if closing and failure is None:
                raise closing[0]
