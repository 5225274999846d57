"""Composition root of the serving process: builds every collaborator once and wires them.

Like MLServer's ``server.py`` and cosmicpython's ``bootstrap.py``: real adapters by default
(file registry, Kafka producer, gRPC server), each passed in through a constructor, so tests
can build a `Runtime` around a temporary registry and ``bootstrap_servers=""``.
"""

from __future__ import annotations

import functools
import logging

from service.dataplane import DataPlane
from service.feedback_rules import FeedbackAuth, IssuedPredictions, RateLimiter
from service.metrics_exposition import build_service_metrics
from service.model_holder import ModelHolder, build_champion
from service.prediction_log import KafkaEventLog
from service.settings import ServiceSettings
from training.registry import Registry

log = logging.getLogger(__name__)


def tune_gc(threshold: int) -> None:
    """Run the cyclic garbage collector's youngest generation every ``threshold`` net container
    allocations (the older generations' thresholds unchanged); 0 leaves Python's default. For
    the serving process only (`service.settings.ServiceSettings.gc_threshold` says why)."""
    import gc

    if threshold:
        gc.set_threshold(threshold, *gc.get_threshold()[1:])


def _multiprocess_dir() -> bool:
    """Whether prometheus_client writes values to multiprocess files (BentoML's workers do)."""
    import os

    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Runtime:
    """Everything one serving process holds: metrics, registry, champions, Kafka, gRPC."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        # several workers: one scrape must count them all (`service.metrics_exposition`)
        self.metrics = build_service_metrics(shared=settings.workers > 1 and _multiprocess_dir())
        key = settings.registry_key.get_secret_value() if settings.registry_key else None
        self.registry = Registry(settings.registry_dir, key=key)
        build = functools.partial(
            build_champion,
            metrics=self.metrics,
            max_batch_size=settings.max_batch_size,
            max_latency_ms=settings.max_latency_ms,
            drift_window=settings.drift_window,
            drift_every=settings.drift_every,
            drift_min_interval_s=settings.drift_min_interval_s,
            device=settings.device,
            idle_wait=settings.batch_idle_wait,
            batching=settings.batching,
        )
        self.holder = ModelHolder(self.registry, build, self.metrics, settings.watch_interval_s,
                                  retry_s=settings.champion_retry_s)
        self.event_log = KafkaEventLog(
            settings.bootstrap_servers, self.metrics, settings.prediction_log_buffer,
            spool_dir=settings.spool_dir,
            feedback_spool_records=settings.feedback_spool_records,
            feedback_spool_bytes=settings.feedback_spool_bytes,
            prediction_spool_records=settings.prediction_spool_records,
            delivery_timeout_s=settings.kafka_delivery_timeout_s,
            acks=settings.kafka_acks if settings.kafka_acks == "all" else int(settings.kafka_acks),
            compression=settings.kafka_compression,
            retry_after_s=settings.retry_after_s,
            max_record_bytes=settings.max_record_bytes,
        )
        self.plane = DataPlane(
            self.holder,
            self.metrics,
            self.event_log,
            max_instances=settings.max_instances,
            admin_token=settings.token(),
            log_predictions=settings.prediction_log,
            feedback_auth=FeedbackAuth.from_setting(settings.feedback_tokens()),
            issued=IssuedPredictions(settings.issued_predictions),
            rate_limiter=RateLimiter(settings.feedback_rate, settings.feedback_burst),
            max_record_bytes=settings.max_record_bytes,
        )
        self.grpc_server = None

    def start(self) -> None:
        """Load champions, start the watcher and the Kafka threads (blocking: from a thread)."""
        self.holder.start()
        if not self.holder.served():
            log.warning("no champion to serve yet in %s; waiting for one to be promoted", self.registry.root)
        self.event_log.start()

    async def start_grpc(self) -> None:
        """Start the gRPC server on the running event loop (the one the data plane runs on)."""
        if self.settings.grpc_port:
            from service.oip.grpc_server import start_grpc_server

            self.grpc_server = await start_grpc_server(self.plane, self.settings.host, self.settings.grpc_port)

    async def stop_grpc(self, grace_s: float = 5.0) -> None:
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace=grace_s)
            self.grpc_server = None

    def stop(self) -> None:
        """Stop the watcher and the Kafka log (after `stop_grpc`: no request is left to log)."""
        self.holder.stop()
        self.event_log.close()
