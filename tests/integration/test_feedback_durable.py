"""A 2xx from /feedback means the label reaches MODEL.feedback: exactly once, through a broker
that is down at start, down for longer than the producer's delivery timeout, and a service
killed with its spool full. Real parts: the embedded broker (stopped and started on a fixed
port), the `perennial serve` process, Kafka read back with a plain consumer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from streaming.broker import EmbeddedBroker, free_port
from tests.integration.conftest import read_topic, wait_for
from tests.integration.serve_process import ServeProcess, bootstrap

pytestmark = pytest.mark.integration

DELIVERY_TIMEOUT_S = 2.0


def _rows(features: list[str], n: int) -> list[list[float]]:
    from training.streams import iter_stream

    return [[x[f] for f in features] for x, _ in iter_stream("agrawal", n, 5)]


def _predict(client: httpx.Client, model: str, features: list[str], n: int) -> list[str]:
    r = client.post("/predict", json={"model": model, "instances": _rows(features, n)})
    assert r.status_code == 200, r.text
    return [p["prediction_id"] for p in r.json()["predictions"]]


def _topic_values(bootstrap_servers: str, topic: str, expected: int) -> list[dict]:
    """Everything on ``topic`` once ``expected`` records are there (and nothing more arrives)."""
    from kafka import KafkaConsumer

    def exists() -> bool:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers)
        try:
            return topic in consumer.topics()
        finally:
            consumer.close()

    wait_for(exists, f"topic {topic}")
    wait_for(lambda: len(read_topic(bootstrap_servers, topic, expected, idle_s=1.0)) >= expected,
             f"{expected} records on {topic}")
    return [json.loads(r.value) for r in read_topic(bootstrap_servers, topic, expected + 1, idle_s=3.0)]


def _logged_predictions(bootstrap_servers: str, topic: str, expected: int) -> list[dict]:
    """At least ``expected`` predictions of the prediction log, one dict each (the service
    writes one record per request: `streaming.schemas.prediction_records` expands it)."""
    from streaming.schemas import prediction_records

    def read() -> list[dict]:
        return [p for r in read_topic(bootstrap_servers, topic, 10**6, idle_s=1.0) for p in prediction_records(r.value)]

    wait_for(lambda: len(read()) >= expected, f"{expected} predictions on {topic}")
    return read()


@pytest.fixture
def broker_later():
    """A broker on a fixed port that is *not* running yet; the test starts (and stops) it."""
    broker = EmbeddedBroker(port=free_port())
    yield broker
    broker.stop()


def test_broker_down_at_start_and_past_the_delivery_timeout_loses_nothing(tmp_path: Path, broker_later):
    model = "durable"
    features = bootstrap(tmp_path / "registry", model)
    server = ServeProcess(tmp_path, broker_later.bootstrap_servers,
                          PERENNIAL_KAFKA_DELIVERY_TIMEOUT_S=str(DELIVERY_TIMEOUT_S),
                          PERENNIAL_FEEDBACK_SPOOL_RECORDS="40").start()
    accepted: list[str] = []
    refused: list[dict] = []
    try:
        with httpx.Client(base_url=server.base, timeout=30) as client:
            ids = _predict(client, model, features, 60)  # served while Kafka is down: logged to the spool
            for start in range(0, 60, 5):
                batch = [{"model": model, "prediction_id": pid, "label": 1, "event_id": f"e-{pid}"}
                         for pid in ids[start:start + 5]]
                r = client.post("/feedback", json=batch)
                if r.status_code == 202:
                    accepted += r.json()["event_ids"]
                else:
                    assert r.status_code == 503, r.text
                    assert int(r.headers["retry-after"]) >= 1 and "spool" in r.json()["error"]
                    refused += batch
            assert len(accepted) == 40 and len(refused) == 20  # the spool's bound, then 503
            time.sleep(2 * DELIVERY_TIMEOUT_S)  # longer than the producer keeps trying one send
            metrics = client.get("/metrics").text
            assert 'perennial_spool_records{log="feedback"} 40.0' in metrics

            broker_later.start()
            values = _topic_values(broker_later.bootstrap_servers, f"{model}.feedback", len(accepted))
            delivered = [v["event_id"] for v in values]
            assert sorted(delivered) == sorted(accepted), "every 2xx label exactly once, no other"
            assert delivered == accepted, "in the order they were accepted"
            assert not {r["event_id"] for r in refused} & set(delivered)

            logged = _logged_predictions(broker_later.bootstrap_servers, f"{model}.predictions", 60)
            assert {v["prediction_id"] for v in logged} == set(ids), "predictions served in the outage still join"

            wait_for(lambda: 'perennial_spool_records{log="feedback"} 0.0' in client.get("/metrics").text,
                     "spool drained")
            metrics = client.get("/metrics").text
            assert f'perennial_feedback_accepted_total{{model="{model}"}} 40.0' in metrics
            assert f'perennial_feedback_delivered_total{{model="{model}"}} 40.0' in metrics
            assert f'perennial_feedback_refused_total{{model="{model}",reason="unavailable"}} 20.0' in metrics
    finally:
        server.stop()


def test_service_killed_with_a_full_spool_loses_nothing(tmp_path: Path, broker_later):
    model = "restart"
    features = bootstrap(tmp_path / "registry", model)
    server = ServeProcess(tmp_path, broker_later.bootstrap_servers,
                          PERENNIAL_KAFKA_DELIVERY_TIMEOUT_S=str(DELIVERY_TIMEOUT_S)).start()
    try:
        with httpx.Client(base_url=server.base, timeout=30) as client:
            ids = _predict(client, model, features, 10)
            r = client.post("/feedback", json=[{"model": model, "prediction_id": p, "label": 0} for p in ids])
            assert r.status_code == 202, r.text
            accepted = r.json()["event_ids"]
        server.kill()  # kill -9 of every process of the server, spool not empty
        server.start()  # a new process adopts what the dead one left
        broker_later.start()
        values = _topic_values(broker_later.bootstrap_servers, f"{model}.feedback", len(accepted))
        assert sorted(v["event_id"] for v in values) == sorted(accepted)
        logged = _logged_predictions(broker_later.bootstrap_servers, f"{model}.predictions", 10)
        assert {v["prediction_id"] for v in logged} == set(ids)
    finally:
        server.stop()
