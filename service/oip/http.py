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
        if not header_length.isdigit() or int(header_length) > len(body):
            raise ServingError(
                Kind.MALFORMED, f"Inference-Header-Content-Length {header_length!r} does not fit a {len(body)}-byte body"
            )
        n = int(header_length)
        body, binary = body[:n], body[n:]
    if not body:
        raise ServingError(Kind.MALFORMED, "request body is empty; send an OIP inference request object")
    try:
        doc = json.loads(body)
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
        datatype, shape = tensor.get("datatype"), tensor.get("shape")
        params = tensor.get("parameters") or {}
        size = params.get("binary_data_size") if isinstance(params, dict) else None
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
        inputs.append(TensorInput(name, datatype, shape, data))
    outputs = doc.get("outputs") or []
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise ServingError(Kind.MALFORMED, "'outputs' must be a list of {name} objects")
    names = [str(o.get("name")) for o in outputs]
    tensors.requested_outputs(names)  # names no model has are refused before inference
    request_id = doc.get("id")
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ServingError(Kind.MALFORMED, f"'parameters' must be an object, got {type(parameters).__name__}")
    return HttpInferRequest(inputs, names,
                            request_id if isinstance(request_id, str) else None,
                            parameters.get(tensors.MISSING_PARAMETER))


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
        response["parameters"] = {"classes": json.dumps([str(c) for c in champ.classes])}
    if request.id is not None:
        response["id"] = request.id
    return response
