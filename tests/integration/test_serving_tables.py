"""`perennial serve` on a real table: categorical strings, booleans, missing cells, regression.

One server per module against the session's embedded broker, serving a model bootstrapped on
a mixed table (a spec with a numeric, an optional numeric, a categorical and a boolean
feature). Raw rows go through `/predict`, OIP HTTP and OIP gRPC — the OIP requests built by
tritonclient from the model metadata alone — bad inputs get specific refusals, and a
promotion to another learner family leaves the accepted input as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.demo.processes import stop_process_group
from streaming.schemas import prediction_records
from tests.tables import table

pytestmark = pytest.mark.integration

FEEDBACK_TOKEN = "table-feedback-token"
KEY = "tables-test-key"

# raw rows as a client has them: strings, null, an absent optional feature, an unseen category
RAW = [
    {"income": 61.5, "city": "Rome", "vip": True, "age": 33, "channel": "web"},
    {"income": 40, "city": "Oslo", "vip": False, "age": None, "channel": None},
    {"income": 55.0, "city": "Lima", "vip": False},
    {"income": 70.0, "city": "Reykjavik", "vip": True, "age": 50, "channel": "fax"},
]


def _learn(name: str, spec, rows: list[dict], ys: list):
    from training.learners.candidates import build_candidates
    from training.rows import RowValidator

    validator = RowValidator(spec)
    learner = build_candidates(name, spec)[0]
    for row, y in zip(rows, ys, strict=True):
        learner.learn_one(validator.row(row), y)
    return learner


def _regressor(spec, rows: list[dict], targets: list[float]):
    """A built-in candidate that learns ``spec``'s regression task (None while there is none):
    tried on a few rows first (a classifier would collect the targets as classes)."""
    from training.learners.candidates import CANDIDATES

    for name in sorted(CANDIDATES):
        try:
            learner = _learn(name, spec, rows[:5], targets[:5])
            value = learner.predict_one(_row(spec, rows[0]))
        except Exception:  # noqa: BLE001 - a classifier may refuse a numeric target; try the next
            continue
        if not learner.classes and isinstance(value, float):
            return _learn(name, spec, rows, targets)
    return None


def _row(spec, raw: dict) -> dict:
    from training.rows import RowValidator

    return RowValidator(spec).row(raw)


class Server:
    def __init__(self, http: str, grpc: str, model: str, regression: str | None, registry_dir: Path, spec) -> None:
        self.http, self.grpc, self.model, self.regression = http, grpc, model, regression
        self.registry_dir, self.spec = registry_dir, spec
        # feedback that brings its own features is training data: it needs the feedback token
        self.client = httpx.Client(base_url=http, timeout=60, headers={"authorization": f"Bearer {FEEDBACK_TOKEN}"})

    def registry(self):
        from training.registry import Registry

        return Registry(self.registry_dir, key=KEY)


@pytest.fixture(scope="module")
def server(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from streaming.broker import free_port
    from training.registry import Registry
    from training.spec_inference import infer_spec

    work = tmp_path_factory.mktemp("tables")
    model, regression = f"tables{os.getpid()}", f"spend{os.getpid()}"
    rows, labels, targets = table(600, 3)
    spec = infer_spec(rows, labels, target="buy")
    registry = Registry(work / "registry", key=KEY)
    registry.promote(model, registry.publish(model, _learn("logreg", spec, rows, labels)).version, "bootstrap")
    reg_spec = infer_spec(rows, targets, target="spend")
    regressor = _regressor(reg_spec, rows, targets)
    if regressor is not None:
        registry.promote(regression, registry.publish(regression, regressor).version, "bootstrap")
    port, grpc_port = free_port(), free_port()
    env = {**os.environ, "PERENNIAL_REGISTRY_KEY": KEY, "PERENNIAL_WATCH_INTERVAL_S": "0.5",
           "PERENNIAL_FEEDBACK_TOKEN": FEEDBACK_TOKEN}
    log = open(work / "serve.log", "wb")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--registry", str(work / "registry"),
         "--host", "127.0.0.1", "--port", str(port), "--grpc-port", str(grpc_port),
         "--bootstrap-servers", broker],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    srv = Server(f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", model,
                 regression if regressor is not None else None, work / "registry", spec)
    try:
        while True:  # the process either becomes ready or dies; the log says why
            assert proc.poll() is None, (work / "serve.log").read_text()[-3000:]
            try:
                if srv.client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        yield srv
    finally:
        srv.client.close()
        stop_process_group(proc, 30)
        log.close()


def _predict(server: Server, rows: list, model: str | None = None) -> httpx.Response:
    instances = [{"features": r} if isinstance(r, dict) else r for r in rows]
    return server.client.post("/predict", json={"model": model or server.model, "instances": instances})


def _inputs_from_metadata(module, meta, rows: list[dict]) -> tuple[list, dict]:
    """What a generic OIP client does: one tensor per input the metadata lists, shaped from
    it, typed from its datatype; NaN for a missing number, the ``missing`` parameter else."""
    specs = meta["inputs"] if isinstance(meta, dict) else [
        {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in meta.inputs]
    inputs, missing = [], {}
    for t in specs:
        shape = [len(rows) if s == -1 else s for s in t["shape"]]
        values = [r.get(t["name"]) for r in rows]
        gaps = [i for i, v in enumerate(values) if v is None]
        if t["datatype"] == "FP64":
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        elif t["datatype"] == "BYTES":
            array = np.array([b"" if v is None else v.encode() for v in values], dtype=np.object_)
        elif t["datatype"] == "BOOL":
            array = np.array([bool(v) for v in values], dtype=np.bool_)
        else:
            raise AssertionError(f"unexpected input datatype in metadata: {t}")
        if gaps and t["datatype"] != "FP64":
            missing[t["name"]] = gaps
        tensor = module.InferInput(t["name"], shape, t["datatype"])
        tensor.set_data_from_numpy(array.reshape(shape))
        inputs.append(tensor)
    return inputs, missing


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def test_raw_rows_over_predict_oip_http_and_grpc(server: Server):
    import tritonclient.grpc as tgrpc
    import tritonclient.http as thttp

    r = _predict(server, RAW)
    assert r.status_code == 200, r.text
    labels = [p["label"] for p in r.json()["predictions"]]
    probs = [[p["probabilities"][c] for c in ("no", "yes")] for p in r.json()["predictions"]]
    vectors = [[row.get(n) for n in server.spec.feature_names] for row in RAW]  # lists in spec order
    assert [p["label"] for p in _predict(server, vectors).json()["predictions"]] == labels

    for module, url in ((thttp, server.http.removeprefix("http://")), (tgrpc, server.grpc)):
        client = module.InferenceServerClient(url)
        meta = client.get_model_metadata(server.model)
        inputs, missing = _inputs_from_metadata(module, meta, RAW)
        assert [t.name() for t in inputs] == list(server.spec.feature_names)
        assert missing == {"channel": [1, 2]}  # BYTES: marked in the parameter (age: NaN)
        result = client.infer(server.model, inputs, parameters={"missing": json.dumps(missing)})
        assert [_text(v) for v in result.as_numpy("label")] == labels, module.__name__
        np.testing.assert_allclose(result.as_numpy("probabilities"), probs, rtol=1e-5, atol=1e-6)
        assert len(set(result.as_numpy("prediction_id"))) == len(RAW)
        client.close()
    # a plain JSON OIP client: data lists, null for a missing value
    meta = server.client.get(f"/v2/models/{server.model}").json()
    body = {"inputs": [{"name": t["name"], "datatype": t["datatype"], "shape": [len(RAW), 1],
                        "data": [row.get(t["name"]) for row in RAW]} for t in meta["inputs"]]}
    r = server.client.post(f"/v2/models/{server.model}/infer", json=body)
    assert r.status_code == 200, r.text
    assert next(o for o in r.json()["outputs"] if o["name"] == "label")["data"] == labels


def test_models_listing_and_http_metadata_expose_the_spec(server: Server):
    entry = next(m for m in server.client.get("/models").json()["models"] if m["name"] == server.model)
    assert entry["spec"] == server.spec.to_dict() and entry["feature_names"] == list(server.spec.feature_names)
    meta = server.client.get(f"/v2/models/{server.model}").json()
    assert meta["parameters"]["spec"] == server.spec.to_dict()
    assert {t["name"]: t["datatype"] for t in meta["inputs"]} == {
        "income": "FP64", "city": "BYTES", "vip": "BOOL", "age": "FP64", "channel": "BYTES"}


def test_bad_inputs_get_specific_refusals(server: Server):
    import grpc
    import tritonclient.grpc as tgrpc
    from tritonclient.utils import InferenceServerException

    good = RAW[0]
    for row, needle in [
        ({**good, "income": "61"}, "instance 0 feature 'income' is str '61'; a numeric feature takes a finite number"),
        ({**good, "colour": "red"}, "instance 0 has unknown feature(s) ['colour']"),
        ({**good, "city": "x" * 300}, "feature 'city' is a string of 300 characters; at most 256"),
    ]:
        r = _predict(server, [row])
        assert r.status_code == 422 and needle in r.json()["error"], r.text
    for body, needle in [
        ({"model": server.model, "features": good, "label": 1.5}, "a classification label is a string"),
        ({"model": server.model, "features": good, "label": "maybe"}, "not a class of this model"),
        ({"model": server.model, "features": {**good, "income": "x"}, "label": "yes"}, "feature 'income' is str"),
    ]:
        r = server.client.post("/feedback", json=body)
        assert r.status_code == 422 and needle in r.json()["error"], r.text

    client = tgrpc.InferenceServerClient(server.grpc)
    meta = client.get_model_metadata(server.model)

    def infer(rows: list[dict], edit) -> str:
        inputs, missing = _inputs_from_metadata(tgrpc, meta, rows)
        inputs = edit(inputs)
        with pytest.raises(InferenceServerException) as e:
            client.infer(server.model, inputs, parameters={"missing": json.dumps(missing)})
        assert e.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT), e.value
        return e.value.message()

    def income_as_text(inputs):
        tensor = tgrpc.InferInput("income", [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[b"61"]], dtype=np.object_))
        return [tensor if t.name() == "income" else t for t in inputs]

    def extra_input(inputs):
        tensor = tgrpc.InferInput("colour", [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[b"red"]], dtype=np.object_))
        return [*inputs, tensor]

    assert "input 'income' has datatype 'BYTES'; numeric feature 'income' takes FP64" in infer([good], income_as_text)
    assert "unknown input(s) ['colour']" in infer([good], extra_input)
    assert "feature 'city' is a string of 300 characters" in infer([{**good, "city": "x" * 300}], lambda i: i)
    assert "no input for required feature(s) ['income']" in infer([good], lambda i: [t for t in i if t.name() != "income"])
    client.close()
    r = server.client.post(f"/v2/models/{server.model}/infer", json={"inputs": [
        {"name": "income", "datatype": "BYTES", "shape": [1, 1], "data": ["61"]},
        {"name": "city", "datatype": "BYTES", "shape": [1, 1], "data": ["Rome"]},
        {"name": "vip", "datatype": "BOOL", "shape": [1, 1], "data": [True]}]})
    assert r.status_code == 422 and "numeric feature 'income' takes FP64" in r.json()["error"]


def test_raw_rows_reach_the_prediction_log(server: Server, broker: str, kio):
    r = _predict(server, RAW)
    ids = [p["prediction_id"] for p in r.json()["predictions"]]

    def logged():
        records = [p for m in kio.read_topic(broker, f"{server.model}.predictions", 10**6, idle_s=1)
                   for p in prediction_records(m.value)]  # one record per request, expanded
        return {rec["prediction_id"]: rec for rec in records if rec["prediction_id"] in ids} if records else None

    by_id = kio.wait_for(lambda: (got := logged()) and len(got) == len(ids) and got, "the prediction log")
    first, second, third, fourth = (by_id[i]["features"] for i in ids)
    assert first == {"income": 61.5, "city": "Rome", "vip": True, "age": 33.0, "channel": "web"}
    assert second["age"] is None and third["age"] is None and fourth["city"] == "Reykjavik"
    assert second["channel"] is None and third["channel"] is None and fourth["channel"] == "fax"
    r = server.client.post("/feedback", json={"model": server.model, "features": RAW[2], "label": "yes"})
    assert r.status_code == 202, r.text


def test_promotion_to_another_learner_keeps_the_accepted_input(server: Server):
    import tritonclient.grpc as tgrpc

    client = tgrpc.InferenceServerClient(server.grpc)
    before = client.get_model_metadata(server.model)
    registry = server.registry()
    rows, labels, _ = table(600, 3)
    info = registry.publish(server.model, _learn("hat", server.spec, rows, labels))
    registry.promote(server.model, info.version, "another learner family")

    def served() -> bool:
        entry = next(m for m in server.client.get("/models").json()["models"] if m["name"] == server.model)
        return entry["served_version"] == info.version and entry["learner"] == "hat"

    while not served():
        time.sleep(0.2)
    after = client.get_model_metadata(server.model)
    assert list(after.inputs) == list(before.inputs) and list(after.versions) == [str(info.version)]
    r = _predict(server, RAW)
    assert r.status_code == 200 and r.json()["version"] == info.version
    inputs, missing = _inputs_from_metadata(tgrpc, after, RAW)
    result = client.infer(server.model, inputs, parameters={"missing": json.dumps(missing)})
    assert len(result.as_numpy("label")) == len(RAW)
    client.close()


def test_a_regression_model_answers_values(server: Server):
    import tritonclient.grpc as tgrpc
    import tritonclient.http as thttp

    if server.regression is None:
        pytest.skip("no built-in candidate learns a regression task yet")
    r = _predict(server, RAW, server.regression)
    assert r.status_code == 200, r.text
    values = [p["value"] for p in r.json()["predictions"]]
    assert all(isinstance(v, float) and "label" not in p for v, p in zip(values, r.json()["predictions"], strict=True))
    for module, url in ((thttp, server.http.removeprefix("http://")), (tgrpc, server.grpc)):
        client = module.InferenceServerClient(url)
        meta = client.get_model_metadata(server.regression)
        outputs = meta["outputs"] if isinstance(meta, dict) else [{"name": o.name} for o in meta.outputs]
        assert [o["name"] for o in outputs] == ["prediction", "prediction_id"]
        inputs, missing = _inputs_from_metadata(module, meta, RAW)
        result = client.infer(server.regression, inputs, parameters={"missing": json.dumps(missing)})
        np.testing.assert_allclose(result.as_numpy("prediction"), values, rtol=1e-9)
        client.close()
    r = server.client.post("/feedback", json={"model": server.regression, "features": RAW[0], "label": "high"})
    assert r.status_code == 422 and "regression model's label is a finite number" in r.json()["error"]
