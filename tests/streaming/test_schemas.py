"""Every invalid-event kind maps to its specific reason code (the DLQ's contract)."""

from __future__ import annotations

import pytest

from streaming.schemas import InvalidEvent, ModelSchema, Reason, decode_feedback, decode_prediction

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
