"""Where the trainer's loop gets its records: the group consumer itself, or a fetcher process.

Both sources answer the same five questions for `streaming.consumer.TrainerLoop` — partitions
came (``assigned``) or went (``revoked``), the next batch (``poll``), a partition's end
(``highwater``), and "read this partition from there" (``seek``) — so the loop's
exactly-once bookkeeping (offsets in the checkpoint, commit after it, rebalance → restore)
is one piece of code whichever source feeds it.

* `ConsumerSource`: one process; the trainer decodes what the group consumer fetched. For a
  single core, and as the reference the fetcher is tested against.
* `FetcherSource` (the default): the group consumer only keeps the group membership (its
  partitions are paused, so it never fetches) and commits; a `streaming.fetcher.Fetcher`
  process reads and validates from the positions the trainer's checkpoint gives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition

from streaming.fetcher import Fetcher, KafkaConfig, Position
from streaming.schemas import ModelSchema
from streaming.trainer import Record
from streaming.undecodable import find_undecodable_batch

log = logging.getLogger(__name__)

Offsets = dict[tuple[str, int], int]


class RecordSource(Protocol):
    """The five questions (plus start and close) `TrainerLoop` asks of a source."""

    def start(self) -> None: ...
    def assigned(self, assigned: list[TopicPartition], offsets: Offsets, schema: ModelSchema) -> None: ...
    def revoked(self) -> None: ...
    def poll(self, timeout_ms: int, max_records: int) -> list[Record]: ...
    def highwater(self, tp: TopicPartition) -> int | None: ...
    def seek(self, tp: TopicPartition, offset: Position) -> None: ...
    def close(self) -> None: ...


class ConsumerSource:
    """Records straight from the group consumer's poll; `event` left for the trainer to decode."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer

    def start(self) -> None:
        pass

    def assigned(self, assigned: list[TopicPartition], offsets: Offsets, schema: ModelSchema) -> None:
        for tp in assigned:  # seek is bookkeeping only: safe inside a rebalance callback
            offset = offsets.get((tp.topic, tp.partition))
            if offset is not None:
                self.consumer.seek(tp, offset)

    def revoked(self) -> None:
        pass

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]:
        try:
            batch = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except Exception as e:
            bad = find_undecodable_batch(e)
            if bad is None:
                raise
            # dead-lettered by the trainer; reading goes on after it (records before it in
            # the same fetch were returned by the previous poll)
            log.warning("%s", bad.detail)
            self.consumer.seek(TopicPartition(bad.topic, bad.partition), bad.end)
            return [bad.as_record()]
        return [
            Record(tp.topic, tp.partition, r.offset, r.key, r.value, r.timestamp or 0)
            for tp, recs in batch.items() for r in recs
        ]

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.consumer.highwater(tp)

    def reading_from(self, tp: TopicPartition) -> int | None:
        """Where reading began, for lag before the first record: not known without a
        broker round trip here (records arrive from the first poll on)."""
        return None

    def seek(self, tp: TopicPartition, offset: Position) -> None:
        if offset is None:
            self.consumer.seek_to_beginning(tp)
        else:
            self.consumer.seek(tp, offset)

    def close(self) -> None:
        pass


class FetcherSource:
    """Group membership here, fetching and validation in a `Fetcher` process.

    `handled()` returns the trainer's offsets (the next record it expects per partition): a
    new read order starts there, so whatever was in flight when the order changed is read
    again and checked against those offsets like any other record.
    """

    def __init__(self, consumer: KafkaConsumer, fetcher: Fetcher, handled: Callable[[], Offsets],
                 on_restart: Callable[[], None] | None = None) -> None:
        self.consumer, self.fetcher, self._handled = consumer, fetcher, handled
        self._on_restart = on_restart
        self._assigned: list[TopicPartition] = []
        self._starts: dict[tuple[str, int], Position] = {}  # where reading began, per partition
        self._schema: ModelSchema | None = None
        self._pending = False  # an assignment whose read order is not sent yet
        self._ends: dict[tuple[str, int], int | None] = {}
        self._restarts = 0

    def start(self) -> None:
        self.fetcher.start()

    def assigned(self, assigned: list[TopicPartition], offsets: Offsets, schema: ModelSchema) -> None:
        # Called inside the consumer's poll: pause (bookkeeping only) so this consumer never
        # fetches; the positions of partitions the checkpoint does not know are looked up
        # after the callback returns (that needs the consumer's IO loop).
        self.consumer.pause(*assigned)
        self._assigned, self._schema = list(assigned), schema
        self._starts = {(tp.topic, tp.partition): offsets.get((tp.topic, tp.partition)) for tp in assigned}
        self._ends = {}
        self._pending = True

    def revoked(self) -> None:
        self._assigned, self._pending, self._ends = [], False, {}
        self.fetcher.stop()

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]:
        # Group duties only (rebalances, the callbacks above): every partition is paused, so
        # nothing is fetched here.
        # Without partitions (a standby, or joining) the wait happens here, not in a spin.
        wait_ms = 0 if self._assigned or self._pending else timeout_ms
        for _tp, records in self.consumer.poll(timeout_ms=wait_ms).items():
            if records:  # cannot happen while paused; never learn from two readers
                log.warning("the group consumer fetched %d records while paused; ignored", len(records))
        if self._pending:
            self._pending = False
            for tp in self._assigned:
                key = (tp.topic, tp.partition)
                if self._starts.get(key) is None:  # the committed offset, else the reset policy
                    self._starts[key] = self.consumer.position(tp)
            self._order(self._starts)
        if not self._assigned:
            return []
        got = self.fetcher.receive(timeout_ms / 1000.0)
        if self.fetcher.restarts != self._restarts:  # a new fetcher: read on from where the trainer is
            if self._on_restart is not None:
                for _ in range(self.fetcher.restarts - self._restarts):
                    self._on_restart()
            self._restarts = self.fetcher.restarts
            self._order(self._positions())
            return []
        if got is None:
            return []
        records, ends = got
        self._ends.update(ends)
        return records

    def highwater(self, tp: TopicPartition) -> int | None:
        return self._ends.get((tp.topic, tp.partition))

    def reading_from(self, tp: TopicPartition) -> int | None:
        """Where this assignment's reading began (None: the partition's beginning, unknown)."""
        return self._starts.get((tp.topic, tp.partition))

    def seek(self, tp: TopicPartition, offset: Position) -> None:
        """Read `tp` from `offset` (None: its beginning), every other partition from where the
        trainer is: one new read order, so nothing of the old one is learned."""
        self._starts[(tp.topic, tp.partition)] = offset
        positions = self._positions()
        positions[(tp.topic, tp.partition)] = offset
        self._order(positions)

    def _positions(self) -> dict[tuple[str, int], Position]:
        """Where the trainer is: the next offset it expects, else where reading began."""
        handled = self._handled()
        return {key: handled.get(key, start) for key, start in self._starts.items()}

    def _order(self, positions: dict[tuple[str, int], Position]) -> None:
        self._ends = {}
        self.fetcher.read(positions, self._schema)

    def close(self) -> None:
        self.fetcher.close()


def fetcher_kafka_config(bootstrap_servers: str, client_id: str, request_timeout_ms: int,
                         max_poll_records: int) -> KafkaConfig:
    """The fetcher's own consumer: no group (the trainer's consumer holds the membership and
    commits), positions set by the trainer."""
    return {
        "bootstrap_servers": bootstrap_servers.split(","),
        "client_id": client_id,
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "request_timeout_ms": request_timeout_ms,
        "max_poll_records": max_poll_records,
    }
