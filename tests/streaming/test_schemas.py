"""Every invalid-event kind maps to its specific reason code (the DLQ's contract)."""

from __future__ import annotations

import pytest

from streaming.schemas import InvalidEvent, ModelSchema, Reason, decode_feedback, decode_prediction
from training.spec import ModelSpec

S = ModelSchema("m", feature_names=("a", "b"), classes=(0, 1), max_event_bytes=400)
OK = '"event_id": "e1", "model": "m"'

CASES = [
    (b"nope", Reason.NOT_JSON),
    (None, Reason.NOT_JSON),
    (b"[1, 2]", Reason.NOT_OBJECT),
    (b'{' + OK.encode() + b', "features": [1, 2]}', Reason.MISSING_FIELD),
    (b'{' + OK.encode() + b', "label": 1}', Reason.MISSING_FIELD),
    (b'{' + OK.encode() + b', "features": [1, NaN], "label": 1}', Reason.NAN),
    (b'{' + OK.encode() + b', "features": {"a": 1, "b": -Infinity}, "label": 1}', Reason.INFINITY),
    (b'{' + OK.encode() + b', "features": {"a": 1e999, "b": 1}, "label": 1}', Reason.INFINITY),
    (b'{' + OK.encode() + b', "features": {"a": "1", "b": 2}, "label": 1}', Reason.WRONG_TYPE),
    (b'{' + OK.encode() + b', "features": {"a": true, "b": 2}, "label": 1}', Reason.WRONG_TYPE),
    (b'{' + OK.encode() + b', "features": [1, 2], "label": 1.5}', Reason.WRONG_TYPE),
    (b'{"event_id": 5, "model": "m", "features": [1, 2], "label": 1}', Reason.WRONG_TYPE),
    (b'{' + OK.encode() + b', "features": [1, 2], "label": 7}', Reason.UNKNOWN_CLASS),
    (b'{' + OK.encode() + b', "features": [1, 2], "label": true}', Reason.UNKNOWN_CLASS),
    (b'{' + OK.encode() + b', "features": [1, 2], "label": "1"}', Reason.UNKNOWN_CLASS),
    (b'{' + OK.encode() + b', "features": [1, 2, 3], "label": 1}', Reason.WRONG_VECTOR_LENGTH),
    (b'{' + OK.encode() + b', "features": {"a": 1, "c": 2}, "label": 1}', Reason.UNKNOWN_FEATURE),
    (b'{' + OK.encode() + b', "features": {"a": 1}, "label": 1}', Reason.MISSING_FEATURE),
    (b'{' + OK.encode() + b', "features": [1, 2], "label": 1, "pad": "' + b"x" * 400 + b'"}', Reason.OVERSIZED),
    (b'{' + OK.encode() + b', "features": [1, 2], "label": 1, "extra": 1}', Reason.UNKNOWN_FIELD),
    (b'{"event_id": "e1", "model": "x", "features": [1, 2], "label": 1}', Reason.UNKNOWN_MODEL),
    (b'{"event_id": "", "model": "m", "features": [1, 2], "label": 1}', Reason.INVALID_VALUE),
]


@pytest.mark.parametrize(("raw", "reason"), CASES)
def test_each_invalid_feedback_gets_its_reason(raw: bytes | None, reason: Reason) -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_feedback(raw, S)
    assert info.value.reason is reason
    assert info.value.detail  # says what was wrong


def test_valid_feedback_forms() -> None:
    full = decode_feedback(b'{' + OK.encode() + b', "features": {"b": 2, "a": 1}, "label": 0}', S)
    assert full.features == {"a": 1.0, "b": 2.0} and full.label == 0
    label_only = decode_feedback(b'{' + OK.encode() + b', "prediction_id": "p1", "label": 1}', S)
    assert label_only.features is None and label_only.prediction_id == "p1"


def test_prediction_record() -> None:
    raw = b'{"prediction_id": "p", "model": "m", "version": 3, "features": [1, 2], "timestamp": 1.0}'
    assert decode_prediction(raw, S).features == {"a": 1.0, "b": 2.0}
    with pytest.raises(InvalidEvent) as info:
        decode_prediction(raw.replace(b'"timestamp": 1.0', b'"timestamp": NaN'), S)
    assert info.value.reason is Reason.NAN


def test_unfixed_schema_accepts_any_names_and_classes() -> None:
    loose = ModelSchema("m")
    event = decode_feedback(b'{' + OK.encode() + b', "features": {"z": 1}, "label": "new"}', loose)
    assert event.features == {"z": 1.0} and event.label == "new"


# -- one prediction record per request (issue 11) ---------------------------------------------

def _batch_record(**over) -> dict:
    record = {"model": "m", "version": 3, "timestamp": 2.0, "prediction_ids": ["r-0", "r-1"],
              "features": [{"a": 1, "b": 2.5}, [3, 4]], "labels": [1, 0], "classes": ["0", "1"],
              "probabilities": [[0.2, 0.8], [0.9, 0.1]]}
    record.update(over)
    return record


def test_a_multi_prediction_record_round_trips() -> None:
    from streaming.schemas import PredictionBatch, encode_prediction_batch, prediction_records

    raw = encode_prediction_batch(_batch_record())
    decoded = decode_prediction(raw, S)
    assert type(decoded) is PredictionBatch and (decoded.model, decoded.version, decoded.timestamp) == ("m", 3, 2.0)
    assert [(p.prediction_id, p.features, p.label, p.version, p.timestamp) for p in decoded.predictions] == [
        ("r-0", {"a": 1.0, "b": 2.5}, 1, 3, 2.0), ("r-1", {"a": 3.0, "b": 4.0}, 0, 3, 2.0)]
    # per-prediction view, in the old record's shape
    first, second = prediction_records(raw)
    assert first == {"prediction_id": "r-0", "model": "m", "version": 3, "features": {"a": 1, "b": 2.5},
                     "output": {"label": 1, "probabilities": {"0": 0.2, "1": 0.8}}, "timestamp": 2.0}
    assert second["output"]["label"] == 0
    regression = decode_prediction(encode_prediction_batch(_batch_record(
        labels=None, classes=None, probabilities=None, values=[1.5, -2.0])), ModelSchema("m", ("a", "b")))
    assert [p.label for p in regression.predictions] == [1.5, -2.0]


def test_the_old_per_prediction_record_is_still_read() -> None:
    from streaming.schemas import Prediction, prediction_records

    raw = (b'{"prediction_id": "p", "model": "m", "version": 3, "features": {"a": 1, "b": 2},'
           b' "output": {"label": 1, "probabilities": {"0": 0.3, "1": 0.7}}, "timestamp": 1.0}')
    decoded = decode_prediction(raw, S)
    assert type(decoded) is Prediction and decoded.prediction_id == "p" and decoded.label == 1
    assert prediction_records(raw)[0]["prediction_id"] == "p"
    # an old record whose feature happens to be called "prediction_ids" is still an old record
    loose = ModelSchema("m")
    odd = b'{"prediction_id": "q", "model": "m", "version": 1, "features": {"prediction_ids": 1}, "timestamp": 1}'
    assert decode_prediction(odd, loose).features == {"prediction_ids": 1.0}


@pytest.mark.parametrize(("over", "reason", "where"), [
    ({"labels": [1]}, Reason.INVALID_VALUE, "labels has 1 entries for 2"),
    ({"features": [{"a": 1, "b": 2}, {"a": 1, "c": 2}]}, Reason.UNKNOWN_FEATURE, "predictions[1].features"),
    ({"features": [{"a": 1, "b": 2}, [1, float("nan")]]}, Reason.NAN, "predictions[1].features.b"),
    ({"model": "other"}, Reason.UNKNOWN_MODEL, "other"),
    ({"prediction_ids": ["r-0", ""]}, Reason.INVALID_VALUE, "must not be empty"),
])
def test_a_bad_multi_prediction_record_is_one_specific_dead_letter(over: dict, reason: Reason, where: str) -> None:
    import json

    raw = json.dumps(_batch_record(**over)).encode()
    with pytest.raises(InvalidEvent) as info:
        decode_prediction(raw, S)
    assert info.value.reason is reason and where in info.value.detail


def test_a_multi_prediction_record_may_be_larger_than_one_event() -> None:
    from streaming.schemas import encode_prediction_batch

    n = 3000
    record = _batch_record(prediction_ids=[f"r-{i}" for i in range(n)], features=[[1.5, 2.5]] * n,
                           labels=[1] * n, probabilities=[[0.2, 0.8]] * n)
    raw = encode_prediction_batch(record)
    assert len(raw) > S.max_event_bytes
    assert len(decode_prediction(raw, S).predictions) == n
    with pytest.raises(InvalidEvent) as info:
        decode_prediction(raw, ModelSchema("m", ("a", "b"), (0, 1), max_batch_bytes=1024))
    assert info.value.reason is Reason.OVERSIZED


def test_a_prediction_record_a_producer_sent_without_a_version_is_read() -> None:
    """`perennial produce` (and an application's own producer) predicts without a registry
    version: the encoder leaves the null out, and the trainer must still join the record."""
    from streaming.schemas import PredictionWire, encode

    raw = encode(PredictionWire(prediction_id="p", model="m", version=None, features={"a": 1, "b": 2}, timestamp=1.0))
    assert b"version" not in raw
    decoded = decode_prediction(raw, S)
    assert decoded.version is None and decoded.features == {"a": 1.0, "b": 2.0}


def test_every_problem_of_the_row_validator_has_a_dead_letter_reason() -> None:
    from streaming.schemas import _ROW_REASONS
    from training.rows import RowProblem

    assert set(_ROW_REASONS) == set(RowProblem)


IMAGE = ModelSchema("img", spec=ModelSpec.from_dict(
    {"task": "classification", "target": {"name": "digit", "classes": [0, 1]},
     "features": [{"name": "image", "kind": "tensor", "shape": [1, 2, 2]}]}))


def test_images_travel_in_feedback_events_and_in_the_services_prediction_records() -> None:
    """The service logs a tensor as its flat values; a client's Kafka event may nest it."""
    import json

    from streaming.schemas import encode_prediction_batch

    event = json.dumps({"event_id": "e", "model": "img", "features": {"image": [[[0, 1], [2, 3]]]}, "label": 1})
    assert decode_feedback(event.encode(), IMAGE).features == {"image": [0.0, 1.0, 2.0, 3.0]}
    record = {"model": "img", "version": 1, "timestamp": 1.0, "prediction_ids": ["r-0"],
              "features": [{"image": [0.0, 1.0, 2.0, 3.0]}], "labels": [1], "classes": ["0", "1"],
              "probabilities": [[0.3, 0.7]]}
    decoded = decode_prediction(encode_prediction_batch(record), IMAGE)
    assert decoded.predictions[0].features == {"image": [0.0, 1.0, 2.0, 3.0]}
    with pytest.raises(InvalidEvent) as info:
        decode_feedback(event.replace("[[[0, 1], [2, 3]]]", "[[0, 1], [2, 3]]").encode(), IMAGE)
    assert info.value.reason is Reason.WRONG_SHAPE and "shape [1, 2, 2]" in info.value.detail
