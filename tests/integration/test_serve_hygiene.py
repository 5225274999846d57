"""Two `perennial serve` on one host keep their own metrics; connections that never complete a
request are closed instead of held forever."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from tests.integration.serve_process import ServeProcess, bootstrap

pytestmark = pytest.mark.integration


def _predict_count(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    found = re.findall(r'bentoml_service_request_total\{[^}]*endpoint="/predict"[^}]*\} ([0-9.e+]+)', text)
    return sum(float(v) for v in found)


def test_two_servers_on_one_host_keep_their_metrics_and_close_idle_connections(tmp_path, broker):
    features = bootstrap(tmp_path / "a" / "registry", "hyg")
    bootstrap(tmp_path / "b" / "registry", "hyg")
    a = ServeProcess(tmp_path / "a", broker, PERENNIAL_HTTP_IDLE_TIMEOUT_S="1").start()
    b = None
    try:
        body = {"model": "hyg", "instances": [[0.0] * len(features)]}
        for _ in range(5):
            assert httpx.post(f"{a.base}/predict", json=body, timeout=30).status_code == 200
        before = _predict_count(a.base)
        assert before >= 5
        b = ServeProcess(tmp_path / "b", broker).start()  # used to wipe the shared multiprocess dir
        assert httpx.post(f"{b.base}/predict", json=body, timeout=30).status_code == 200
        assert _predict_count(a.base) >= before, "the second server wiped the first one's metrics"
        assert _predict_count(b.base) < before, "the second server shows the first one's requests"

        # idle, and half a request: both closed by the server (recv returns b"")
        for opening in (b"", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-"):
            with socket.create_connection(("127.0.0.1", a.port), timeout=120) as s:  # the timeout only guards a hang
                s.sendall(opening)
                assert s.recv(1024) == b"", opening
        # a keep-alive connection that keeps working is not cut
        with httpx.Client(base_url=a.base, timeout=30) as client:
            for _ in range(3):
                assert client.get("/v2/health/live").status_code == 200
    finally:
        a.stop()
        if b is not None:
            b.stop()


def _sample(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", text, re.MULTILINE))


def test_workers_have_their_own_prediction_log_and_one_scrape_counts_them_all(tmp_path, broker):
    """`perennial serve --workers 2`: each worker claims its own spool slot (its own prediction
    log), and whichever worker answers a scrape, Perennial's counters are the sum over both."""
    features = bootstrap(tmp_path / "registry", "wrk")
    server = ServeProcess(tmp_path, broker, PERENNIAL_WORKERS="2").start()
    try:
        body = {"model": "wrk", "instances": [[0.0] * len(features)] * 3}
        for _ in range(40):  # a fresh connection each: the kernel spreads them over the workers
            assert httpx.post(f"{server.base}/predict", json=body, timeout=30).status_code == 200
        for _ in range(4):
            text = httpx.get(f"{server.base}/metrics", timeout=30).text
            assert _sample(text, "perennial_predictions_total") == 120.0
            assert _sample(text, "perennial_served_version") == 1.0  # one series, not one per worker
            assert not [line for line in text.splitlines() if line.startswith("perennial_") and "pid=" in line]
        slots = sorted(p.name for p in (tmp_path / "spool" / "predictions").glob("slot-*"))
        assert slots == ["slot-0", "slot-1"], slots
    finally:
        server.stop()
