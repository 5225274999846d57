"""Dead letters: an invalid record goes to ``<model>.feedback.dlq`` with why and where from.

Why keep the original bytes as the value and put the context in headers (the Kafka Connect
convention): nothing is lost — after fixing the producer an operator can replay the DLQ as
it is — and the reason, detail and source coordinates stay machine-readable. The source
``(topic, partition, offset)`` is the dead letter's identity: after a crash the trainer
re-reads records since its last checkpoint and may dead-letter one again, so consumers of
the DLQ deduplicate on it (at-least-once delivery, exactly-once identity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from streaming.schemas import Reason

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


class DeadLetterSink(Protocol):
    """Where dead letters go; `flush` must make every sent letter durable (before a checkpoint)."""

    def send(self, letter: DeadLetter) -> None: ...
    def flush(self) -> None: ...


class KafkaDeadLetters:
    """Produces dead letters to ``<model>.feedback.dlq`` with a kafka-python producer."""

    def __init__(self, producer: object, topic: str) -> None:
        self._producer = producer
        self.topic = topic

    def send(self, letter: DeadLetter) -> None:
        self._producer.send(self.topic, key=letter.key, value=letter.value, headers=letter.headers())

    def flush(self) -> None:
        self._producer.flush()


class MemoryDeadLetters:
    """In-memory sink for unit tests and offline runs."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def send(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def flush(self) -> None:
        pass
