"""Who may teach the model: /feedback with and without a token, with and without features,
other content types, the champion's classes and features, the record size, and a burst over
the rate limit — through the real HTTP routes, data plane and spool (no broker needed: a 2xx
means the record is in the spool)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from service.dataplane import DataPlane
from service.feedback_rules import FeedbackAuth, IssuedPredictions, RateLimiter
from service.http_api import build_http_app
from service.metrics_exposition import build_service_metrics
from service.model_holder import ModelHolder, build_champion
from service.prediction_log import KafkaEventLog
from streaming.broker import free_port
from training.learners.candidates import logistic_regression
from training.reference import reference_histograms
from training.registry import Registry
from training.streams import iter_stream

MODEL = "trust"
TOKENS = "tok-a,tok-b"


@pytest.fixture(scope="module")
def learner():
    data = list(iter_stream("agrawal", 300, 3))
    model = logistic_regression()
    for x, y in data:
        model.learn_one(x, y)
    return model, [x for x, _ in data]


def _client(tmp_path: Path, learner, tokens: str | None, rate: float = 0, burst: int = 1) -> TestClient:
    model, xs = learner
    registry = Registry(tmp_path / "registry", key="k")
    registry.promote(MODEL, registry.publish(MODEL, model, reference=reference_histograms(xs)).version, "t")
    metrics = build_service_metrics()
    holder = ModelHolder(registry, lambda loaded: build_champion(loaded, metrics, max_batch_size=8,
                                                                 max_latency_ms=1000), metrics)
    holder.poll_once()
    log = KafkaEventLog(f"127.0.0.1:{free_port()}", metrics, spool_dir=tmp_path / "spool")  # not started
    plane = DataPlane(holder, metrics, log, feedback_auth=FeedbackAuth.from_setting(tokens),
                      issued=IssuedPredictions(1000), rate_limiter=RateLimiter(rate, burst),
                      max_record_bytes=512)
    app = build_http_app(lambda: plane, lambda: 1 << 20)
    client = TestClient(app)
    client.plane, client.features = plane, list(model.n_features_in)
    return client


def _predict(client: TestClient, xs: list[dict]) -> list[str]:
    r = client.post("/predict", json={"model": MODEL, "instances": [{"features": x} for x in xs]})
    assert r.status_code == 200, r.text
    return [p["prediction_id"] for p in r.json()["predictions"]]


JSON = "application/json"


@pytest.mark.parametrize(
    ("name", "tokens", "auth", "content_type", "record", "status"),
    [
        # no token configured: label-only feedback for this service's predictions only
        ("untrusted label for our prediction", None, None, JSON, "label_only", 202),
        ("untrusted, lower-case bearer ignored", None, "bearer x", JSON, "label_only", 202),
        ("untrusted features", None, None, JSON, "with_features", 403),
        ("untrusted unknown prediction id", None, None, JSON, "unknown_id", 404),
        ("untrusted same id twice", None, None, JSON, "same_id_twice", 404),
        ("+json content type", None, None, "application/vnd.api+json", "label_only", 202),
        ("form post", None, None, "application/x-www-form-urlencoded", "label_only", 415),
        ("text/plain", None, None, "text/plain", "label_only", 415),
        ("no content type", None, None, None, "label_only", 415),
        # a token configured: every request needs one
        ("token missing", TOKENS, None, JSON, "label_only", 401),
        ("token wrong", TOKENS, "Bearer nope", JSON, "label_only", 403),
        ("token basic scheme", TOKENS, "Basic tok-a", JSON, "label_only", 401),
        ("token right", TOKENS, "Bearer tok-a", JSON, "label_only", 202),
        ("second token, lower-case scheme", TOKENS, "bearer tok-b", JSON, "with_features", 202),
        ("token right, unknown id is the client's business", TOKENS, "Bearer tok-a", JSON, "unknown_id", 202),
        ("token but wrong content type", TOKENS, "Bearer tok-a", "text/plain", "label_only", 415),
        # the champion's view of a record, whoever sends it
        ("label not a class", TOKENS, "Bearer tok-a", JSON, "bad_label", 422),
        ("label of the wrong type", TOKENS, "Bearer tok-a", JSON, "string_label", 422),
        ("wrong feature names", TOKENS, "Bearer tok-a", JSON, "bad_features", 422),
        ("record too large", TOKENS, "Bearer tok-a", JSON, "too_large", 413),
    ],
)
def test_feedback_trust_table(tmp_path, learner, name, tokens, auth, content_type, record, status):
    client = _client(tmp_path, learner, tokens)
    xs = learner[1]
    pid = _predict(client, xs[:1])[0]
    features = {f: xs[0][f] for f in client.features}
    records = {
        "label_only": [{"model": MODEL, "prediction_id": pid, "label": 1}],
        "with_features": [{"model": MODEL, "features": features, "label": 0}],
        "unknown_id": [{"model": MODEL, "prediction_id": "not-ours", "label": 1}],
        "same_id_twice": [{"model": MODEL, "prediction_id": pid, "label": 1}] * 2,
        "bad_label": [{"model": MODEL, "prediction_id": pid, "label": 7}],
        "string_label": [{"model": MODEL, "prediction_id": pid, "label": "1"}],
        "bad_features": [{"model": MODEL, "features": {"nope": 1.0}, "label": 0}],
        "too_large": [{"model": MODEL, "prediction_id": "p" * 250, "label": 1, "event_id": "e" * 250}],
    }[record]
    headers = {}
    if auth:
        headers["authorization"] = auth
    if content_type:
        headers["content-type"] = content_type
    import json

    r = client.post("/feedback", content=json.dumps(records), headers=headers)
    assert r.status_code == status, (name, r.text)
    if status != 202:
        assert r.json()["error"], name
    else:
        assert client.plane.event_log.feedback.pending == len(records)


def test_a_prediction_id_labels_once(tmp_path, learner):
    client = _client(tmp_path, learner, None)
    pid = _predict(client, learner[1][:1])[0]
    body = [{"model": MODEL, "prediction_id": pid, "label": 1}]
    assert client.post("/feedback", json=body).status_code == 202
    r = client.post("/feedback", json=body)
    assert r.status_code == 404 and "labeled already" in r.json()["error"]


def test_a_burst_over_the_rate_limit_gets_429_with_retry_after(tmp_path, learner):
    client = _client(tmp_path, learner, TOKENS, rate=5, burst=10)
    auth = {"authorization": "Bearer tok-a"}
    features = {f: learner[1][0][f] for f in client.features}
    statuses = []
    for _ in range(15):  # one record each: 10 pass at once, then the bucket is empty
        r = client.post("/feedback", json={"model": MODEL, "features": features, "label": 0}, headers=auth)
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1 and "rate limit" in r.json()["error"]
    assert statuses[:10] == [202] * 10 and 429 in statuses[10:]
    assert client.plane.event_log.feedback.pending == statuses.count(202)


def test_issued_ids_come_from_grpc_and_http_alike(tmp_path, learner):
    """The memory is filled in the data plane, so an OIP infer's prediction ids can be labeled too."""
    import numpy as np

    client = _client(tmp_path, learner, None)
    rows = np.array([[learner[1][0][f] for f in client.features]])
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        result = asyncio.run_coroutine_threadsafe(
            client.plane.infer_tensor(MODEL, "FP64", list(rows.shape), rows.ravel().tolist()), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
    r = client.post("/feedback", json={"model": MODEL, "prediction_id": result.prediction_ids[0], "label": 1})
    assert r.status_code == 202, r.text
