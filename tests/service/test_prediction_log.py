"""The Kafka adapter never blocks a request and never loses an accepted label: predictions it
cannot send go to their spool (dropped and counted only beyond it), feedback is in the fsynced
spool before `send_feedback` returns, and a full spool refuses with 503 and Retry-After."""

from __future__ import annotations

import json
import logging
import time

import pytest
from kafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from kafka.future import Future

from service.errors import Kind, ServingError
from service.metrics_exposition import build_service_metrics
from service.prediction_log import KafkaEventLog
from service.spool import Spool
from streaming.broker import free_port


def value(event_log: KafkaEventLog, metric: str, **labels) -> float:
    return getattr(event_log._metrics, metric).labels(**labels)._value.get()


def record(*ids: str) -> dict:
    """A request's prediction record (the shape `DataPlane._record` writes)."""
    return {"model": "m", "version": 1, "timestamp": 0.0, "prediction_ids": list(ids),
            "features": [[1.0]] * len(ids), "values": [0.5] * len(ids)}


def test_full_buffer_drops_predictions_and_full_spool_refuses_feedback(tmp_path):
    log = KafkaEventLog(f"127.0.0.1:{free_port()}", build_service_metrics(), buffer=5,
                        spool_dir=tmp_path, feedback_spool_records=2)  # not started
    for i in range(4):  # the queue holds 5 predictions: the third request of 2 does not fit
        log.log_predictions("m", record(f"{i}-0", f"{i}-1"), 2)
    assert value(log, "prediction_log_dropped", model="m") == 4
    log.send_feedback("m", [{"event_id": "a"}, {"event_id": "b"}])
    with pytest.raises(ServingError) as e:
        log.send_feedback("m", [{"event_id": "c"}])
    assert e.value.kind is Kind.UNAVAILABLE and e.value.retry_after == 5 and "holds 2 records" in e.value.message
    log.close(timeout_s=1)


def test_unreachable_broker_spools_predictions_and_feedback_without_blocking(tmp_path):
    log = KafkaEventLog(f"127.0.0.1:{free_port()}", build_service_metrics(), buffer=100, spool_dir=tmp_path)
    log.start()
    try:
        for i in range(5):
            log.log_predictions("m", record(f"{i}-0", f"{i}-1"), 2)
        log.send_feedback("m", [{"event_id": "e1"}])
        while value(log, "prediction_log_spooled", model="m") < 10:  # moved to the spool in the background
            time.sleep(0.05)
        assert value(log, "spool_records", log="feedback") == 1
    finally:
        log.close(timeout_s=1)
    assert log.sent == 0 and value(log, "prediction_log_dropped", model="m") == 0
    # what was not delivered is on disk for the next process
    assert Spool(tmp_path / "feedback" / "slot-0").pending == 1
    assert Spool(tmp_path / "predictions" / "slot-0", sync=False).pending == 5  # one record per request


def test_disabled_log_ignores_predictions_and_refuses_feedback():
    log = KafkaEventLog("", build_service_metrics())
    log.log_predictions("m", record("p"), 1)
    with pytest.raises(ServingError, match="no Kafka bootstrap servers"):
        log.send_feedback("m", [{"event_id": "e"}])


class _OneFutureProducer:
    """Stands in for KafkaProducer.send only: returns kafka-python's own Future, failed by the test."""

    def __init__(self) -> None:
        self.futures: list[Future] = []

    def send(self, topic, key=None, value=None):  # noqa: ANN001, ANN201
        future = Future()
        self.futures.append(future)
        return future

    def flush(self, timeout=None): ...  # noqa: ANN001, ANN201

    def close(self, timeout=None): ...  # noqa: ANN001, ANN201


@pytest.mark.parametrize(("error", "counter"), [
    (MessageSizeTooLargeError("too big for the broker"), "prediction_log_dropped"),  # never deliverable: dropped
    (KafkaConnectionError("broker went away"), "prediction_log_spooled"),  # retriable: kept for later
])
def test_a_failed_prediction_record_is_counted_not_reported_as_lost_feedback(tmp_path, caplog, error, counter):
    producer = _OneFutureProducer()
    log = KafkaEventLog("127.0.0.1:1", build_service_metrics(), spool_dir=tmp_path, create_topics=False,
                        producer_factory=lambda: producer)
    log._connect()
    log.start()
    try:
        log.log_predictions("m", record("p1"), 1)
        while not producer.futures:
            time.sleep(0.01)
        with caplog.at_level(logging.WARNING, logger="service.prediction_log"):
            producer.futures[0].failure(error)  # kafka-python calls errbacks with the exception last
        assert value(log, counter, model="m") == 1
    finally:
        log.close(timeout_s=1)
    assert "feedback" not in caplog.text.lower() or counter == "prediction_log_spooled"
    assert "lost" not in caplog.text


def test_feedback_is_encoded_as_the_trainer_decodes_it(tmp_path):
    from streaming.schemas import FeedbackWire

    log = KafkaEventLog("127.0.0.1:1", build_service_metrics(), spool_dir=tmp_path)
    log.send_feedback("m", [{"event_id": "e", "model": "m", "prediction_id": "p", "label": 1}])
    (_, payload), = log.feedback.peek(1)
    model, _, raw = payload.partition(b"\x00")
    assert model == b"m" and FeedbackWire.model_validate(json.loads(raw)).prediction_id == "p"
    log.close(timeout_s=1)


def test_a_request_record_over_the_size_limit_is_split_not_dropped():
    from service.prediction_log import encode_predictions, prediction_count

    rec = record(*(f"b-{i}" for i in range(100)))
    whole = encode_predictions(rec, 1_000_000)
    assert len(whole) == 1 and prediction_count(whole[0]) == 100
    parts = encode_predictions(rec, len(whole[0]) // 3)
    assert len(parts) > 2 and all(len(p) <= len(whole[0]) // 3 for p in parts)
    ids = [pid for p in parts for pid in json.loads(p)["prediction_ids"]]
    assert ids == rec["prediction_ids"]  # every prediction once, in order
    assert sum(prediction_count(p) for p in parts) == 100


def test_records_queued_together_reach_kafka_as_one_record_the_trainer_reads(tmp_path):
    """Several requests' records waiting in the queue go out as one Kafka record (one send),
    which the trainer's decoder expands into every prediction, in order."""
    from streaming.schemas import ModelSchema, decode_prediction

    producer = _OneFutureProducer()
    log = KafkaEventLog("127.0.0.1:1", build_service_metrics(), spool_dir=tmp_path, create_topics=False,
                        producer_factory=lambda: producer)
    log._connect()
    for i in range(5):  # queued before the thread runs: what a busy thread finds when it wakes
        log.log_predictions("m", record(f"{i}-0", f"{i}-1"), 2)
    sent = []
    producer.send = lambda topic, key=None, value=None: sent.append(value) or Future()
    log.start()
    try:
        while not sent:
            time.sleep(0.01)
        time.sleep(0.1)
    finally:
        log.close(timeout_s=1)
    assert len(sent) == 1
    batch = decode_prediction(sent[0], ModelSchema("m", feature_names=("x",)))
    assert [p.prediction_id for p in batch.predictions] == [f"{i}-{j}" for i in range(5) for j in range(2)]
    assert [p.label for p in batch.predictions] == [0.5] * 10


def test_the_producer_gathers_records_and_compresses_as_configured(tmp_path, monkeypatch):
    import kafka

    made = {}
    monkeypatch.setattr(kafka, "KafkaProducer", lambda **kw: made.update(kw) or _OneFutureProducer())
    for compression, expected in (("none", None), ("zstd", "zstd")):
        log = KafkaEventLog("127.0.0.1:1", build_service_metrics(), spool_dir=tmp_path / compression,
                            compression=compression)
        log._connect()
        assert made["compression_type"] == expected
        assert made["linger_ms"] == 50 and made["batch_size"] == 512 * 1024  # fewer, larger produce requests
        log.close(timeout_s=1)
