"""Producing Perennial events: the adapter the service and the replayer share.

Why one adapter: the prediction log and feedback must be keyed and encoded exactly as the
trainer expects (JSON values, model name as key, see `streaming.topics`); the service (issue
"serving") and `perennial produce` both go through `EventProducer`, so they cannot drift apart.
`send_*` never blocks longer than ``max_block_ms``: a slow or absent broker raises
`ProduceError`, which the service counts as a dropped prediction record.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from streaming.schemas import FeedbackWire, Label, PredictionOutput, PredictionWire, encode
from streaming.topics import feedback_topic, key, predictions_topic

if TYPE_CHECKING:
    from kafka.producer.future import FutureRecordMetadata


class RecordSender(Protocol):
    """What `EventProducer` needs of a kafka-python `KafkaProducer` (a test may pass its own)."""

    def send(self, topic: str, *, key: bytes | None, value: bytes | None) -> FutureRecordMetadata: ...
    def flush(self, timeout: float | None = None) -> None: ...
    def close(self) -> None: ...


class ProduceError(RuntimeError):
    """A record could not be handed to the producer (buffer full, broker unreachable)."""


class EventProducer:
    """Thin wrapper of a kafka-python `KafkaProducer` speaking Perennial's event schemas."""

    def __init__(self, bootstrap_servers: str, *, linger_ms: int = 5, acks: str | int = "all",
                 max_block_ms: int = 1000, client_id: str = "perennial-producer",
                 producer: RecordSender | None = None) -> None:
        if producer is None:
            from kafka import KafkaProducer

            producer = KafkaProducer(bootstrap_servers=bootstrap_servers.split(","), linger_ms=linger_ms,
                                     acks=acks, max_block_ms=max_block_ms, client_id=client_id)
        self._producer = producer

    def send_raw(self, topic: str, value: bytes | None, model_key: bytes | None = None) -> FutureRecordMetadata:
        from kafka.errors import KafkaError

        try:
            return self._producer.send(topic, key=model_key, value=value)
        except KafkaError as e:
            raise ProduceError(f"could not produce to {topic}: {e}") from e

    def send_prediction(self, model: str, prediction_id: str, features: Mapping[str, float] | Sequence[float],
                        *, version: int | None, label: Label | None = None,
                        probabilities: Mapping[str, float] | None = None,
                        timestamp: float | None = None) -> FutureRecordMetadata:
        record = PredictionWire(
            prediction_id=prediction_id, model=model, version=version,
            features=dict(features) if isinstance(features, Mapping) else list(features),
            output=PredictionOutput(label=label, probabilities=dict(probabilities or {})),
            timestamp=time.time() if timestamp is None else timestamp,
        )
        return self.send_raw(predictions_topic(model), encode(record), key(model))

    def send_feedback(self, model: str, event_id: str, label: Label, *,
                      features: Mapping[str, float] | Sequence[float] | None = None,
                      prediction_id: str | None = None, timestamp: float | None = None) -> FutureRecordMetadata:
        if features is None and prediction_id is None:
            raise ValueError("feedback needs features or a prediction_id")
        event = FeedbackWire(
            event_id=event_id, model=model, label=label, prediction_id=prediction_id, timestamp=timestamp,
            features=None if features is None else (dict(features) if isinstance(features, Mapping) else list(features)),
        )
        return self.send_raw(feedback_topic(model), encode(event), key(model))

    def flush(self, timeout_s: float | None = None) -> None:
        self._producer.flush(timeout=timeout_s)

    def close(self) -> None:
        self._producer.close()
