"""Open Inference Protocol v2 pieces both OIP transports share: inputs, outputs, metadata, raw bytes.

The protocol is transport-neutral (the same tensors over JSON and protobuf), so what a model
declares and returns is built once here and only *encoded* by `oip/http.py` and
`oip/grpc_server.py`.

Perennial's OIP model follows the model's spec (the same for every version of the model, so
a promotion never changes it):

- **inputs**: one input per feature, named after it, shape ``[batch, 1]`` (``[batch]`` is
  accepted too), datatype by kind — ``FP64`` for numeric (``FP32``, ``INT64``, ``INT32``
  accepted), ``BYTES`` for categorical and for text, ``BOOL`` for boolean; a tensor feature
  (an image, say) is one input of shape ``[batch, *shape]`` (``[batch, 1, 8, 8]``), FP32 (FP64
  accepted); an input of an optional feature may be left out. A model whose features are all numeric and required lists instead today's
  single input ``features`` (FP32 or FP64, ``[batch, n_features]``, columns in the order
  ``parameters.feature_names`` / ``GET /models`` give), and takes the per-feature form as well.
- **missing values**: NaN in an FP32/FP64 input of an optional numeric feature, null in
  JSON ``data``, or the request parameter ``missing``, a JSON object ``{feature: [row indices]}`` (any datatype; the
  values at those rows are ignored): ``client.infer(model, inputs, parameters={"missing":
  '{"city": [1]}'})`` with tritonclient.
- **outputs**: classification ``label`` (BYTES ``[batch]``), ``probabilities`` (FP32
  ``[batch, n_classes]``, columns in class order) and ``prediction_id`` (BYTES ``[batch]``, to
  send feedback for); regression ``prediction`` (FP64 ``[batch]``) and ``prediction_id``.

>>> deserialize_bytes(serialize_bytes(["a", "bc"]))
[b'a', b'bc']
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import numpy as np

from service.dataplane import InferResult
from service.errors import Kind, ServingError
from service.model_holder import Champion
from service.validation import (
    COLUMN_DTYPES,
    INPUT_DATATYPES,
    KIND_DATATYPES,
    MISSING_CONVENTION,
    MISSING_PARAMETER,
    TENSOR_INPUT,
)
from training.spec import ModelSpec

INPUT_NAME = TENSOR_INPUT
CLASSIFICATION_OUTPUTS = ("label", "probabilities", "prediction_id")
REGRESSION_OUTPUTS = ("prediction", "prediction_id")
#: classification's outputs (the default model kind; `outputs_of` gives a champion's)
OUTPUTS = CLASSIFICATION_OUTPUTS
SERVER_NAME = "perennial"
SERVER_VERSION = "0.1.0"
EXTENSIONS = ["binary_tensor_data"]


def outputs_of(champ: Champion) -> tuple[str, ...]:
    return CLASSIFICATION_OUTPUTS if champ.is_classification else REGRESSION_OUTPUTS


def requested_outputs(names: Iterable[str], champ: Champion | None = None) -> list[str]:
    """The outputs to return, in request order; all of them when none is asked for.
    Without a champion, names are checked against every output a model may have."""
    names = list(names)
    known = outputs_of(champ) if champ is not None else (*CLASSIFICATION_OUTPUTS, "prediction")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ServingError(Kind.INVALID, f"unknown output(s) {unknown}; this model produces {list(known)}")
    return names or list(known)


def output_tensors(result: InferResult, names: Sequence[str]) -> list[tuple[str, str, list[int], np.ndarray | list[str]]]:
    """``(name, datatype, shape, values)`` for each requested output."""
    names = requested_outputs(names, result.champion)
    n = len(result.prediction_ids)
    out = []
    for name in names:
        if name == "label":
            out.append((name, "BYTES", [n], [str(v) for v in result.labels]))
        elif name == "probabilities":
            probs = result.probabilities.astype(np.float32)
            out.append((name, "FP32", list(probs.shape), probs))
        elif name == "prediction":
            out.append((name, "FP64", [n], result.values.astype(np.float64)))
        else:
            out.append((name, "BYTES", [n], list(result.prediction_ids)))
    return out


def model_inputs(spec: ModelSpec) -> list[dict]:
    """The inputs a client sends (exactly one valid request layout; see the module docstring)."""
    if spec.numeric_only and TENSOR_INPUT not in spec.feature_names:
        return [{"name": TENSOR_INPUT, "datatype": "FP32", "shape": [-1, len(spec.features)]}]
    return [{"name": f.name, "datatype": KIND_DATATYPES[f.kind][0], "shape": [-1, *f.shape] if f.shape else [-1, 1]}
            for f in spec.features]


def model_metadata(champ: Champion) -> dict:
    """OIP model metadata (the JSON form; gRPC copies the fields its message has)."""
    spec = champ.spec
    if champ.is_classification:
        outputs = [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(champ.classes)]},
            {"name": "prediction_id", "datatype": "BYTES", "shape": [-1]},
        ]
    else:
        outputs = [
            {"name": "prediction", "datatype": "FP64", "shape": [-1]},
            {"name": "prediction_id", "datatype": "BYTES", "shape": [-1]},
        ]
    parameters = {
        "task": spec.task.value,
        "feature_names": list(champ.features),
        "optional_features": [f.name for f in spec.features if f.optional],
        "input_datatypes": {f.name: list(KIND_DATATYPES[f.kind]) for f in spec.features},
        "missing_values": MISSING_CONVENTION,
        "missing_parameter": MISSING_PARAMETER,
        "spec": spec.to_dict(),
    }
    if spec.numeric_only:
        parameters["tensor_input"] = {"name": TENSOR_INPUT, "datatypes": list(INPUT_DATATYPES),
                                      "shape": [-1, len(spec.features)]}
    if champ.is_classification:
        parameters["classes"] = [str(c) for c in champ.classes]
    return {
        "name": champ.model,
        "versions": [str(champ.version)],
        "platform": f"perennial/{champ.info.learner}",
        "inputs": model_inputs(spec),
        "outputs": outputs,
        "parameters": parameters,
    }


def decode_raw(datatype: object, raw: bytes) -> np.ndarray | list[bytes] | None:
    """A raw (binary) input buffer: a flat array, a list of bytes (``BYTES``), or None for
    datatypes we refuse later (the validator names them)."""
    if datatype == "BYTES":
        return deserialize_bytes(raw)
    dtype = COLUMN_DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        return None
    itemsize = np.dtype(dtype).itemsize
    if len(raw) % itemsize:
        raise ServingError(
            Kind.INVALID, f"raw input has {len(raw)} bytes, not a multiple of {itemsize} ({datatype})"
        )
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))


def serialize_bytes(values: Sequence[str]) -> bytes:
    """OIP raw BYTES encoding: each element as a 4-byte little-endian length, then its bytes."""
    parts = []
    for v in values:
        b = v.encode("utf-8")
        parts.append(struct.pack("<I", len(b)))
        parts.append(b)
    return b"".join(parts)


def deserialize_bytes(raw: bytes) -> list[bytes]:
    """Inverse of `serialize_bytes`; a truncated buffer is refused (INVALID)."""
    out, i = [], 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise ServingError(Kind.INVALID, f"raw BYTES input is truncated at byte {i} (no 4-byte length)")
        (size,) = struct.unpack_from("<I", raw, i)
        if i + 4 + size > len(raw):
            raise ServingError(Kind.INVALID, f"raw BYTES input element at byte {i} claims {size} bytes; "
                               f"only {len(raw) - i - 4} follow")
        out.append(raw[i + 4 : i + 4 + size])
        i += 4 + size
    return out
