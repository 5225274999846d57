"""The Kafka adapter never blocks a request: a full buffer drops prediction records (counted)
and refuses feedback with 503; an unreachable broker drops what it cannot send."""

from __future__ import annotations

import pytest

from service.errors import Kind, ServingError
from service.metrics_exposition import build_service_metrics
from service.prediction_log import KafkaEventLog
from streaming.broker import free_port
from streaming.metrics import ServiceMetrics
from tests.helpers import wait_for


def dropped(metrics: ServiceMetrics, model: str) -> float | None:
    return metrics.registry.get_sample_value("perennial_prediction_log_dropped_total", {"model": model})


def test_full_buffer_drops_predictions_and_refuses_feedback():
    metrics = build_service_metrics()
    log = KafkaEventLog(f"127.0.0.1:{free_port()}", metrics, buffer=5)  # not started
    log.log_predictions("m", [{"prediction_id": str(i)} for i in range(8)])
    assert dropped(metrics, "m") == 3
    with pytest.raises(ServingError) as e:
        log.send_feedback("m", [{"event_id": "e"}])
    assert e.value.kind is Kind.UNAVAILABLE


def test_unreachable_broker_drops_and_counts_without_blocking():
    metrics = build_service_metrics()
    log = KafkaEventLog(f"127.0.0.1:{free_port()}", metrics, buffer=100)
    log.start()
    try:
        log.log_predictions("m", [{"prediction_id": str(i)} for i in range(10)])
        # the producer thread gives up on them in the background
        wait_for(lambda: (dropped(metrics, "m") or 0) >= 10, "10 dropped prediction records", every_s=0.05)
    finally:
        log.close(timeout_s=1)
    assert log.sent == 0


def test_disabled_log_ignores_predictions_and_refuses_feedback():
    log = KafkaEventLog("", build_service_metrics())
    log.log_predictions("m", [{"prediction_id": "p"}])
    with pytest.raises(ServingError, match="no Kafka bootstrap servers"):
        log.send_feedback("m", [{"event_id": "e"}])
