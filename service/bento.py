"""The BentoML service `perennial serve` runs: ``bentoml serve service.bento:Perennial``.

BentoML owns the process model (arbiter + worker processes), the HTTP server, request
metrics, ``/metrics``, ``/livez`` and ``/readyz``. Each worker builds one `Runtime` (registry,
champions with BentoML's adaptive batching, Kafka log, gRPC server) from ``PERENNIAL_*``
environment variables in ``__init__``, starts it once the event loop runs, and mounts the
Starlette routes of `service/http_api.py`, which find the runtime through
``bentoml.get_current_service()`` (set by BentoML per worker).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import bentoml

from service import connection_guard
from service.http_api import build_http_app
from service.metrics_exposition import append_exposition
from service.runtime import Runtime, tune_gc
from service.settings import ServiceSettings


def _share_bentoml_log_handlers(*names: str) -> None:
    """Give Perennial's loggers BentoML's handlers at INFO (BentoML configures only its own
    logger in the worker; otherwise "serving model version N" and refusals would be lost)."""
    handlers = logging.getLogger("bentoml").handlers
    for name in names:
        logger = logging.getLogger(name)
        if handlers and not logger.handlers:
            logger.handlers = list(handlers)
            logger.setLevel(logging.INFO)
            logger.propagate = False



_SETTINGS = ServiceSettings()


def bentoml_config(settings: ServiceSettings) -> dict:
    """What Perennial asks of BentoML's per-request machinery, as ``@bentoml.service`` config.

    BentoML's request metrics stay on (``bentoml_service_request_*``: the dashboards and the
    5xx alert read them). Its access log follows ``PERENNIAL_ACCESS_LOG`` (off by default):
    it must be set here, in the service's own config — a 1.4 service's ``logging`` default
    overrides ``api_server.logging`` given through ``BENTOML_CONFIG_OPTIONS``. Its
    OpenTelemetry middleware cannot be left out by configuration, but with
    ``PERENNIAL_TRACING`` off every URL is excluded from it, so it hands each request straight
    on (no span, no context switch, no wrapped send/receive).
    """
    config: dict = {"logging": {"access": {"enabled": settings.access_log}}}
    if not settings.tracing:
        config["tracing"] = {"excluded_urls": [".*"]}
    return config


# Before BentoML builds the uvicorn server of this worker (it imports this module first).
connection_guard.install(_SETTINGS.http_idle_timeout_s)


# bound once: ``bentoml.get_current_service`` is a lazy module attribute, resolved through the
# package's ``__getattr__`` on every access (5 % of a one-instance request, measured)
_current_service = bentoml.get_current_service


def _plane():
    return _current_service().runtime.plane


def _body_limit() -> int:
    return _current_service().runtime.settings.max_body_bytes


@bentoml.asgi_app(build_http_app(_plane, _body_limit), path="/", name="perennial-routes")
@bentoml.service(
    name="perennial",
    workers=_SETTINGS.workers,
    # No max_concurrency: BentoML would answer 503 above it. Overload is queued in the
    # batcher instead (see service/batching.py); the timeout only guards a stuck request.
    traffic={"timeout": 300},
    **bentoml_config(_SETTINGS),
)
class Perennial:
    """One worker: a `Runtime` plus BentoML hooks for startup, shutdown, metrics, readiness."""

    def __init__(self) -> None:
        _share_bentoml_log_handlers("service", "training", "streaming")
        if _in_a_bentoml_worker():
            _stop_when_the_arbiter_dies()
        self.runtime = Runtime(ServiceSettings())

    @bentoml.on_startup
    async def _start(self) -> None:
        tune_gc(self.runtime.settings.gc_threshold)
        await asyncio.to_thread(self.runtime.start)
        await self.runtime.start_grpc()  # on this worker's event loop, beside the HTTP routes

    @bentoml.on_shutdown
    async def _stop(self) -> None:
        await self.runtime.stop_grpc()
        self.runtime.stop()

    def __is_ready__(self) -> bool:
        return self.runtime.holder.ready

    def __metrics__(self, content: str) -> str:
        return append_exposition(content, self.runtime.metrics)


def _in_a_bentoml_worker() -> bool:
    """True in a worker process BentoML's arbiter started (not when a test builds the service)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec is not None and spec.name == "_bentoml_impl.worker.service"


def _stop_when_the_arbiter_dies() -> None:
    """BentoML's process manager (circus) starts each worker in a session of its own, so a
    ``kill -9`` of `perennial serve` — an OOM kill, a container runtime's — would leave the
    worker serving on, orphaned, holding the port. Ask Linux for a SIGTERM when the arbiter
    goes (the worker then shuts down as on any SIGTERM: its spool stays for the next one)."""
    from streaming.broker import die_with_parent

    die_with_parent(signal.SIGTERM)
    if os.getppid() == 1:  # the arbiter died before we asked
        os.kill(os.getpid(), signal.SIGTERM)

