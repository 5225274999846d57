"""uvicorn + Starlette, one route calling the model per instance: the Python limit.

What a Python developer writes with no framework beyond Starlette: ``request.json()``, a loop
over the instances, ``JSONResponse``. Takes Perennial's ``/predict`` body. Run by
`benchmarks/serving.py` from the project's venv (uvicorn, Starlette, uvloop and httptools are
there already, BentoML's own dependencies)::

    PEER_REGISTRY=... PEER_MODEL=bench PEER_KEY=... .venv/bin/python -m uvicorn \\
        benchmarks.peers.starlette_app:app --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from benchmarks.peers.model import Learner, load_learner, predict_instances


def build_app(get_learner: Callable[[], Learner]) -> Starlette:
    """``POST /predict`` (and ``GET /readyz``), the learner looked up per request."""

    async def predict(request: Request) -> Response:
        body = await request.json()
        return JSONResponse({"predictions": predict_instances(get_learner(), body["instances"])})

    async def ready(request: Request) -> Response:
        return Response("ok")

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]),
                             Route("/readyz", ready, methods=["GET"])])


def _build() -> Starlette:
    learner, _ = load_learner()
    return build_app(lambda: learner)


def __getattr__(name: str) -> Starlette:
    # `app` is built on first access (uvicorn's import), not when the BentoML peer imports
    # `build_app` from here without a registry to load
    if name == "app":
        globals()["app"] = application = _build()
        return application
    raise AttributeError(name)
