"""Request validation shared by every transport: instances, OIP tensors, feedback records.

Each check raises a `ServingError` naming the instance, the feature and the value, and what is
accepted, so a client can fix its request from the message alone. Rows come out as float64
``[n, n_features]`` arrays in the champion's feature order (what the batcher and the drift
monitor consume).

>>> rows_from_instances([{"features": {"b": 2, "a": 1.5}}, [3, 4]], ["a", "b"], 10).tolist()
[[1.5, 2.0], [3.0, 4.0]]
>>> rows_from_instances([[1, float("nan")]], ["a", "b"], 10)
Traceback (most recent call last):
...
service.errors.ServingError: instance 0 feature 'b' is nan; features must be finite numbers
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import ValidationError

from service.errors import Kind, ServingError
from streaming.schemas import FeedbackWire

#: OIP datatypes accepted for the input tensor, and their numpy types.
INPUT_DATATYPES = {"FP32": np.float32, "FP64": np.float64}


def _is_number(v: object) -> bool:
    return type(v) is float or type(v) is int


def rows_from_instances(instances: object, features: Sequence[str], max_instances: int) -> np.ndarray:
    """Validate ``instances`` (``{"features": {...}}`` objects or number lists) into rows."""
    n = len(features)
    accepted = f"{{'features': {{name: number}}}} objects or lists of {n} numbers"
    if not isinstance(instances, list):
        raise ServingError(Kind.MALFORMED, f"'instances' must be a list of {accepted}; got {_kind(instances)}")
    if not instances:
        raise ServingError(Kind.INVALID, f"'instances' is empty; send 1 to {max_instances} instances")
    if len(instances) > max_instances:
        raise ServingError(
            Kind.TOO_LARGE, f"{len(instances)} instances in one request; at most {max_instances} are accepted"
        )
    rows = np.empty((len(instances), n), dtype=np.float64)
    index = None
    for i, inst in enumerate(instances):
        if type(inst) is dict:
            values = inst.get("features")
            if len(inst) != 1 or type(values) is not dict:
                raise ServingError(
                    Kind.MALFORMED, f"instance {i} must be {{'features': {{name: number}}}} or a list of {n} numbers; "
                    f"got an object with keys {sorted(inst)[:10]}"
                )
            try:
                vector = [values[name] for name in features]
            except KeyError:
                vector = None
            if vector is None or len(values) != n:
                index = index or set(features)
                missing = [f for f in features if f not in values]
                unknown = [f for f in values if f not in index]
                raise ServingError(
                    Kind.INVALID,
                    f"instance {i} has wrong feature names: missing {missing[:10]}, unknown {unknown[:10]}; "
                    f"the model expects {list(features)[:50]}",
                )
        elif type(inst) is list:
            if len(inst) != n:
                raise ServingError(
                    Kind.INVALID,
                    f"instance {i} has {len(inst)} values; the model expects {n} ({', '.join(features[:50])})",
                )
            vector = inst
        else:
            raise ServingError(Kind.MALFORMED, f"instance {i} is {_kind(inst)}; instances are {accepted}")
        for j, v in enumerate(vector):
            if not _is_number(v):
                raise ServingError(
                    Kind.INVALID,
                    f"instance {i} feature {features[j]!r} is {type(v).__name__} {_short(v)}; features must be finite numbers",
                )
        try:
            rows[i] = vector
        except OverflowError:
            rows[i] = [float(v) if abs(v) < 1e308 else math.inf for v in vector]
    _check_finite(rows, features)
    return rows


def rows_from_tensor(
    datatype: object, shape: object, data: np.ndarray | list | None, features: Sequence[str], max_instances: int
) -> np.ndarray:
    """Validate one OIP input tensor (``FP32``/``FP64``, shape ``[batch, n_features]``) into rows."""
    n = len(features)
    if datatype not in INPUT_DATATYPES:
        raise ServingError(
            Kind.INVALID, f"input datatype {datatype!r} is not accepted; send {' or '.join(INPUT_DATATYPES)}"
        )
    if (
        not isinstance(shape, list | tuple)
        or len(shape) != 2
        or not all(type(s) is int for s in shape)
        or shape[1] != n
        or shape[0] < 0
    ):
        raise ServingError(
            Kind.INVALID, f"input shape {list(shape) if isinstance(shape, list | tuple) else shape!r} is not accepted; "
            f"send [batch, {n}] (features {', '.join(features[:50])})"
        )
    if shape[0] == 0:
        raise ServingError(Kind.INVALID, f"input batch is empty; send 1 to {max_instances} rows")
    if shape[0] > max_instances:
        raise ServingError(Kind.TOO_LARGE, f"input batch has {shape[0]} rows; at most {max_instances} are accepted")
    if data is None:
        raise ServingError(Kind.MALFORMED, "input tensor has no data")
    if not isinstance(data, np.ndarray):
        flat = _flatten(data)
        if not all(_is_number(v) for v in flat):
            bad = next(v for v in flat if not _is_number(v))
            raise ServingError(Kind.INVALID, f"input data holds {type(bad).__name__} {_short(bad)}; {datatype} needs numbers")
        data = np.asarray(flat, dtype=INPUT_DATATYPES[datatype])
    if data.size != shape[0] * n:
        raise ServingError(
            Kind.INVALID, f"input data has {data.size} values but shape {list(shape)} needs {shape[0] * n}"
        )
    rows = data.reshape(shape[0], n).astype(np.float64)
    _check_finite(rows, features)
    return rows


def check_feedback(
    body: object, max_items: int, served: set[str], clock: Callable[[], float]
) -> list[dict]:
    """Validate feedback (one object or a list) into ``FeedbackWire``-shaped dicts.

    ``event_id`` is assigned when absent (the trainer deduplicates on it); ``timestamp``
    defaults to now, so label delay can be measured downstream.
    """
    items = body if isinstance(body, list) else [body]
    if not items:
        raise ServingError(Kind.INVALID, f"feedback list is empty; send 1 to {max_items} records")
    if len(items) > max_items:
        raise ServingError(Kind.TOO_LARGE, f"{len(items)} feedback records; at most {max_items} per request")
    out = []
    for i, item in enumerate(items):
        where = "feedback" if not isinstance(body, list) else f"feedback record {i}"
        if not isinstance(item, dict):
            raise ServingError(Kind.MALFORMED, f"{where} is {_kind(item)}; expected {{model, prediction_id, label}}")
        record = {"event_id": uuid.uuid4().hex, "timestamp": clock(), **item}
        if record.get("features") is None and record.get("prediction_id") is None:
            raise ServingError(Kind.INVALID, f"{where} needs 'prediction_id' (or self-contained 'features')")
        try:
            wire = FeedbackWire.model_validate(record)
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ServingError(Kind.INVALID, f"{where}: {loc or 'record'}: {first['msg']} (got {_short(first.get('input'))})") from None
        if wire.model not in served:
            raise ServingError(Kind.NOT_FOUND, f"{where} is for unknown model {wire.model!r}; served models: {sorted(served)}")
        if wire.features is not None:
            values = wire.features.values() if isinstance(wire.features, dict) else wire.features
            if not all(math.isfinite(v) for v in values):
                raise ServingError(Kind.INVALID, f"{where}: features must be finite numbers")
        if wire.timestamp is not None and not math.isfinite(wire.timestamp):
            raise ServingError(Kind.INVALID, f"{where}: timestamp must be a finite number")
        out.append(wire.model_dump(exclude_none=True))
    return out


def _check_finite(rows: np.ndarray, features: Sequence[str]) -> None:
    bad = ~np.isfinite(rows)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise ServingError(
            Kind.INVALID, f"instance {i} feature {features[j]!r} is {rows[i, j]}; features must be finite numbers"
        )


def _flatten(data: object) -> list:
    """OIP JSON data may be flat (row-major) or nested; return it flat."""
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(v, list) for v in data):
        return data
    out: list = []
    for v in data:
        out.extend(_flatten(v))
    return out


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null", bool: "a boolean"}
    return f"{names.get(type(value), type(value).__name__)} {_short(value)}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
