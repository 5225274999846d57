"""Dead letters: an invalid record goes to ``<model>.feedback.dlq`` with why and where from.

Why keep the original bytes as the value and put the context in headers (the Kafka Connect
convention): nothing is lost — after fixing the producer an operator can replay the DLQ as
it is — and the reason, detail and source coordinates stay machine-readable. The source
``(topic, partition, offset)`` is the dead letter's identity.

Exactly once across crashes: after a crash the trainer re-reads the records since its last
checkpoint, and would dead-letter again those it had dead-lettered before dying. So each
checkpoint also stores where the dead-letter topic ended once every letter before it was
acknowledged (``dlq_ends``), and a trainer that takes over reads the topic back from there
— only the letters written since that checkpoint, a bounded read — before it sends its
first letter, and skips the source records already there. With no checkpoint at all it
reads at most the last ``recall_max`` letters of each partition.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from streaming.schemas import Reason

if TYPE_CHECKING:
    from kafka import TopicPartition

log = logging.getLogger(__name__)
Identity = tuple[str, int, int]  # the source record's (topic, partition, offset)

H_REASON = "perennial.dlq.reason"
H_DETAIL = "perennial.dlq.detail"
H_TOPIC = "perennial.dlq.topic"
H_PARTITION = "perennial.dlq.partition"
H_OFFSET = "perennial.dlq.offset"
H_MODEL = "perennial.dlq.model"
MAX_DETAIL = 1000


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered record: the original key and value plus the reason and source."""

    model: str
    reason: Reason | str
    detail: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (H_REASON, str(self.reason).encode()),
            (H_DETAIL, self.detail[:MAX_DETAIL].encode("utf-8", "replace")),
            (H_TOPIC, self.topic.encode()),
            (H_PARTITION, str(self.partition).encode()),
            (H_OFFSET, str(self.offset).encode()),
            (H_MODEL, self.model.encode()),
        ]

    @classmethod
    def from_record(cls, record: object) -> DeadLetter:
        """Parse a consumed DLQ record (anything with ``key``, ``value``, ``headers``)."""
        h = {k: v.decode("utf-8", "replace") for k, v in (getattr(record, "headers", None) or [])}
        return cls(h.get(H_MODEL, ""), h.get(H_REASON, ""), h.get(H_DETAIL, ""), h.get(H_TOPIC, ""),
                   int(h.get(H_PARTITION, -1)), int(h.get(H_OFFSET, -1)),
                   getattr(record, "key", None), getattr(record, "value", None))


    @property
    def identity(self) -> Identity:
        return (self.topic, self.partition, self.offset)


class DeadLetterError(RuntimeError):
    """Dead letters could not be written or read back (the message says which and why)."""


class DeadLetterSink(Protocol):
    """Where dead letters go.

    `flush` makes every sent letter durable (before a checkpoint) and raises if one was
    lost; `ends` is then where the topic ended (stored in the checkpoint); `resume` starts
    an ownership from a checkpoint's ends; `recall` returns the identities of letters of
    `model` written since those ends (by a trainer that crashed before its next checkpoint).
    """

    def send(self, letter: DeadLetter) -> None: ...
    def flush(self) -> None: ...
    def ends(self) -> dict[int, int]: ...
    def resume(self, ends: dict[int, int]) -> None: ...
    def recall(self, model: str) -> set[Identity]: ...


class RecordMetadata(Protocol):
    """Where an acknowledged record landed (kafka-python's ``RecordMetadata``)."""

    partition: int
    offset: int


class SendFuture(Protocol):
    def get(self, timeout: float | None = None) -> RecordMetadata: ...


class LetterProducer(Protocol):
    """The part of a kafka-python ``KafkaProducer`` dead letters use."""

    def send(self, topic: str, *, key: bytes | None, value: bytes | None,
             headers: list[tuple[str, bytes]]) -> SendFuture: ...
    def flush(self) -> None: ...


class KafkaDeadLetters:
    """Produces dead letters to ``<model>.feedback.dlq`` with a kafka-python producer, and
    reads them back (a consumer of its own, no group) when an ownership starts."""

    def __init__(self, producer: LetterProducer, topic: str, bootstrap_servers: str = "", *,
                 recall_max: int = 100000, timeout_s: float = 60.0) -> None:
        self._producer = producer
        self.topic = topic
        self._bootstrap = bootstrap_servers
        self.recall_max, self.timeout_s = recall_max, timeout_s
        self._pending: list[SendFuture] = []
        self._ends: dict[int, int] = {}

    def send(self, letter: DeadLetter) -> None:
        self._pending.append(self._producer.send(self.topic, key=letter.key, value=letter.value,
                                                 headers=letter.headers()))

    def flush(self) -> None:
        self._producer.flush()
        pending, self._pending = self._pending, []
        for future in pending:
            try:
                metadata = future.get(timeout=self.timeout_s)
            except Exception as e:  # a checkpoint must not outrun a letter that was lost
                raise DeadLetterError(f"a dead letter to {self.topic} was not written ({type(e).__name__}: {e}); "
                                      "the trainer stops before its checkpoint so the record is handled again") from e
            if metadata.offset >= self._ends.get(metadata.partition, 0):
                self._ends[metadata.partition] = metadata.offset + 1

    def ends(self) -> dict[int, int]:
        return dict(self._ends)

    def resume(self, ends: dict[int, int]) -> None:
        self._ends = dict(ends)
        self._pending = []

    def recall(self, model: str) -> set[Identity]:
        from kafka import KafkaConsumer, TopicPartition

        started = time.monotonic()
        consumer = KafkaConsumer(bootstrap_servers=self._bootstrap.split(","), group_id=None,
                                 enable_auto_commit=False, client_id=f"perennial-trainer-{model}-dlq-recall")
        try:
            tps = [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())]
            if not tps:
                return set()
            consumer.assign(tps)
            begins, ends = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
            for tp in tps:
                start = self._ends.get(tp.partition)
                if start is None or start > ends[tp]:  # no checkpoint says where (or the topic is new)
                    start = max(begins[tp], ends[tp] - self.recall_max)
                consumer.seek(tp, start)
            found: set[Identity] = set()
            caught_up: set[TopicPartition] = set()
            while len(caught_up) < len(tps):  # to the high watermark the fetches report
                if time.monotonic() - started > self.timeout_s:
                    raise DeadLetterError(f"could not read {self.topic} back within {self.timeout_s:g}s "
                                          "(is Kafka reachable?); dead letters would be doubled without it")
                for records in consumer.poll(timeout_ms=200).values():
                    for r in records:
                        letter = DeadLetter.from_record(r)
                        if letter.model == model:
                            found.add(letter.identity)
                for tp in tps:
                    high = consumer.highwater(tp)
                    if high is not None and consumer.position(tp) >= high:
                        caught_up.add(tp)
            for tp in tps:
                self._ends[tp.partition] = consumer.position(tp)
            log.info("%s: %d dead letter(s) written since the checkpoint (read back from %s in %.1fs); "
                     "they are not written again", model, len(found), self.topic, time.monotonic() - started)
            return found
        finally:
            consumer.close()


class MemoryDeadLetters:
    """In-memory sink for unit tests and offline runs: one partition, offsets = list positions."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []
        self._start = 0

    def send(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def flush(self) -> None:
        pass

    def ends(self) -> dict[int, int]:
        return {0: len(self.letters)}

    def resume(self, ends: dict[int, int]) -> None:
        self._start = ends.get(0, 0)

    def recall(self, model: str) -> set[Identity]:
        return {d.identity for d in self.letters[self._start:] if d.model == model}
