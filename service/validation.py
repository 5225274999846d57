"""Request validation shared by every transport: instances and OIP tensors (feedback: `service.feedback_validation`).

Rows are checked by the champion's `training.rows.RowValidator` (built once per champion from
its version's spec), the same validator the trainer, bootstrap and replay use, so a row means
the same thing at every door. Each refusal is a `ServingError` naming the instance, the
feature and the value, and what is accepted, so a client can fix its request from the
message alone. Valid rows come out as a `service.batch.Batch`: raw rows in spec order
(``None`` for missing), plus the float64 array when the spec is numeric-only.

>>> from training.rows import RowValidator
>>> from training.spec import numeric_spec
>>> v = RowValidator(numeric_spec(["a", "b"]))
>>> batch_from_instances([{"features": {"b": 2, "a": 1.5}}, [3, 4]], v, 10).numeric.tolist()
[[1.5, 2.0], [3.0, 4.0]]
>>> batch_from_instances([[1, float("nan")]], v, 10)
Traceback (most recent call last):
...
service.errors.ServingError: instance 0 feature 'b' is NaN; features must be finite numbers

The Open Inference Protocol carries a table as one input per feature (`batch_from_columns`);
an all-numeric model also takes today's single ``[batch, n_features]`` tensor
(`batch_from_tensor`). A missing value in an input is either NaN (FP32/FP64 inputs of an
optional numeric feature), null in JSON ``data``, or listed in the request parameter
``missing``: a JSON object ``{feature: [row indices]}`` (any datatype; the values sent at
those rows are ignored).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from service.batch import Batch, batch_of
from service.errors import Kind, ServingError
from service.numeric_rows import numeric_batch
from training.rows import RowError, RowProblem, RowValidator
from training.spec import FeatureKind, FeatureSpec

#: the name of the single input tensor of an all-numeric model
TENSOR_INPUT = "features"
#: OIP datatypes accepted for the single input tensor of an all-numeric model.
INPUT_DATATYPES = {"FP32": np.float32, "FP64": np.float64}
#: numpy types of every datatype a per-feature input may have (BYTES is decoded apart).
COLUMN_DTYPES = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "INT32": np.int32, "BOOL": np.bool_}
#: what each feature kind accepts as a per-feature OIP input (the first is what metadata lists).
KIND_DATATYPES = {
    FeatureKind.NUMERIC: ("FP64", "FP32", "INT64", "INT32"),
    FeatureKind.CATEGORICAL: ("BYTES",),
    FeatureKind.BOOLEAN: ("BOOL",),
    FeatureKind.TEXT: ("BYTES",),
    FeatureKind.TENSOR: ("FP32", "FP64"),
}
#: the request parameter that marks missing cells of OIP inputs
MISSING_PARAMETER = "missing"
MISSING_CONVENTION = (
    "a missing value (optional features only) is NaN in an FP32/FP64 input, or listed in the "
    "request parameter 'missing': a JSON object {feature: [row indices]} (any datatype; the "
    "values sent at those rows are ignored), or null in JSON data; an input of an optional feature "
    "may also be left out"
)

_KINDS = {RowProblem.NOT_A_ROW: Kind.MALFORMED}


def refused(error: RowError, where: str) -> ServingError:
    """A validator's `RowError` as the serving error of one instance (``where`` prefixes it)."""
    return ServingError(_KINDS.get(error.problem, Kind.INVALID), f"{where}{error.detail}")


_NUMBER_TYPES = frozenset((int, float))  # not bool


def _is_number(v: object) -> bool:
    return type(v) is float or type(v) is int


def _check_count(n: int, max_instances: int, what: str) -> None:
    if n == 0:
        raise ServingError(Kind.INVALID, f"{what} is empty; send 1 to {max_instances} rows")
    if n > max_instances:
        raise ServingError(Kind.TOO_LARGE, f"{what} has {n} rows; at most {max_instances} are accepted")


def batch_from_instances(instances: object, validator: RowValidator, max_instances: int) -> Batch:
    """Validate ``/predict`` ``instances``: ``{"features": {name: value}}`` objects (an
    optional feature may be absent or null) or lists of values in feature order."""
    n = len(validator.names)
    accepted = f"{{'features': {{name: value}}}} objects or lists of {n} values in feature order"
    if not isinstance(instances, list):
        raise ServingError(Kind.MALFORMED, f"'instances' must be a list of {accepted}; got {_kind(instances)}")
    if not instances:
        raise ServingError(Kind.INVALID, f"'instances' is empty; send 1 to {max_instances} instances")
    if len(instances) > max_instances:
        raise ServingError(
            Kind.TOO_LARGE, f"{len(instances)} instances in one request; at most {max_instances} are accepted"
        )
    fast = numeric_batch(instances, validator)
    if fast is not None:  # uniform and valid, checked per request (every refusal is below)
        return fast
    row = validator.row
    rows = []
    for i, inst in enumerate(instances):
        if type(inst) is dict:
            values = inst.get("features")
            if len(inst) != 1 or type(values) is not dict:
                raise ServingError(
                    Kind.MALFORMED, f"instance {i} must be {{'features': {{name: value}}}} or a list of {n} values; "
                    f"got an object with keys {sorted(map(str, inst))[:10]}"
                )
        elif type(inst) is list:
            values = inst
        else:
            raise ServingError(Kind.MALFORMED, f"instance {i} is {_kind(inst)}; instances are {accepted}")
        try:
            rows.append(row(values))
        except RowError as e:
            raise refused(e, f"instance {i} ") from None
    return batch_of(rows, validator)


# -- Open Inference Protocol inputs --------------------------------------------------------------


@dataclass
class TensorInput:
    """One decoded OIP input: ``data`` is a flat numpy array (binary or protobuf contents),
    a list (JSON ``data``, flat or nested), a list of bytes (raw BYTES), or None."""

    name: str
    datatype: object
    shape: object
    data: np.ndarray | list | None


def batch_from_tensor(
    datatype: object, shape: object, data: np.ndarray | list | None, validator: RowValidator, max_instances: int
) -> Batch:
    """Validate the single OIP input tensor of an all-numeric model (``FP32``/``FP64``,
    shape ``[batch, n_features]``, columns in feature order)."""
    features = validator.names
    n = len(features)
    if not validator.numeric_only:
        raise ServingError(
            Kind.INVALID, "this model takes one input per feature, not a single tensor: "
            f"{_input_list(validator.spec.features)}"
        )
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
    _check_count(shape[0], max_instances, "input batch")
    if data is None:
        raise ServingError(Kind.MALFORMED, "input tensor has no data")
    if not isinstance(data, np.ndarray):
        flat = _flatten(data)
        if not _NUMBER_TYPES.issuperset(map(type, flat)):  # one C-level pass; the culprit named below
            bad = next(v for v in flat if not _is_number(v))
            raise ServingError(Kind.INVALID, f"input data holds {_kind(bad)}; {datatype} needs numbers")
        data = np.asarray(flat, dtype=INPUT_DATATYPES[datatype])
    if data.size != shape[0] * n:
        raise ServingError(
            Kind.INVALID, f"input data has {data.size} values but shape {list(shape)} needs {shape[0] * n}"
        )
    rows = data.reshape(shape[0], n).astype(np.float64)
    _check_finite(rows, features)
    return Batch([dict(zip(features, r, strict=True)) for r in rows.tolist()], rows)


def batch_from_inputs(
    inputs: Sequence[TensorInput], validator: RowValidator, max_instances: int, missing: object = None
) -> Batch:
    """Validate the inputs of an OIP inference request: the single ``features`` tensor of an
    all-numeric model, or one input per feature; ``missing`` is the request parameter."""
    names = validator.names
    if not inputs:
        form = f"{TENSOR_INPUT!r} [batch, {len(names)}] or " if validator.numeric_only else ""
        raise ServingError(Kind.INVALID, f"the request has no inputs; send {form}one input per feature: "
                           f"{_input_list(validator.spec.features)}")
    if len(inputs) == 1 and inputs[0].name == TENSOR_INPUT and TENSOR_INPUT not in names:
        if parse_missing(missing):
            raise ServingError(Kind.INVALID, "parameter 'missing' marks cells of per-feature inputs; "
                               f"the {TENSOR_INPUT!r} tensor of an all-numeric model has no missing values")
        t = inputs[0]
        return batch_from_tensor(t.datatype, t.shape, t.data, validator, max_instances)
    return batch_from_columns(inputs, validator, max_instances, parse_missing(missing))


def parse_missing(value: object) -> dict[str, list[int]]:
    """The ``missing`` request parameter: a JSON object ``{feature: [row indices]}``, sent
    as a string (what an OIP parameter holds) or, over JSON, as the object itself."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise ServingError(Kind.INVALID, f"parameter 'missing' is not JSON: {_short(value)}; "
                               "send an object {feature: [row indices]}") from None
    if not isinstance(value, dict) or not all(
        isinstance(v, list) and all(type(i) is int for i in v) for v in value.values()
    ):
        raise ServingError(Kind.INVALID, f"parameter 'missing' must be an object {{feature: [row indices]}}; "
                           f"got {_short(value)}")
    return value


def batch_from_columns(
    inputs: Sequence[TensorInput], validator: RowValidator, max_instances: int,
    missing: Mapping[str, list[int]] | None = None,
) -> Batch:
    """Validate OIP inputs of one feature each (shape ``[batch]`` or ``[batch, 1]``, datatype
    by kind: see `KIND_DATATYPES`) into rows; see the module docstring for missing values."""
    spec = validator.spec
    by_name: dict[str, TensorInput] = {}
    for t in inputs:
        if t.name in by_name:
            raise ServingError(Kind.INVALID, f"input {t.name!r} is sent twice; send each feature once")
        by_name[t.name] = t
    unknown = [name for name in by_name if name not in validator.names]
    if unknown:
        raise ServingError(Kind.INVALID, f"unknown input(s) {unknown[:10]}; this model's inputs are "
                           f"{_input_list(spec.features)}")
    absent = [f.name for f in spec.features if not f.optional and f.name not in by_name]
    if absent:
        raise ServingError(Kind.INVALID, f"no input for required feature(s) {absent[:10]}; this model's inputs are "
                           f"{_input_list(spec.features)}")
    columns: dict[str, list] = {}
    size: int | None = None
    for f in spec.features:
        t = by_name.get(f.name)
        if t is None:
            continue
        values = _column(t, f, max_instances)
        if size is None:
            size = len(values)
        elif len(values) != size:
            raise ServingError(Kind.INVALID, f"input {f.name!r} has {len(values)} rows but input "
                               f"{next(iter(columns))!r} has {size}; every input has one value per row")
        columns[f.name] = values
    assert size is not None  # at least one input: a spec has a required feature, or we refused above
    for name, indices in (missing or {}).items():
        if name not in validator.names:
            raise ServingError(Kind.INVALID, f"parameter 'missing' names unknown feature {name!r}; features are "
                               f"{list(validator.names)[:50]}")
        column = columns.get(name)
        for i in indices:
            if not 0 <= i < size:
                raise ServingError(Kind.INVALID, f"parameter 'missing' marks row {i} of {name!r}; rows are 0..{size - 1}")
            if column is not None:
                column[i] = None
    names = list(columns)
    row = validator.row
    rows = []
    for i, values in enumerate(zip(*columns.values(), strict=True)):
        try:
            rows.append(row(dict(zip(names, values, strict=True))))
        except RowError as e:
            raise refused(e, f"row {i} ") from None
    return batch_of(rows, validator)


def _column(t: TensorInput, f: FeatureSpec, max_instances: int) -> list:
    """One input's values as Python values (None where NaN marks a missing optional number)."""
    accepted = KIND_DATATYPES[f.kind]
    if t.datatype not in accepted:
        raise ServingError(Kind.INVALID, f"input {t.name!r} has datatype {_short(t.datatype)}; {f.kind.value} feature "
                           f"{f.name!r} takes {' or '.join(accepted)}")
    if f.kind is FeatureKind.TENSOR:
        return _tensor_column(t, f, max_instances)
    shape = t.shape
    if (not isinstance(shape, list | tuple) or not 1 <= len(shape) <= 2 or not all(type(s) is int for s in shape)
            or (len(shape) == 2 and shape[1] != 1) or shape[0] < 0):
        raise ServingError(Kind.INVALID, f"input {t.name!r} has shape {_short(shape)}; send [batch] or [batch, 1] "
                           "(one value per row)")
    n = shape[0]
    _check_count(n, max_instances, f"input {t.name!r}")
    data = t.data
    if data is None:
        raise ServingError(Kind.MALFORMED, f"input {t.name!r} has no data")
    if isinstance(data, np.ndarray):
        values = data.tolist()
    else:
        values = list(_flatten(data))
        if t.datatype == "BYTES":
            values = [v.encode() if isinstance(v, str) else v for v in values]  # JSON strings, or bytes
        ok = _JSON_TYPES[t.datatype]
        bad = next((v for v in values if type(v) not in ok and v is not None), _NONE)  # null: missing
        if bad is not _NONE:
            raise ServingError(Kind.INVALID, f"input {t.name!r} holds {_kind(bad)}; {t.datatype} data are "
                               f"{_JSON_WORDS[t.datatype]}")
    if len(values) != n:
        raise ServingError(Kind.INVALID, f"input {t.name!r} has {len(values)} values but shape {list(shape)} needs {n}")
    if t.datatype == "BYTES":
        try:
            values = [None if v is None else v.decode("utf-8") for v in values]
        except UnicodeDecodeError:
            raise ServingError(Kind.INVALID, f"input {t.name!r} holds bytes that are not UTF-8 text") from None
    elif f.optional and t.datatype in INPUT_DATATYPES:
        values = [None if v is None or v != v else v for v in values]  # NaN: missing
    return values


def _tensor_column(t: TensorInput, f: FeatureSpec, max_instances: int) -> list:
    """A tensor feature's input, shape ``[batch, *f.shape]``, as one flat list per row (the
    validator checks the values; a missing row is listed in the ``missing`` parameter)."""
    shape, want = t.shape, [-1, *f.shape]
    if (not isinstance(shape, list | tuple) or not all(type(s) is int for s in shape)
            or list(shape[1:]) != list(f.shape) or not shape or shape[0] < 0):
        raise ServingError(Kind.INVALID, f"input {t.name!r} has shape {_short(shape)}; tensor feature {f.name!r} "
                           f"takes [batch, {', '.join(map(str, f.shape))}] (shape {want} in the metadata)")
    n, size = shape[0], f.size
    _check_count(n, max_instances, f"input {t.name!r}")
    data = t.data
    if data is None:
        raise ServingError(Kind.MALFORMED, f"input {t.name!r} has no data")
    if not isinstance(data, np.ndarray):
        flat = _flatten(data)
        bad = next((v for v in flat if not _is_number(v)), _NONE)
        if bad is not _NONE:
            raise ServingError(Kind.INVALID, f"input {t.name!r} holds {_kind(bad)}; {t.datatype} data are numbers")
        data = np.asarray(flat, dtype=np.float64)
    if data.size != n * size:
        raise ServingError(Kind.INVALID, f"input {t.name!r} has {data.size} values but shape {list(shape)} needs "
                           f"{n * size}")
    return data.astype(np.float64, copy=False).reshape(n, size).tolist()


_NONE = object()
_JSON_TYPES = {"FP64": (int, float), "FP32": (int, float), "INT64": (int,), "INT32": (int,), "BOOL": (bool,),
               "BYTES": (bytes,)}
_JSON_WORDS = {"FP64": "numbers", "FP32": "numbers", "INT64": "integers", "INT32": "integers",
               "BOOL": "true/false", "BYTES": "strings"}


def _shape_words(f: FeatureSpec) -> str:
    return f" [batch, {', '.join(map(str, f.shape))}]" if f.shape else ""


def _input_list(features: Sequence[FeatureSpec]) -> str:
    parts = [f"{f.name} ({KIND_DATATYPES[f.kind][0]}{_shape_words(f)}{', optional' if f.optional else ''})"
             for f in features[:50]]
    return ", ".join(parts) + (f", ... ({len(features)} in all)" if len(features) > 50 else "")


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
