"""No 500 for a hostile request, on a connection that keeps working; and the one kind of 500
left — a bug — is counted as ``internal``, which the promotion guard's default check sees and
rolls the promotion back. Real `perennial serve`, real Prometheus (Debian's package)."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from streaming.broker import free_port
from tests.integration.conftest import wait_for
from tests.integration.serve_process import KEY, ServeProcess, bootstrap

pytestmark = pytest.mark.integration

MODEL = "hostile"


@pytest.fixture(scope="module")
def server(broker: str, tmp_path_factory: pytest.TempPathFactory):
    from tests.integration.faulty_learner import faulty_version_of
    from training.registry import Registry

    work = tmp_path_factory.mktemp("hostile")
    features = bootstrap(work / "registry", MODEL, versions=1)
    registry = Registry(work / "registry", key=KEY)
    from training.learners.candidates import river_logistic_regression
    from training.streams import iter_stream

    trained = river_logistic_regression()
    for x, y in iter_stream("agrawal", 300, 11):
        trained.learn_one(x, y)
    registry.publish(MODEL, faulty_version_of(trained), note="a bug only live rows find")  # v2
    srv = ServeProcess(work, broker, PERENNIAL_ADMIN_TOKEN="admin-t", PERENNIAL_MAX_BODY_BYTES="65536").start()
    srv.features, srv.registry = features, registry
    try:
        yield srv
    finally:
        srv.stop()


def _oip(n: int, **tensor) -> bytes:
    base = {"name": "features", "datatype": "FP64", "shape": [1, n], "data": [1.0] * n}
    return json.dumps({"inputs": [{**base, **tensor}]}).encode()


def _ro_mount(path: Path) -> bool:
    """Bind-mount ``path`` read-only over itself (root in a container that allows it)."""
    done = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
    if done.returncode != 0:
        return False
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", str(path)], capture_output=True)
        return False
    return True


def test_hostile_requests_get_4xx_or_503_on_a_connection_that_still_works(server):
    n = len(server.features)
    infer = f"/v2/models/{MODEL}/infer"
    json_ct = {"content-type": "application/json"}
    admin = {"content-type": "application/json", "authorization": "bearer admin-t"}  # lower case accepted
    cases = [
        ("datatype is a list", "POST", infer, _oip(n, datatype=["FP64"]), json_ct, 400),
        ("datatype is an object", "POST", infer, _oip(n, datatype={"a": 1}), json_ct, 400),
        ("name is a number", "POST", infer, _oip(n, name=7), json_ct, 400),
        ("shape is a string", "POST", infer, _oip(n, shape="1x9"), json_ct, 400),
        ("shape holds floats", "POST", infer, _oip(n, shape=[1.0, float(n)]), json_ct, 400),
        ("shape holds a boolean", "POST", infer, _oip(n, shape=[True, n]), json_ct, 400),
        ("parameters is a list", "POST", infer, _oip(n, parameters=[1]), json_ct, 400),
        ("integer beyond float range", "POST", infer, _oip(n, data=[10**400] * n), json_ct, 422),
        ("nested huge integer", "POST", infer, _oip(n, data=[[10**309] * n]), json_ct, 422),
        ("binary size of the wrong type", "POST", infer, _oip(n, parameters={"binary_data_size": "8"}), json_ct, 400),
        ("output name is a list", "POST", infer,
         json.dumps({"inputs": json.loads(_oip(n))["inputs"], "outputs": [{"name": ["label"]}]}).encode(), json_ct, 400),
        ("superscript digit in header length", "POST", infer, _oip(n),
         {**json_ct, "Inference-Header-Content-Length": "²".encode("latin-1")}, 400),
        ("arabic-indic digits in header length", "POST", infer, _oip(n),
         {**json_ct, "Inference-Header-Content-Length": "١٢".encode()}, 400),
        ("header length beyond the body", "POST", infer, _oip(n),
         {**json_ct, "Inference-Header-Content-Length": "99999"}, 400),
        ("predict: huge integer", "POST", "/predict",
         json.dumps({"model": MODEL, "instances": [[10**400] * n]}).encode(), json_ct, 422),
        ("predict: model is a list", "POST", "/predict", json.dumps({"model": [MODEL], "instances": []}).encode(),
         json_ct, 400),
        ("feedback: label is an object", "POST", "/feedback",
         json.dumps({"model": MODEL, "prediction_id": "p", "label": {"a": 1}}).encode(), json_ct, 422),
        ("feedback: form encoded", "POST", "/feedback", b"model=x&label=1",
         {"content-type": "application/x-www-form-urlencoded"}, 415),
        ("admin: version is a string", "POST", "/admin/promote",
         json.dumps({"model": MODEL, "version": "2"}).encode(), admin, 400),
        ("body over the limit", "POST", "/predict", b"[" + b"1," * 40000 + b"1]", json_ct, 413),
    ]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    got = {}
    for name, method, path, body, headers, _ in cases:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        payload = r.read()
        got[name] = r.status
        assert json.loads(payload)["error"], name
        if (r.getheader("connection") or "").lower() == "close":
            conn.close()  # the server said so; a new connection is the protocol's way
            continue
        sock = conn.sock
        conn.request("GET", "/v2/health/live")
        live = conn.getresponse()
        live.read()
        assert live.status == 200 and conn.sock is sock, f"{name}: the connection did not survive"
    assert got == {name: status for name, *_, status in cases}

    # GET /models with a garbage alias file: listed, with the problem named, not a 500
    alias = server.work / "registry" / MODEL / "aliases" / "previous"
    alias.write_bytes("²\n".encode())
    try:
        r = httpx.get(f"{server.base}/models", timeout=30)
        assert r.status_code == 200
        entry = next(m for m in r.json()["models"] if m["name"] == MODEL)
        assert entry["previous"] is None and any("previous alias" in p for p in entry["problems"])
    finally:
        alias.unlink()

    # /admin/* on a read-only registry: 503 naming the problem
    registry_dir = server.work / "registry"
    if not _ro_mount(registry_dir):
        pytest.skip("cannot bind-mount the registry read-only here (needs root with CAP_SYS_ADMIN)")
    try:
        r = httpx.post(f"{server.base}/admin/promote", json={"model": MODEL, "version": 1},
                       headers={"authorization": "Bearer admin-t"}, timeout=30)
        assert r.status_code == 503 and "cannot be written" in r.json()["error"], r.text
    finally:
        subprocess.run(["umount", str(registry_dir)], check=True)
    metrics = httpx.get(f"{server.base}/metrics", timeout=30).text
    assert 'reason="internal"' not in metrics


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus package is not installed")
def test_internal_errors_fail_the_guard_and_roll_the_promotion_back(server, tmp_path: Path):
    from service.demo.processes import ProcessGroup
    from streaming.promotion_guard import DEFAULT_CHECKS, PrometheusQuery, PromotionGuard
    from tests.deploy.prometheus_local import write_local_config

    prom_port = free_port()
    config = write_local_config(tmp_path / "prometheus.yml", service_port=server.port, trainer_ports=[])
    procs = ProcessGroup(tmp_path / "logs")
    procs.start("prometheus", ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                               f"--web.listen-address=127.0.0.1:{prom_port}"])
    try:
        registry = server.registry
        registry.promote(MODEL, 2, "as the trainer would: a challenger that won the paired test")
        client = httpx.Client(base_url=server.base, timeout=30)

        def serving(version: int) -> bool:
            return client.get(f"/v2/models/{MODEL}").json().get("versions") == [str(version)]

        wait_for(lambda: serving(2), "version 2 served")
        row = [[1.0] * len(server.features)]
        query = PrometheusQuery(f"http://127.0.0.1:{prom_port}")

        def scraped_v2() -> bool:
            procs.check_alive()
            try:
                return query(f'max(perennial_served_version{{model="{MODEL}"}})') == [2.0]
            except Exception:  # Prometheus still starting
                return False

        wait_for(scraped_v2, "Prometheus to see version 2 served")  # the guard's warm-up, made explicit
        guard = PromotionGuard(DEFAULT_CHECKS, query, period_s=3600, interval_s=1, warmup_s=0)
        guard.watch(MODEL, 2, 1)

        def verdict():
            r = client.post("/predict", json={"model": MODEL, "instances": row})
            assert r.status_code == 500 and r.json()["reason"] == "internal", r.text
            assert r.headers.get("connection") == "close"
            procs.check_alive()
            return guard.poll()

        failed = wait_for(verdict, "the guard's verdict", every_s=0.5)
        assert failed.check == "internal_errors", failed.reason
        assert 'reason="internal"' in failed.query
        registry.rollback(MODEL, failed.reason)  # what the trainer does with a verdict (streaming/trainer.py)
        wait_for(lambda: serving(1), "version 1 served again")
        assert client.post("/predict", json={"model": MODEL, "instances": row}).status_code == 200
        client.close()
    finally:
        procs.stop_all()
