"""The fetcher's wire format: what the trainer gets back is what it would have decoded itself."""

from __future__ import annotations

import json
import marshal
from types import SimpleNamespace

import pytest

from streaming.fetcher import _encode, decode_batch
from streaming.schemas import InvalidEvent, ModelSchema, Reason, decode_feedback, decode_prediction

SCHEMA = ModelSchema("m", feature_names=("a", "b"), classes=(0, 1))


def consumed(offset: int, value: bytes | None) -> SimpleNamespace:
    return SimpleNamespace(offset=offset, timestamp=1700000000000 + offset, key=b"m", value=value)


def roundtrip(*encoded: tuple) -> list:
    kind, epoch, ends, records = decode_batch(marshal.dumps(("batch", 7, [("m.feedback", 0, 42)], list(encoded))))
    assert (kind, epoch, ends) == ("batch", 7, {("m.feedback", 0): 42})
    return records


def test_valid_feedback_and_prediction_arrive_decoded_as_the_trainer_would() -> None:
    feedback = json.dumps({"event_id": "e1", "model": "m", "features": {"a": 1, "b": 2.5}, "label": 1}).encode()
    label_only = json.dumps({"event_id": "e2", "model": "m", "prediction_id": "p1", "label": 0}).encode()
    prediction = json.dumps({"prediction_id": "p1", "model": "m", "version": 3, "features": [0.5, 1],
                             "output": {"label": 1, "probabilities": {"0": 0.2, "1": 0.8}},
                             "timestamp": 1.5}).encode()
    records = roundtrip(_encode("m.feedback", 0, consumed(10, feedback), False, SCHEMA),
                        _encode("m.feedback", 0, consumed(11, label_only), False, SCHEMA),
                        _encode("m.predictions", 0, consumed(5, prediction), True, SCHEMA))
    assert [(r.topic, r.partition, r.offset, r.key, r.timestamp_ms) for r in records] == [
        ("m.feedback", 0, 10, b"m", 1700000000010), ("m.feedback", 0, 11, b"m", 1700000000011),
        ("m.predictions", 0, 5, b"m", 1700000000005)]
    assert [r.value for r in records] == [feedback, label_only, prediction], "original bytes, for dead letters"
    assert records[0].event == decode_feedback(feedback, SCHEMA)
    assert records[2].event == decode_prediction(prediction, SCHEMA)
    # types survive the trip: a float feature stays float, labels keep bool vs int
    assert records[0].event.features == {"a": 1.0, "b": 2.5} and type(records[0].event.label) is int


@pytest.mark.parametrize(("value", "reason"), [
    (b"{", Reason.NOT_JSON),
    (None, Reason.NOT_JSON),
    (b'{"event_id": "e", "model": "m", "features": {"a": NaN, "b": 1}, "label": 1}', Reason.NAN),
    (b'{"event_id": "e", "model": "m", "features": [1, 2, 3], "label": 1}', Reason.WRONG_VECTOR_LENGTH),
    (b'{"event_id": "e", "model": "m", "features": [1, 2], "label": 7}', Reason.UNKNOWN_CLASS),
])
def test_invalid_records_arrive_with_their_reason_and_bytes(value: bytes | None, reason: Reason) -> None:
    record, = roundtrip(_encode("m.feedback", 0, consumed(3, value), False, SCHEMA))
    assert isinstance(record.event, InvalidEvent)
    assert record.event.reason is reason and record.event.detail
    with pytest.raises(InvalidEvent) as direct:
        decode_feedback(value, SCHEMA)
    assert record.event.detail == direct.value.detail
    assert record.value == value


def test_an_error_message_is_reported_as_such() -> None:
    assert decode_batch(marshal.dumps(("error", "Traceback ..."))) == ("error", None, None, "Traceback ...")


def test_a_multi_prediction_record_arrives_as_the_trainer_would_decode_it() -> None:
    from streaming.schemas import PredictionBatch

    value = json.dumps({"model": "m", "version": 3, "timestamp": 1.5, "prediction_ids": ["b-0", "b-1"],
                        "features": [[0.5, 1], {"a": 2, "b": 3}], "labels": [1, 0], "classes": ["0", "1"],
                        "probabilities": [[0.2, 0.8], [0.6, 0.4]]}).encode()
    record, = roundtrip(_encode("m.predictions", 0, consumed(5, value), True, SCHEMA))
    assert type(record.event) is PredictionBatch and record.value == value
    assert record.event == decode_prediction(value, SCHEMA)
    assert [(p.prediction_id, p.features, p.label) for p in record.event.predictions] == [
        ("b-0", {"a": 0.5, "b": 1.0}, 1), ("b-1", {"a": 2.0, "b": 3.0}, 0)]
