"""HTTP routes: /predict, /feedback, /models, /admin/*, and the OIP v2 REST endpoints.

Thin by design: read the body (with a size limit), parse JSON, call the data plane, render.
These routes are a Starlette app that `service/bento.py` mounts into the BentoML service,
rather than ``@bentoml.api`` methods, because BentoML's typed API parsing answers malformed
JSON with a 500 and reinterprets a body sent as a form — and every bad request must get a
specific 4xx. BentoML still runs the process, the HTTP server, its request metrics (which
cover mounted routes), ``/metrics``, health probes and the adaptive batching engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic_core import from_json, to_json
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.dataplane import DataPlane
from service.errors import Kind, ServingError
from service.oip import tensors
from service.predictions import predict_json


class FastJSONResponse(JSONResponse):
    """`JSONResponse` rendered by pydantic-core's Rust encoder (several times ``json.dumps``
    on a response of many predictions); a non-finite number is written as null."""

    def render(self, content: object) -> bytes:
        return to_json(content, inf_nan_mode="null")


GetPlane = Callable[[], DataPlane]
Handler = Callable[[Request, DataPlane], Awaitable[Response]]


async def read_json(request: Request, limit: int) -> object:
    """The request body as JSON; 413 over ``limit`` bytes, 400 when it is not JSON."""
    body = await read_body(request, limit)
    return parse_json(body)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes (413 beyond, before more is read). ASGI's receive
    directly: Starlette's ``request.stream()`` is the same loop as an async generator, which
    cost as much again for the one-chunk body of a small request."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise ServingError(Kind.TOO_LARGE, f"request body is {declared} bytes; at most {limit} are accepted")
    receive = request.receive
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ServingError(Kind.TOO_LARGE, f"request body exceeds {limit} bytes")
        if not message.get("more_body", False):
            return chunk if not chunks else b"".join((*chunks, chunk))
        chunks.append(chunk)


def parse_json(body: bytes) -> object:
    if not body:
        raise ServingError(Kind.MALFORMED, "request body is empty; send a JSON object")
    try:  # pydantic-core's Rust parser: json.loads' values (NaN, big ints), ~3x faster
        return from_json(body)
    except (ValueError, RecursionError) as e:
        raise ServingError(Kind.MALFORMED, f"request body is not valid JSON: {e}") from None


def error_response(e: ServingError) -> JSONResponse:
    """The JSON error; ``Retry-After`` on 429/503 when known, and ``Connection: close`` where the
    connection cannot be reused (a body left unread, or a bug), so a keep-alive client is told
    rather than finding the socket dropped."""
    headers = {}
    if e.retry_after is not None:
        headers["Retry-After"] = str(max(1, int(round(e.retry_after))))
    if e.kind in (Kind.TOO_LARGE, Kind.INTERNAL):
        headers["Connection"] = "close"
    return JSONResponse(e.to_json(), status_code=e.kind.http_status, headers=headers)


def build_http_app(get_plane: GetPlane, body_limit: Callable[[], int]) -> Starlette:
    """The routes, resolving the data plane per request (it lives in the BentoML worker)."""

    def route(path: str, handler: Handler, method: str) -> Route:
        async def endpoint(request: Request) -> Response:
            plane = get_plane()
            try:
                return await handler(request, plane)
            except ServingError as e:
                return error_response(e)
            except Exception as e:  # a bug below: counted as `internal`, never an uncounted 500
                return error_response(plane.internal(e, request.path_params.get("model"), "http"))

        return Route(path, endpoint, methods=[method], name=handler.__name__)

    async def predict(request: Request, plane: DataPlane) -> Response:
        try:
            body = await read_json(request, body_limit())
        except ServingError as e:
            raise plane.refuse(e, None, "http") from None
        if not isinstance(body, dict):
            raise plane.refuse(ServingError(Kind.MALFORMED, "body must be a JSON object {model, instances}"), None, "http")
        result = await plane.predict_result(body.get("model"), body.get("instances"), "http")
        return Response(predict_json(result), media_type="application/json")

    async def feedback(request: Request, plane: DataPlane) -> Response:
        # who may send, and as what, before anything about the body is looked at
        trusted = plane.check_feedback_access(request.headers.get("authorization"),
                                              request.headers.get("content-type"), "http")
        try:
            body = await read_json(request, body_limit())
        except ServingError as e:
            raise plane.refuse(e, None, "http") from None
        client = request.client.host if request.client else "unknown"
        return JSONResponse(await plane.feedback(body, "http", trusted=trusted, client=client), status_code=202)

    async def models(request: Request, plane: DataPlane) -> Response:
        return JSONResponse(await plane.list_models())

    def admin(action: str) -> Handler:
        async def handler(request: Request, plane: DataPlane) -> Response:
            authorization = request.headers.get("authorization")
            try:  # authentication before anything about the body is looked at
                plane.check_admin(authorization)
                body = await read_json(request, body_limit())
            except ServingError as e:
                raise plane.refuse(e, None, "http") from None
            return JSONResponse(await plane.admin(action, body, authorization))

        handler.__name__ = action
        return handler

    # -- Open Inference Protocol v2 (REST) --------------------------------------------------

    async def live(request: Request, plane: DataPlane) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request, plane: DataPlane) -> Response:
        ok = plane.holder.ready
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    async def server_metadata(request: Request, plane: DataPlane) -> Response:
        return JSONResponse({"name": tensors.SERVER_NAME, "version": tensors.SERVER_VERSION,
                             "extensions": tensors.EXTENSIONS})

    async def model_metadata(request: Request, plane: DataPlane) -> Response:
        p = request.path_params
        try:
            champ = plane.champion(p["model"], p.get("version"))
        except ServingError as e:
            raise plane.refuse(e, p["model"], "http") from None
        return JSONResponse(tensors.model_metadata(champ))

    async def model_ready(request: Request, plane: DataPlane) -> Response:
        p = request.path_params
        try:
            plane.champion(p["model"], p.get("version"))
        except ServingError as e:
            raise plane.refuse(e, p["model"], "http") from None
        return JSONResponse({"name": p["model"], "ready": True})

    async def infer(request: Request, plane: DataPlane) -> Response:
        from service.oip.http import decode_infer_request, encode_infer_response

        model, version = request.path_params["model"], request.path_params.get("version")
        try:
            body = await read_body(request, body_limit())
            req = decode_infer_request(body, request.headers.get("inference-header-content-length"))
            tensors.requested_outputs(req.outputs, plane.champion(model, version))
        except ServingError as e:
            raise plane.refuse(e, model, "http") from None
        result = await plane.infer_inputs(model, req.inputs, req.missing, version, "http")
        return FastJSONResponse(encode_infer_response(result, req))

    routes = [
        route("/predict", predict, "POST"),
        route("/feedback", feedback, "POST"),
        route("/models", models, "GET"),
        route("/admin/promote", admin("promote"), "POST"),
        route("/admin/rollback", admin("rollback"), "POST"),
        route("/v2/health/live", live, "GET"),
        route("/v2/health/ready", ready, "GET"),
        route("/v2", server_metadata, "GET"),
    ]
    for prefix in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        routes += [
            route(prefix, model_metadata, "GET"),
            route(prefix + "/ready", model_ready, "GET"),
            route(prefix + "/infer", infer, "POST"),
        ]
    return Starlette(routes=routes)
