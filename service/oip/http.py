"""OIP v2 REST encoding: JSON inference requests, with the binary tensor data extension.

``tritonclient.http`` sends tensors as raw bytes after a JSON header whose length is in the
``Inference-Header-Content-Length`` header; plain JSON clients put ``data`` (flat or nested)
in the input object. Both are decoded here into `TensorInput`s (name, datatype, shape, flat
data), one per feature or the single ``features`` tensor; the data plane checks them against
the model's spec. The request parameter ``missing`` (a JSON string, or the object itself)
marks missing cells. Responses are JSON (``data`` lists), which every OIP client
reads, including tritonclient.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from pydantic_core import from_json

from service.dataplane import InferResult
from service.errors import Kind, ServingError
from service.oip import tensors
from service.validation import TensorInput


@dataclass
class HttpInferRequest:
    inputs: list[TensorInput]
    outputs: list[str] = field(default_factory=list)
    id: str | None = None
    #: the request parameter ``missing`` (a JSON string or object), None when absent
    missing: object = None


def decode_infer_request(body: bytes, header_length: str | None) -> HttpInferRequest:
    """Parse an OIP REST infer body (JSON, or JSON header + binary tensors)."""
    binary = b""
    if header_length is not None:
        # ASCII digits only: str.isdigit() also accepts '²' or '١', which int() then rejects or misreads
        if not (header_length.isascii() and header_length.isdigit()) or int(header_length) > len(body):
            raise ServingError(
                Kind.MALFORMED, f"Inference-Header-Content-Length {header_length!r} does not fit a {len(body)}-byte body"
            )
        n = int(header_length)
        body, binary = body[:n], body[n:]
    if not body:
        raise ServingError(Kind.MALFORMED, "request body is empty; send an OIP inference request object")
    try:  # pydantic-core's Rust parser, as /predict's: json.loads' values (NaN, big ints), faster
        doc = from_json(body)
    except (ValueError, RecursionError) as e:
        raise ServingError(Kind.MALFORMED, f"request body is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ServingError(Kind.MALFORMED, "inference request must be a JSON object with 'inputs'")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not all(isinstance(t, dict) for t in raw_inputs):
        raise ServingError(Kind.MALFORMED, "'inputs' must be a list of {name, datatype, shape, data} objects")
    inputs, offset = [], 0
    for i, tensor in enumerate(raw_inputs):
        name = tensor.get("name")
        if not isinstance(name, str):
            raise ServingError(Kind.MALFORMED, f"inputs[{i}] needs a string 'name'; got {name!r}")
        _check_tensor_fields(tensor)
        datatype, shape = tensor.get("datatype"), tensor.get("shape")
        params = tensor.get("parameters") or {}
        size = params.get("binary_data_size")
        if size is not None:
            if type(size) is not int or size < 0 or offset + size > len(binary):
                raise ServingError(Kind.MALFORMED, f"input {name!r} binary_data_size {size!r} does not fit the "
                                   f"{len(binary) - offset} binary bytes left")
            data = tensors.decode_raw(datatype, binary[offset:offset + size])
            offset += size
        else:
            data = tensor.get("data")
            if data is not None and not isinstance(data, list):
                raise ServingError(Kind.MALFORMED, f"input {name!r} 'data' must be a list, got {type(data).__name__}")
            if data is not None:
                _check_json_numbers(data)
        inputs.append(TensorInput(name, datatype, shape, data))
    outputs = doc.get("outputs") or []
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                for o in outputs):
        raise ServingError(Kind.MALFORMED, "'outputs' must be a list of {\"name\": string} objects")
    names = [o["name"] for o in outputs]
    tensors.requested_outputs(names)  # names no model has are refused before inference
    request_id = doc.get("id")
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ServingError(Kind.MALFORMED, f"'parameters' must be an object, got {type(parameters).__name__}")
    return HttpInferRequest(inputs, names,
                            request_id if isinstance(request_id, str) else None,
                            parameters.get(tensors.MISSING_PARAMETER))


_FLOAT_MAX = 1.7976931348623157e308


def _check_tensor_fields(tensor: dict) -> None:
    """Every OIP input field by JSON type and range, before anything uses it (400 names the field)."""
    for name in ("name", "datatype"):
        value = tensor.get(name)
        if value is not None and not isinstance(value, str):
            raise ServingError(Kind.MALFORMED, f"input {name!r} must be a string, got {type(value).__name__} "
                               f"{str(value)[:40]}; e.g. 'datatype': 'FP32'")
    shape = tensor.get("shape")
    if shape is not None and (not isinstance(shape, list)
                              or not all(type(s) is int and 0 <= s < 2**31 for s in shape)):
        raise ServingError(Kind.MALFORMED, f"input 'shape' must be a list of non-negative integers, got "
                           f"{str(shape)[:60]}")
    params = tensor.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise ServingError(Kind.MALFORMED, f"input 'parameters' must be an object, got {type(params).__name__}")


def _check_json_numbers(data: list) -> None:
    """Integers beyond the float range cannot become a tensor (OverflowError): refuse them by name."""
    kinds = set(map(type, data))
    if int not in kinds and list not in kinds:  # the usual flat list of floats: one C-level pass
        return
    stack = [data]
    while stack:
        for v in stack.pop():
            if type(v) is list:
                stack.append(v)
            elif type(v) is int and not -_FLOAT_MAX <= v <= _FLOAT_MAX:
                raise ServingError(Kind.INVALID, f"input data holds an integer of {v.bit_length()} bits, beyond "
                                   "the range of a float; send finite numbers")


def encode_infer_response(result: InferResult, request: HttpInferRequest) -> dict:
    champ = result.champion
    outputs = []
    for name, datatype, shape, values in tensors.output_tensors(result, request.outputs):
        data = values.ravel().tolist() if isinstance(values, np.ndarray) else values
        outputs.append({"name": name, "datatype": datatype, "shape": shape, "data": data})
    response = {
        "model_name": champ.model,
        "model_version": str(champ.version),
        "outputs": outputs,
    }
    if champ.is_classification:
        response["parameters"] = {"classes": json.dumps(champ.class_keys)}
    if request.id is not None:
        response["id"] = request.id
    return response
