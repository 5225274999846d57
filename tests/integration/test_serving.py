"""`perennial serve` as a real process: /predict, OIP v2 over HTTP and gRPC, hot swap, feedback.

One server per module (starting BentoML costs seconds), against the session's embedded
broker. OIP is exercised through tritonclient, the public client of that protocol; the gRPC
error table uses tritonclient's own stub and messages, as any OIP client would.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.demo.processes import ProcessGroup
from streaming.schemas import prediction_records
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

KEY = "serving-test-key"
TOKEN = "admin-secret"
MAX_INSTANCES = 64
MAX_BODY = 65536


class Server:
    def __init__(self, http: str, grpc: str, model: str, registry_dir: Path, features: list[str]) -> None:
        self.http, self.grpc, self.model = http, grpc, model
        self.registry_dir, self.features = registry_dir, features
        self.client = httpx.Client(base_url=http, timeout=60)

    def registry(self):
        from training.registry import Registry

        return Registry(self.registry_dir, key=KEY)


def _bootstrap(root: Path, model: str, versions: int) -> list[str]:
    """Publish ``versions`` logistic regressions (trained on growing prefixes); promote the first."""
    from training.learners.candidates import logistic_regression
    from training.reference import reference_histograms
    from training.registry import Registry
    from training.streams import iter_stream

    data = list(iter_stream("agrawal", 600, 11))
    registry = Registry(root, key=KEY)
    reference = reference_histograms([x for x, _ in data])
    learner = logistic_regression()
    for v in range(versions):
        for x, y in data[v * 50 : (v + 1) * 50 + 300]:
            learner.learn_one(x, y)
        registry.publish(model, learner, reference=reference, note=f"test version {v + 1}")
    registry.promote(model, 1, "test bootstrap")
    return list(learner.n_features_in)


def _free_port() -> int:
    from streaming.broker import free_port

    return free_port()


@pytest.fixture(scope="module")
def server(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("serving")
    model = f"serve{os.getpid()}"
    features = _bootstrap(work / "registry", model, versions=7)
    port, grpc_port = _free_port(), _free_port()
    env = {
        "PERENNIAL_REGISTRY_KEY": KEY,
        "PERENNIAL_ADMIN_TOKEN": TOKEN,
        "PERENNIAL_MAX_INSTANCES": str(MAX_INSTANCES),
        "PERENNIAL_MAX_BODY_BYTES": str(MAX_BODY),
        "PERENNIAL_DRIFT_EVERY": "10",
        "PERENNIAL_WATCH_INTERVAL_S": "0.5",
    }
    group = ProcessGroup(work / "logs")
    proc = group.perennial("serve", "serve", "--registry", str(work / "registry"), "--host", "127.0.0.1",
                           "--port", str(port), "--grpc-port", str(grpc_port), "--bootstrap-servers", broker,
                           env=env)
    srv = Server(f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", model, work / "registry", features)

    def ready() -> bool:
        try:
            return srv.client.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    try:  # the process either becomes ready or dies, and then its log says why
        wait_for(ready, "the service to be ready", every_s=0.3, alive=group.check_alive)
        yield srv
    finally:
        srv.client.close()
        group.stop_all(timeout_s=30)
        assert proc.poll() is not None


def _rows(server: Server, n: int = 4, seed: int = 5) -> np.ndarray:
    from training.streams import iter_stream

    return np.array([[x[f] for f in server.features] for x, _ in iter_stream("agrawal", n, seed)])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def test_predict_and_oip_http_and_grpc_agree(server: Server):
    import tritonclient.grpc as tgrpc
    import tritonclient.http as thttp

    rows = _rows(server).astype(np.float32).astype(np.float64)  # what an FP32 tensor carries
    body = {"model": server.model, "instances": rows.tolist()}
    r = server.client.post("/predict", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    labels = [str(p["label"]) for p in out["predictions"]]
    probs = np.array([list(p["probabilities"].values()) for p in out["predictions"]])

    for module, url in ((thttp, server.http.removeprefix("http://")), (tgrpc, server.grpc)):
        client = module.InferenceServerClient(url)
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(server.model)
        meta = client.get_model_metadata(server.model)
        versions = meta["versions"] if isinstance(meta, dict) else list(meta.versions)
        assert versions == [str(out["version"])]
        tensor = module.InferInput("features", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows.astype(np.float32))
        result = client.infer(server.model, [tensor])
        assert [_text(v) for v in result.as_numpy("label")] == labels
        np.testing.assert_allclose(result.as_numpy("probabilities"), probs, rtol=1e-5, atol=1e-6)
        assert len(set(result.as_numpy("prediction_id"))) == len(rows)
        client.close()


def test_models_listing_and_metrics(server: Server):
    listing = server.client.get("/models").json()["models"]
    entry = next(m for m in listing if m["name"] == server.model)
    assert entry["feature_names"] == server.features and len(entry["versions"]) >= 7
    server.client.post("/predict", json={"model": server.model, "instances": _rows(server, 20).tolist()})
    text = server.client.get("/metrics").text
    for name in ("perennial_predictions_total", "perennial_feature_drift_psi", "perennial_served_version",
                 "perennial_batch_size_bucket", "bentoml_service_request_total"):
        assert name in text, name


def _http_cases(model: str, n: int) -> list[tuple[str, str, object, int]]:
    row = [1.0] * n
    infer = f"/v2/models/{model}/infer"

    def tensor(datatype="FP32", shape=(1, n), data=row):
        return {"inputs": [{"name": "features", "datatype": datatype, "shape": list(shape), "data": data}]}

    return [
        ("malformed json", "/predict", b'{"model": ', 400),
        ("empty body", "/predict", b"", 400),
        ("body is a list", "/predict", [1, 2], 400),
        ("missing model", "/predict", {"instances": [row]}, 400),
        ("unknown model", "/predict", {"model": "nope", "instances": [row]}, 404),
        ("instances not a list", "/predict", {"model": model, "instances": "x"}, 400),
        ("empty batch", "/predict", {"model": model, "instances": []}, 422),
        ("wrong vector length", "/predict", {"model": model, "instances": [row[:-1]]}, 422),
        ("wrong feature names", "/predict", {"model": model, "instances": [{"features": {"x": 1.0}}]}, 422),
        ("NaN", "/predict", b'{"model": "%s", "instances": [[NaN%s]]}' % (model.encode(), b", 1" * (n - 1)), 422),
        ("infinity", "/predict", b'{"model": "%s", "instances": [[Infinity%s]]}' % (model.encode(), b", 1" * (n - 1)), 422),
        ("wrong type", "/predict", {"model": model, "instances": [["a"] * n]}, 422),
        ("batch too large", "/predict", {"model": model, "instances": [row] * (MAX_INSTANCES + 1)}, 413),
        ("body too large", "/predict", b"[" + b" " * MAX_BODY + b"]", 413),
        ("oip wrong datatype", infer, tensor("INT64"), 422),
        ("oip wrong shape", infer, tensor(shape=(1, n + 1)), 422),
        ("oip data/shape mismatch", infer, tensor(shape=(2, n)), 422),
        ("oip unknown model", "/v2/models/nope/infer", tensor(), 404),
        ("oip unknown version", f"/v2/models/{model}/versions/999/infer", tensor(), 404),
        ("oip malformed json", infer, b"{", 400),
        ("oip no inputs", infer, {"inputs": []}, 422),
        ("feedback unknown model", "/feedback", {"model": "nope", "prediction_id": "p", "label": 1}, 404),
        ("feedback without prediction_id", "/feedback", {"model": model, "label": 1}, 422),
        ("feedback wrong label type", "/feedback", {"model": model, "prediction_id": "p", "label": [1]}, 422),
        ("admin without token", "/admin/promote", {"model": model, "version": 1}, 401),
    ]


def test_bad_http_requests_get_specific_4xx(server: Server):
    cases = _http_cases(server.model, len(server.features))
    got = {}
    for name, path, body, _ in cases:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        r = server.client.post(path, content=content, headers={"content-type": "application/json"})
        got[name] = (r.status_code, r.json().get("error", ""))
    assert {n: got[n][0] for n, *_ in cases} == {n: status for n, _, _, status in cases}
    assert all(msg for _, msg in got.values())
    r = server.client.post("/admin/promote", json={"model": server.model, "version": 1},
                           headers={"authorization": "Bearer wrong"})
    assert r.status_code == 403


def test_bad_grpc_requests_get_invalid_argument_or_not_found(server: Server):
    import grpc
    from tritonclient.grpc import service_pb2 as pb
    from tritonclient.grpc import service_pb2_grpc as pb_grpc

    n = len(server.features)
    raw = np.ones((1, n), dtype=np.float32).tobytes()

    def request(model=server.model, datatype="FP32", shape=(1, n), raws=(raw,), inputs=1, version="", outputs=()):
        req = pb.ModelInferRequest(model_name=model, model_version=version)
        for _ in range(inputs):
            req.inputs.add(name="features", datatype=datatype, shape=list(shape))
        req.raw_input_contents.extend(raws)
        for o in outputs:
            req.outputs.add(name=o)
        return req

    nan = np.full((1, n), np.nan, dtype=np.float32).tobytes()
    cases = [
        ("wrong datatype", request(datatype="INT32"), "INVALID_ARGUMENT"),
        ("wrong shape", request(shape=(1, n + 1)), "INVALID_ARGUMENT"),
        ("1-d shape", request(shape=(n,)), "INVALID_ARGUMENT"),
        ("data/shape mismatch", request(shape=(2, n)), "INVALID_ARGUMENT"),
        ("no inputs", request(inputs=0, raws=()), "INVALID_ARGUMENT"),
        ("two inputs", request(inputs=2), "INVALID_ARGUMENT"),
        ("NaN", request(raws=(nan,)), "INVALID_ARGUMENT"),
        ("ragged raw bytes", request(raws=(raw[:-1],)), "INVALID_ARGUMENT"),
        ("empty batch", request(shape=(0, n), raws=(b"",)), "INVALID_ARGUMENT"),
        ("batch too large", request(shape=(MAX_INSTANCES + 1, n), raws=(raw * (MAX_INSTANCES + 1),)), "INVALID_ARGUMENT"),
        ("unknown output", request(outputs=("logits",)), "INVALID_ARGUMENT"),
        ("unknown model", request(model="nope"), "NOT_FOUND"),
        ("unknown version", request(version="999"), "NOT_FOUND"),
    ]
    with grpc.insecure_channel(server.grpc) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        got = {}
        for name, req, _ in cases:
            try:
                stub.ModelInfer(req)
                got[name] = "OK"
            except grpc.RpcError as e:
                got[name] = e.code().name
        assert got == {name: code for name, _, code in cases}
        meta = pb.ModelMetadataRequest(name="nope")
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelMetadata(meta)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert not stub.ModelReady(pb.ModelReadyRequest(name="nope")).ready


def test_hot_swap_under_load_five_promotions_no_failure(server: Server):
    registry = server.registry()
    body = {"model": server.model, "instances": _rows(server, 2).tolist()}
    seen: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.http, timeout=60) as client:
            while not stop.is_set():
                r = client.post("/predict", json=body)
                seen.append((r.status_code, r.json().get("version") if r.status_code == 200 else None))

    current = registry.alias(server.model, "champion")
    targets = [v.version for v in registry.versions(server.model) if v.version != current][:5]
    assert len(targets) == 5
    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        while not seen:  # the load is flowing on the current champion before the first swap
            assert all(t.is_alive() for t in threads)
            time.sleep(0.02)
        for target in targets:
            registry.promote(server.model, target, "hot swap test")  # as the trainer would
            mark = len(seen)
            while not any(v == target for _, v in seen[mark:]):
                assert all(t.is_alive() for t in threads)
                time.sleep(0.05)
            time.sleep(0.2)  # a few more requests on the new version
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert [s for s, _ in seen if s != 200] == []
    # Versions in order of first appearance: each promotion showed up, in promotion order.
    assert list(dict.fromkeys(v for _, v in seen)) == [current, *targets]


def test_admin_promote_and_rollback_swap_immediately(server: Server):
    auth = {"authorization": f"Bearer {TOKEN}"}
    registry = server.registry()
    target = registry.versions(server.model)[0].version
    before = registry.alias(server.model, "champion")
    r = server.client.post("/admin/promote", json={"model": server.model, "version": target}, headers=auth)
    assert r.status_code == 200 and r.json()["served_version"] == target
    r = server.client.post("/admin/rollback", json={"model": server.model}, headers=auth)
    assert r.status_code == 200 and r.json()["served_version"] == before
    r = server.client.post("/admin/rollback", json={"model": server.model}, headers=auth)
    assert r.status_code == 409  # no previous version any more: a clear refusal, not a 500


def test_feedback_and_prediction_log_reach_kafka(server: Server, broker: str):
    from kafka import KafkaConsumer

    r = server.client.post("/predict", json={"model": server.model, "instances": _rows(server, 1).tolist()})
    prediction_id = r.json()["predictions"][0]["prediction_id"]
    r = server.client.post("/feedback", json=[{"model": server.model, "prediction_id": prediction_id, "label": 1}])
    assert r.status_code == 202, r.text
    event_id = r.json()["event_ids"][0]

    def find(topic: str, field: str, value: str) -> dict:
        consumer = KafkaConsumer(topic, bootstrap_servers=broker, auto_offset_reset="earliest",
                                 consumer_timeout_ms=1000, group_id=None)
        try:
            while True:  # the service produces in the background; poll until it is there
                for message in consumer:  # a prediction-log record holds a request's predictions
                    records = prediction_records(message.value) if topic.endswith(".predictions") \
                        else [json.loads(message.value)]
                    for record in records:
                        if record.get(field) == value:
                            return record
        finally:
            consumer.close()

    feedback = find(f"{server.model}.feedback", "event_id", event_id)
    assert feedback["prediction_id"] == prediction_id and feedback["label"] == 1
    logged = find(f"{server.model}.predictions", "prediction_id", prediction_id)
    assert set(logged["features"]) == set(server.features) and logged["version"] >= 1
