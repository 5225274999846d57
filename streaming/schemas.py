"""Event schemas on the wire: feedback, label-only feedback, prediction records.

Why strict and specific: every invalid record is dead-lettered with a *reason code* that an
operator can count, alert on and fix at the source, so validation must say exactly what was
wrong (which field, which value, what is accepted), never a generic "bad message". Structural
checks (JSON, types, finite numbers) run in pydantic-core's Rust JSON parser, which is faster
than ``json.loads``; the checks that need the model (feature names, vector length, classes)
run after, against a `ModelSchema` derived from the champion.

Messages are JSON values keyed by the model name (see `streaming.topics.key`).

>>> schema = ModelSchema("m", feature_names=("a", "b"), classes=(0, 1))
>>> decode_feedback(b'{"event_id": "e1", "model": "m", "features": [1, 2.5], "label": 1}', schema)
Feedback(event_id='e1', model='m', label=1, features={'a': 1.0, 'b': 2.5}, prediction_id=None, timestamp=None)
>>> decode_feedback(b'{"event_id": "e2", "model": "m", "features": {"a": NaN, "b": 1}, "label": 0}', schema)
Traceback (most recent call last):
...
streaming.schemas.InvalidEvent: nan: features.a is NaN; features must be finite numbers
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Label = str | int | bool
MAX_ID_LENGTH = 256


class Reason(StrEnum):
    """Dead-letter reason codes (the ``reason`` label of the dead-letter metric)."""

    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    WRONG_TYPE = "wrong_type"
    NAN = "nan"
    INFINITY = "infinity"
    OVERSIZED = "oversized"
    UNKNOWN_MODEL = "unknown_model"
    UNKNOWN_CLASS = "unknown_class"
    UNKNOWN_FEATURE = "unknown_feature"
    MISSING_FEATURE = "missing_feature"
    WRONG_VECTOR_LENGTH = "wrong_vector_length"
    INVALID_VALUE = "invalid_value"
    NO_PREDICTION = "no_prediction"  # label-only feedback whose prediction never arrived
    LEARN_FAILED = "learn_failed"  # the learning core refused a validated event
    UNDECODABLE_BATCH = "undecodable_batch"  # a record batch Kafka's client cannot decode (codec, corruption)


class InvalidEvent(ValueError):
    """A record that cannot be learned from; `reason` is a `Reason`, the message says why."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=True, frozen=True)
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
RawFeatures = dict[str, float] | list[float]


class FeedbackWire(BaseModel):
    """A feedback event as sent: ``features`` (object or vector) or a ``prediction_id``."""

    model_config = _STRICT
    event_id: Id
    model: Id
    label: Label
    features: RawFeatures | None = None
    prediction_id: Id | None = None
    timestamp: float | None = None


class PredictionOutput(BaseModel):
    """What the service answered: the label and class probabilities (keys as strings)."""

    model_config = _STRICT
    label: Label | None = None
    probabilities: dict[str, float] = Field(default_factory=dict)


class PredictionWire(BaseModel):
    """A prediction record of the service's prediction log."""

    model_config = _STRICT
    prediction_id: Id
    model: Id
    version: int | None
    features: RawFeatures
    output: PredictionOutput = Field(default_factory=PredictionOutput)
    timestamp: float


@dataclass(slots=True)  # read-only by convention; see `streaming.trainer.Record`
class Feedback:
    """A validated feedback event; `features` is None for label-only feedback (join needed)."""

    event_id: str
    model: str
    label: Label
    features: dict[str, float] | None
    prediction_id: str | None
    timestamp: float | None


@dataclass(slots=True)  # read-only by convention; see `streaming.trainer.Record`
class Prediction:
    """A validated prediction record, features keyed by name."""

    prediction_id: str
    model: str
    version: int | None
    features: dict[str, float]
    label: Label | None
    timestamp: float


@dataclass(frozen=True)
class ModelSchema:
    """What a model accepts: its feature names (order = vector order) and classes, if fixed.

    Derived from the champion (`from_system`); ``None`` means "not fixed, accept any".
    """

    model: str
    feature_names: tuple[str, ...] | None = None
    classes: tuple[Label, ...] | None = None
    max_event_bytes: int = 65536
    max_features: int = 4096
    allow_missing_features: bool = False

    @classmethod
    def from_system(cls, system: Any, **limits: Any) -> ModelSchema:
        names = tuple(system.feature_names or ()) or None
        classes = tuple(system.classes or ()) or None
        return cls(system.model, names, classes, **limits)

    def check_features(self, raw: Mapping[str, float] | Sequence[float], where: str = "features") -> dict[str, float]:
        """Map a vector to names, or check an object's names; returns a fresh dict."""
        if len(raw) > self.max_features:
            raise InvalidEvent(
                Reason.OVERSIZED, f"{where} has {len(raw)} values; at most {self.max_features} are accepted"
            )
        names = self.feature_names
        if isinstance(raw, list):
            if names is None:
                raise InvalidEvent(
                    Reason.WRONG_VECTOR_LENGTH,
                    f"{where} is a vector but model {self.model!r} has no fixed feature order; send an object",
                )
            if len(raw) != len(names):
                raise InvalidEvent(
                    Reason.WRONG_VECTOR_LENGTH,
                    f"{where} has {len(raw)} values; model {self.model!r} expects {len(names)} ({', '.join(names)})",
                )
            if _all_finite(raw):  # the common case: one C-level pass, no per-value messages
                return dict(zip(names, map(float, raw), strict=True))
            return {n: _finite(v, f"{where}[{i}]") for i, (n, v) in enumerate(zip(names, raw, strict=True))}
        if _all_finite(raw.values()):
            out = dict(zip(raw, map(float, raw.values()), strict=True))
        else:
            out = {n: _finite(v, f"{where}.{n}") for n, v in raw.items()}
        if names is not None:
            known = self._name_set()
            if out.keys() == known:  # exactly the model's features (set equality, in C)
                return out
            unknown = [n for n in out if n not in known]
            if unknown:
                raise InvalidEvent(
                    Reason.UNKNOWN_FEATURE,
                    f"{where} has unknown feature(s) {unknown[:5]}; model {self.model!r} accepts {list(names)[:20]}",
                )
            if len(out) != len(names) and not self.allow_missing_features:
                missing = [n for n in names if n not in out]
                raise InvalidEvent(Reason.MISSING_FEATURE, f"{where} lacks feature(s) {missing[:20]}")
        return out

    def _class_keys(self) -> frozenset[tuple[type, Label]]:
        cached = self.__dict__.get("_classes")
        if cached is None:
            cached = frozenset((type(c), c) for c in self.classes or ())
            object.__setattr__(self, "_classes", cached)
        return cached

    def _name_set(self) -> frozenset[str]:
        cached = self.__dict__.get("_names")
        if cached is None:
            cached = frozenset(self.feature_names or ())
            object.__setattr__(self, "_names", cached)
        return cached

    def check_label(self, label: Label) -> Label:
        # (type, value): True is not the class 1, nor "1" the class 1
        if self.classes is not None and (type(label), label) not in self._class_keys():
            raise InvalidEvent(
                Reason.UNKNOWN_CLASS,
                f"label {label!r} ({type(label).__name__}) is not a class of model {self.model!r}; "
                f"classes are {list(self.classes)}",
            )
        return label

    def check_model(self, model: str) -> None:
        if model != self.model:
            raise InvalidEvent(
                Reason.UNKNOWN_MODEL, f"event is for model {model!r} but this topic belongs to {self.model!r}"
            )

    def check_size(self, raw: bytes) -> None:
        if len(raw) > self.max_event_bytes:
            raise InvalidEvent(
                Reason.OVERSIZED, f"record is {len(raw)} bytes; at most {self.max_event_bytes} are accepted"
            )


def _all_finite(values: Any) -> bool:
    """True when every value is a finite number: their sum is finite (NaN and infinity
    propagate). False also when the sum overflows or a value is not a number; the caller
    then checks value by value, which names the culprit or accepts the large finite ones."""
    try:
        return math.isfinite(sum(values))
    except (TypeError, OverflowError):
        return False


def _finite(value: float, where: str) -> float:
    if value != value:
        raise InvalidEvent(Reason.NAN, f"{where} is NaN; features must be finite numbers")
    if math.isinf(value):
        raise InvalidEvent(Reason.INFINITY, f"{where} is {value}; features must be finite numbers")
    return float(value)


def decode_feedback(raw: bytes | None, schema: ModelSchema) -> Feedback:
    """Validate one feedback record, or raise `InvalidEvent` with its reason."""
    wire = _parse(FeedbackWire, raw, schema)
    schema.check_model(wire.model)
    if wire.features is None and wire.prediction_id is None:
        raise InvalidEvent(
            Reason.MISSING_FIELD, "feedback needs 'features' (self-contained) or 'prediction_id' (label only)"
        )
    if wire.timestamp is not None:
        _finite(wire.timestamp, "timestamp")
    features = None if wire.features is None else schema.check_features(wire.features)
    label = schema.check_label(wire.label)
    return Feedback(wire.event_id, wire.model, label, features, wire.prediction_id, wire.timestamp)


def decode_prediction(raw: bytes | None, schema: ModelSchema) -> Prediction:
    """Validate one prediction record, or raise `InvalidEvent` with its reason."""
    wire = _parse(PredictionWire, raw, schema)
    schema.check_model(wire.model)
    _finite(wire.timestamp, "timestamp")
    features = schema.check_features(wire.features)
    return Prediction(wire.prediction_id, wire.model, wire.version, features, wire.output.label, wire.timestamp)


def decode_event(raw: bytes | None, schema: ModelSchema, prediction: bool) -> Feedback | Prediction | InvalidEvent:
    """A consumed record as a prediction record or as feedback — or the `InvalidEvent` that
    says why it is neither, *returned*: the trainer and its fetcher dead-letter it and go on."""
    try:
        return decode_prediction(raw, schema) if prediction else decode_feedback(raw, schema)
    except InvalidEvent as e:
        return e


def _parse(cls: type[BaseModel], raw: bytes | None, schema: ModelSchema) -> Any:
    if raw is None:
        raise InvalidEvent(Reason.NOT_JSON, "record has no value (a tombstone); expected a JSON object")
    schema.check_size(raw)
    try:
        return cls.model_validate_json(raw)
    except ValidationError as e:
        raise _explain(e, "feedback" if cls is FeedbackWire else "prediction record") from None


_TYPE_ERRORS = ("_type", "_parsing", "bool_", "int_from_float")


def _explain(error: ValidationError, what: str) -> InvalidEvent:
    """Turn pydantic's errors into the single most specific reason."""
    errors = error.errors(include_url=False)
    # A union (features: object | vector) reports one error per branch; drop the branch that
    # failed only because the value had the other shape.
    shaped = [e for e in errors if not (len(e["loc"]) == 2 and e["type"] in ("list_type", "dict_type"))]
    errors = shaped or errors
    first = errors[0]
    kind = first["type"]
    loc = ".".join(str(p) for p in first["loc"] if not _is_branch(p))
    value = first.get("input")
    if kind == "json_invalid":
        return InvalidEvent(Reason.NOT_JSON, f"record is not valid JSON ({first['msg']})")
    if kind == "model_type" and not first["loc"]:
        return InvalidEvent(Reason.NOT_OBJECT, f"record is JSON {type(value).__name__}; expected an object")
    if kind == "missing":
        return InvalidEvent(Reason.MISSING_FIELD, f"{what} lacks required field {loc!r}")
    if kind == "extra_forbidden":
        return InvalidEvent(Reason.UNKNOWN_FIELD, f"{what} has unknown field {loc!r}")
    if kind == "string_too_long" or kind == "too_long":
        return InvalidEvent(Reason.OVERSIZED, f"{loc} is too long: {first['msg']}")
    if kind == "string_too_short":
        return InvalidEvent(Reason.INVALID_VALUE, f"{loc} must not be empty")
    if kind == "finite_number" or (isinstance(value, float) and not math.isfinite(value)):
        if value != value:
            return InvalidEvent(Reason.NAN, f"{loc} is NaN; numbers must be finite")
        return InvalidEvent(Reason.INFINITY, f"{loc} is {value}; numbers must be finite")
    if loc == "label" and kind.endswith("_type"):
        return InvalidEvent(
            Reason.WRONG_TYPE, f"label is {type(value).__name__} {_short(value)}; labels are strings, integers or booleans"
        )
    if any(t in kind for t in _TYPE_ERRORS) or kind.endswith("_type"):
        return InvalidEvent(
            Reason.WRONG_TYPE, f"{loc} is {type(value).__name__} {_short(value)}: {first['msg'].lower()}"
        )
    return InvalidEvent(Reason.INVALID_VALUE, f"{loc}: {first['msg']} (got {_short(value)})")


def _is_branch(part: object) -> bool:
    """Union branch names pydantic puts in error locations (``dict[str,float]``, ``str``...)."""
    return isinstance(part, str) and (
        "[" in part or part in ("str", "int", "bool", "float", "function-after")
    )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def encode(event: FeedbackWire | PredictionWire) -> bytes:
    """JSON bytes of an event, as producers send it."""
    return event.model_dump_json(exclude_none=True).encode("utf-8")
