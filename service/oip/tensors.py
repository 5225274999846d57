"""Open Inference Protocol v2 pieces both OIP transports share: outputs, metadata, raw bytes.

The protocol is transport-neutral (the same tensors over JSON and protobuf), so what a model
declares and returns is built once here and only *encoded* by `oip/http.py` and
`oip/grpc_server.py`.

Perennial's OIP model: one input ``features`` (FP32 or FP64, ``[batch, n_features]``, columns
in the order `ModelMetadata` lists as ``parameters.feature_names`` / ``GET /models``) and
three outputs: ``label`` (BYTES ``[batch]``), ``probabilities`` (FP32 ``[batch, n_classes]``,
columns in class order) and ``prediction_id`` (BYTES ``[batch]``, to send feedback for).

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
from service.validation import INPUT_DATATYPES

INPUT_NAME = "features"
OUTPUTS = ("label", "probabilities", "prediction_id")
SERVER_NAME = "perennial"
SERVER_VERSION = "0.1.0"
EXTENSIONS = ["binary_tensor_data"]


def requested_outputs(names: Iterable[str]) -> list[str]:
    """The outputs to return, in request order; all of them when none is asked for."""
    names = list(names)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise ServingError(Kind.INVALID, f"unknown output(s) {unknown}; this model produces {list(OUTPUTS)}")
    return names or list(OUTPUTS)


def output_tensors(result: InferResult, names: Sequence[str]) -> list[tuple[str, str, list[int], np.ndarray | list[str]]]:
    """``(name, datatype, shape, values)`` for each requested output."""
    n = len(result.prediction_ids)
    out = []
    for name in names:
        if name == "label":
            out.append((name, "BYTES", [n], [str(v) for v in result.labels]))
        elif name == "probabilities":
            probs = result.probabilities.astype(np.float32)
            out.append((name, "FP32", list(probs.shape), probs))
        else:
            out.append((name, "BYTES", [n], list(result.prediction_ids)))
    return out


def model_metadata(champ: Champion) -> dict:
    """OIP model metadata (the JSON form; gRPC copies the same fields)."""
    return {
        "name": champ.model,
        "versions": [str(champ.version)],
        "platform": f"perennial/{champ.info.learner}",
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, len(champ.features)]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(champ.classes)]},
            {"name": "prediction_id", "datatype": "BYTES", "shape": [-1]},
        ],
        "parameters": {
            "feature_names": list(champ.features),
            "classes": [str(c) for c in champ.classes],
            "input_datatypes": list(INPUT_DATATYPES),
        },
    }


def decode_raw(datatype: object, raw: bytes) -> np.ndarray | None:
    """A raw (binary) input buffer as a flat array; None for datatypes we refuse later."""
    dtype = INPUT_DATATYPES.get(datatype) if isinstance(datatype, str) else None
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
    out, i = [], 0
    while i < len(raw):
        (size,) = struct.unpack_from("<I", raw, i)
        out.append(raw[i + 4 : i + 4 + size])
        i += 4 + size
    return out
