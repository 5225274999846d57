"""Event schemas on the wire: feedback, label-only feedback, prediction records.

Prediction records come in two shapes, both read by `decode_prediction` (and the trainer):

- **one record per request, or per several** (`PredictionBatchWire`, what the service
  writes): the request's ``prediction_ids``, raw ``features`` rows and outputs as parallel
  lists — ``labels``, ``probabilities`` (rows in ``classes`` order) for a classifier,
  ``values`` for a regressor — plus ``model``, ``version`` and ``timestamp`` once. Under load
  the service merges the records of requests queued together (same model, version and
  outputs; ``timestamp`` the first request's: `service.prediction_records`). Its cost in the
  serving process is at most one record and one encode per request, not per instance;
- **one record per prediction** (`PredictionWire`, written before issue 11 and still by
  `streaming.producer.EventProducer.send_prediction`): kept readable, so a trainer upgraded
  while old records wait in the topic joins them too.

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

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_json

from training.rows import RowError, RowProblem, RowValidator
from training.spec import FeatureSpec, ModelSpec, TargetSpec, Task, Value

if TYPE_CHECKING:
    from training.system import LearningSystem

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
    WRONG_SHAPE = "wrong_shape"  # a tensor feature of another shape than the spec's
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
#: a raw value as a user has it: number, category string, boolean, null for missing
#: a raw value as JSON carries it; a list is a tensor feature's values (nested lists of its
#: shape, or flat), whose shape and numbers the spec's validator checks
RawValue = float | int | str | bool | list[Any] | None
RawFeatures = dict[str, RawValue] | list[RawValue]


class FeedbackWire(BaseModel):
    """A feedback event as sent: ``features`` (object or vector) or a ``prediction_id``."""

    model_config = _STRICT
    event_id: Id
    model: Id
    label: Label | float  # a class, or a number for a regression model
    features: RawFeatures | None = None
    prediction_id: Id | None = None
    timestamp: float | None = None


class PredictionOutput(BaseModel):
    """What the service answered: the label and class probabilities (keys as strings) of a
    classifier, or the ``value`` of a regressor."""

    model_config = _STRICT
    label: Label | None = None
    probabilities: dict[str, float] = Field(default_factory=dict)
    value: float | None = None


class PredictionWire(BaseModel):
    """A prediction record of the service's prediction log."""

    model_config = _STRICT
    prediction_id: Id
    model: Id
    version: int | None = None  # absent: not served by a Perennial registry version (perennial produce)
    features: RawFeatures
    output: PredictionOutput = Field(default_factory=PredictionOutput)
    timestamp: float


class PredictionBatchWire(BaseModel):
    """The prediction records of one request (or of several merged, the first one's
    ``timestamp``): row ``i`` of every list belongs to ``prediction_ids[i]`` (all lists have
    the same length)."""

    model_config = _STRICT
    model: Id
    version: int | None = None
    timestamp: float
    prediction_ids: list[Id]
    features: list[RawFeatures]
    labels: list[Label | None] | None = None  # a classifier's served class per prediction
    classes: list[str] | None = None  # the columns of ``probabilities`` (class names as strings)
    probabilities: list[list[float]] | None = None
    values: list[float] | None = None  # a regressor's served value per prediction


WireT = TypeVar("WireT", FeedbackWire, PredictionWire, PredictionBatchWire)


@dataclass(slots=True)  # read-only by convention; see `streaming.trainer.Record`
class Feedback:
    """A validated feedback event; `features` is None for label-only feedback (join needed)."""

    event_id: str
    model: str
    label: Label | float
    features: dict[str, Value] | None
    prediction_id: str | None
    timestamp: float | None


@dataclass(slots=True)  # read-only by convention; see `streaming.trainer.Record`
class Prediction:
    """A validated prediction record, features keyed by name; ``label`` is what was served
    (the class, or a regressor's value)."""

    prediction_id: str
    model: str
    version: int | None
    features: dict[str, Value]
    label: Label | float | None
    timestamp: float


@dataclass(slots=True)  # read-only by convention; see `streaming.trainer.Record`
class PredictionBatch:
    """A validated multi-prediction record (`PredictionBatchWire`): its predictions in order."""

    model: str
    version: int | None
    timestamp: float
    predictions: list[Prediction]


@dataclass(frozen=True)
class ModelSchema:
    """What a model accepts: its `ModelSpec` (features, task, classes) and record limits.

    Derived from the champion (`from_system`). Without a spec, ``feature_names`` and
    ``classes`` describe a numeric model (what registries from before the spec imply); with
    neither, any numeric features and any labels are accepted ("not fixed"). Feature and
    label checks are `training.rows.RowValidator`'s — the same validator the service,
    bootstrap and replay use — with its problems mapped to dead-letter reasons.
    """

    model: str
    feature_names: tuple[str, ...] | None = None
    classes: tuple[Label, ...] | None = None
    max_event_bytes: int = 65536
    max_features: int = 4096
    #: the size limit of a multi-prediction record (one request's predictions, or several's)
    max_batch_bytes: int = 4 * 1024 * 1024
    allow_missing_features: bool = False
    spec: ModelSpec | None = None

    def __post_init__(self) -> None:
        spec = self.spec
        if spec is None and self.feature_names is not None:
            spec = ModelSpec(Task.CLASSIFICATION, TargetSpec("label", self.classes),
                             tuple(FeatureSpec(n, optional=self.allow_missing_features) for n in self.feature_names))
        elif spec is not None and self.classes is None and spec.classes is not None and self.feature_names is None:
            object.__setattr__(self, "classes", spec.classes)
        if spec is not None:
            object.__setattr__(self, "spec", spec)
            object.__setattr__(self, "feature_names", spec.feature_names)

    @classmethod
    def from_system(cls, system: LearningSystem, *, accept_new_classes: bool = False,
                    **limits: int | bool) -> ModelSchema:
        spec: ModelSpec | None = system.spec
        if spec is None:
            return cls(system.model, **limits)
        if limits.get("allow_missing_features") and system.champion.spec is None:
            # a model from before the spec: the setting marks every feature optional
            spec = dataclasses.replace(spec, features=tuple(
                dataclasses.replace(f, optional=True) for f in spec.features))
        if accept_new_classes and spec.classes is not None:
            spec = dataclasses.replace(spec, target=dataclasses.replace(spec.target, classes=None))
        return cls(system.model, spec=spec, **limits)

    def __getstate__(self) -> dict[str, Any]:
        # crosses the pipe to the fetcher process: the validator (closures) is rebuilt there
        return {k: v for k, v in self.__dict__.items() if k != "_validator"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def validator(self) -> RowValidator | None:
        cached = self.__dict__.get("_validator")
        if cached is None and self.spec is not None:
            cached = RowValidator(self.spec, self.max_features)
            self.__dict__["_validator"] = cached
        return cached

    @property
    def task(self) -> Task:
        return self.spec.task if self.spec is not None else Task.CLASSIFICATION

    def check_features(self, raw: Mapping[str, object] | Sequence[object],
                       where: str = "features") -> dict[str, Value]:
        """A validated raw row (spec order, None for missing); returns a fresh dict."""
        if len(raw) > self.max_features:
            raise InvalidEvent(
                Reason.OVERSIZED, f"{where} has {len(raw)} values; at most {self.max_features} are accepted"
            )
        validator = self.validator
        if validator is None:  # not fixed: any names, finite numbers
            if isinstance(raw, list):
                raise InvalidEvent(
                    Reason.WRONG_VECTOR_LENGTH,
                    f"{where} is a vector but model {self.model!r} has no fixed feature order; send an object",
                )
            if _all_finite(raw.values()) and all(type(v) is not bool for v in raw.values()):
                return dict(zip(raw, map(float, raw.values()), strict=True))
            return {n: _finite(v, f"{where}.{n}") for n, v in raw.items()}
        try:
            return validator.row(raw)
        except RowError as e:
            raise _row_event(e, where, self.model) from None

    def check_label(self, label: object) -> Label | float:
        validator = self.validator
        if validator is None:
            if type(label) not in (str, int, bool):
                raise InvalidEvent(Reason.WRONG_TYPE, f"label is {type(label).__name__} {_short(label)}; "
                                   "labels are strings, integers or booleans")
            return label
        try:
            return validator.label(label)
        except RowError as e:
            raise _row_event(e, "", self.model) from None

    def check_model(self, model: str) -> None:
        if model != self.model:
            raise InvalidEvent(
                Reason.UNKNOWN_MODEL, f"event is for model {model!r} but this topic belongs to {self.model!r}"
            )

    def check_size(self, raw: bytes, limit: int | None = None) -> None:
        limit = self.max_event_bytes if limit is None else limit
        if len(raw) > limit:
            raise InvalidEvent(
                Reason.OVERSIZED, f"record is {len(raw)} bytes; at most {limit} are accepted"
            )


#: How the one validator's problems read as dead-letter reasons.
_ROW_REASONS = {
    RowProblem.NOT_A_ROW: Reason.WRONG_TYPE,
    RowProblem.UNKNOWN_FEATURE: Reason.UNKNOWN_FEATURE,
    RowProblem.MISSING_FEATURE: Reason.MISSING_FEATURE,
    RowProblem.WRONG_TYPE: Reason.WRONG_TYPE,
    RowProblem.NAN: Reason.NAN,
    RowProblem.INFINITY: Reason.INFINITY,
    RowProblem.OVERSIZED: Reason.OVERSIZED,
    RowProblem.WRONG_VECTOR_LENGTH: Reason.WRONG_VECTOR_LENGTH,
    RowProblem.WRONG_SHAPE: Reason.WRONG_SHAPE,
    RowProblem.UNKNOWN_CLASS: Reason.UNKNOWN_CLASS,
    RowProblem.WRONG_LABEL: Reason.WRONG_TYPE,
}


def _row_event(e: RowError, where: str, model: str) -> InvalidEvent:
    detail = e.detail if e.problem is not RowProblem.UNKNOWN_CLASS else e.detail.replace(
        "this model", f"model {model!r}")
    if where and e.problem not in (RowProblem.UNKNOWN_CLASS, RowProblem.WRONG_LABEL):
        lead = f"feature {e.feature!r} "
        if e.feature is not None and detail.startswith(lead):  # "features.age is str 'x'; ..."
            detail = f"{where}.{e.feature} {detail[len(lead):]}"
        else:
            detail = f"{where} {detail}"
    return InvalidEvent(_ROW_REASONS[e.problem], detail)


def _all_finite(values: Iterable[object]) -> bool:
    """True when every value is a finite number: their sum is finite (NaN and infinity
    propagate). False also when the sum overflows or a value is not a number; the caller
    then checks value by value, which names the culprit or accepts the large finite ones."""
    try:
        return math.isfinite(sum(values))
    except (TypeError, OverflowError):
        return False


def _finite(value: object, where: str) -> float:
    if type(value) not in (int, float):
        raise InvalidEvent(Reason.WRONG_TYPE, f"{where} is {type(value).__name__} {_short(value)}; "
                           "features must be finite numbers")
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


def decode_prediction(raw: bytes | None, schema: ModelSchema) -> Prediction | PredictionBatch:
    """Validate a prediction record of either shape (see the module docstring), or raise
    `InvalidEvent` with its reason."""
    if raw is not None and _BATCH_MARK in raw:
        try:
            return decode_prediction_batch(raw, schema)
        except InvalidEvent as e:
            # an old record with a feature named "prediction_ids" is an old record
            if e.reason not in (Reason.MISSING_FIELD, Reason.UNKNOWN_FIELD):
                raise
            try:
                return decode_single_prediction(raw, schema)
            except InvalidEvent:
                raise e from None
    return decode_single_prediction(raw, schema)


#: only a multi-prediction record has this key (as a key: a string value would be escaped)
_BATCH_MARK = b'"prediction_ids"'


def decode_single_prediction(raw: bytes | None, schema: ModelSchema) -> Prediction:
    """Validate one per-prediction record (`PredictionWire`), or raise `InvalidEvent`."""
    wire = _parse(PredictionWire, raw, schema)
    schema.check_model(wire.model)
    _finite(wire.timestamp, "timestamp")
    features = schema.check_features(wire.features)
    out = wire.output
    served = out.label if out.label is not None else out.value
    return Prediction(wire.prediction_id, wire.model, wire.version, features, served, wire.timestamp)


def decode_prediction_batch(raw: bytes, schema: ModelSchema) -> PredictionBatch:
    """Validate one multi-prediction record (`PredictionBatchWire`), or raise `InvalidEvent`:
    the record is one unit (one dead letter naming the first bad prediction)."""
    wire = _parse(PredictionBatchWire, raw, schema, schema.max_batch_bytes)
    schema.check_model(wire.model)
    _finite(wire.timestamp, "timestamp")
    ids = wire.prediction_ids
    n = len(ids)
    served = wire.labels if wire.labels is not None else wire.values
    for name, column in (("features", wire.features), ("labels", wire.labels), ("values", wire.values),
                         ("probabilities", wire.probabilities)):
        if column is not None and len(column) != n:
            raise InvalidEvent(Reason.INVALID_VALUE, f"{name} has {len(column)} entries for {n} prediction_ids; "
                               "every list of a prediction record has one entry per prediction")
    if served is None:
        served = [None] * n
    check = schema.check_features
    model, version, ts = wire.model, wire.version, wire.timestamp
    predictions = [
        Prediction(pid, model, version, check(row, f"predictions[{i}].features"), label, ts)
        for i, (pid, row, label) in enumerate(zip(ids, wire.features, served, strict=True))
    ]
    return PredictionBatch(model, version, ts, predictions)


def prediction_records(raw: bytes) -> list[dict[str, Any]]:
    """A prediction record of either shape as per-prediction dicts in `PredictionWire`'s
    shape (for tools and tests that look for one prediction; no validation).

    >>> prediction_records(b'{"model": "m", "version": 1, "timestamp": 0, "prediction_ids": ["a-0"], '
    ...                    b'"features": [[1]], "values": [2.5]}')
    [{'prediction_id': 'a-0', 'model': 'm', 'version': 1, 'features': [1], 'output': {'value': 2.5}, 'timestamp': 0}]
    """
    import json

    record = json.loads(raw)
    if "prediction_ids" not in record or "prediction_id" in record:
        return [record]
    out = []
    for i, pid in enumerate(record["prediction_ids"]):
        output: dict[str, Any] = {}
        if record.get("labels") is not None:
            output["label"] = record["labels"][i]
        if record.get("probabilities") is not None:
            output["probabilities"] = dict(zip(record.get("classes") or [], record["probabilities"][i], strict=True))
        if record.get("values") is not None:
            output["value"] = record["values"][i]
        out.append({"prediction_id": pid, "model": record["model"], "version": record["version"],
                    "features": record["features"][i], "output": output, "timestamp": record["timestamp"]})
    return out


def decode_event(raw: bytes | None, schema: ModelSchema,
                 prediction: bool) -> Feedback | Prediction | PredictionBatch | InvalidEvent:
    """A consumed record as a prediction record or as feedback — or the `InvalidEvent` that
    says why it is neither, *returned*: the trainer and its fetcher dead-letter it and go on."""
    try:
        return decode_prediction(raw, schema) if prediction else decode_feedback(raw, schema)
    except InvalidEvent as e:
        return e


def _parse(cls: type[WireT], raw: bytes | None, schema: ModelSchema, limit: int | None = None) -> WireT:
    if raw is None:
        raise InvalidEvent(Reason.NOT_JSON, "record has no value (a tombstone); expected a JSON object")
    schema.check_size(raw, limit)
    try:
        return cls.model_validate_json(raw)
    except ValidationError as e:
        raise _explain(e, "feedback" if cls is FeedbackWire else "prediction record") from None


def encode_prediction_batch(record: Mapping[str, Any]) -> bytes:
    """JSON bytes of a multi-prediction record (a `PredictionBatchWire`-shaped dict), in
    pydantic-core's Rust encoder: one call per request, about 10x ``json.dumps``."""
    return to_json(record)


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
