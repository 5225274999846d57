"""Regression panels, proven against a real Prometheus.

The closed-loop test runs the whole system on a classification stream and evaluates every
dashboard query through Prometheus, except the ones only a regression model can answer
(`tests.deploy.catalog.task_of`: MAE, RMSE, R², served MAE), which it checks return nothing
for its classification model. This test proves those: a real Prometheus (Debian's package)
scrapes a trainer metrics endpoint that exports what a regression model's trainer does, and
every regression-only query of the dashboards must return series for that model.

What is exported and how: the live MAE per served version comes from `ServedScore` fed
with feedback joined to prediction records (`JoinStore`), as in the trainer; the learners'
window MAE, RMSE and R² per role are set on the declared gauges (the trainer's
`BoundTrainerMetrics` sets the same children from its prequential stats).
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from service.demo.processes import ProcessGroup
from streaming.broker import free_port
from streaming.join import JoinStore
from streaming.metrics import TrainerMetrics
from streaming.served_score import ServedScore
from tests.deploy.catalog import task_of
from tests.deploy.grafana_queries import panel_queries
from tests.deploy.prometheus_local import write_local_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus package is not installed"),
]

MODEL = "reg"


def prom_query(base: str, expr: str) -> list:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - local test server
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def regression_trainer_metrics() -> CollectorRegistry:
    registry = CollectorRegistry()
    metrics = TrainerMetrics(registry)
    served, join = ServedScore(metrics, MODEL, min_events=5, task="regression"), JoinStore()
    for version, bias in ((1, 2.0), (2, 0.5)):
        for i in range(20):
            pid = f"v{version}-{i}"
            join.add_prediction(pid, {"x": float(i)}, now=0.0, served=[version, 10.0 + i + bias, 0.0])
            served.observe(join.add_label(f"e-{pid}", pid, 10.0 + i, now=1.0))
    for learner, role, mae in (("linear", "champion", 1.2), ("hatr", "challenger", 0.9), ("arfr", "challenger", 1.4)):
        metrics.online_mae.labels(MODEL, learner, role).set(mae)
        metrics.online_rmse.labels(MODEL, learner, role).set(mae * 1.3)
        metrics.online_r2.labels(MODEL, learner, role).set(1 - mae / 10)
    return registry


def test_every_regression_panel_query_has_series_for_a_regression_model(tmp_path: Path):
    queries = [q for q in panel_queries(variables={"model": MODEL}) if task_of(q.expr) == "regression"]
    assert len(queries) >= 6, [q.where for q in queries]
    port, prom = free_port(), free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=regression_trainer_metrics())
    procs = ProcessGroup(tmp_path / "logs")
    try:
        config = write_local_config(tmp_path / "prometheus.yml", service_port=None, trainer_ports=[port])
        procs.start("prometheus", ["prometheus", f"--config.file={config}",
                                   f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                   f"--web.listen-address=127.0.0.1:{prom}"])
        base = f"http://127.0.0.1:{prom}"
        deadline = time.monotonic() + 120
        while True:  # Prometheus up, and one scrape of the trainer stored
            procs.check_alive()
            try:
                if prom_query(base, f'perennial_served_mae{{model="{MODEL}"}}'):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Prometheus never stored a scrape of the trainer endpoint"
            time.sleep(0.5)
        empty = [f"{q.where}: {q.expr}" for q in queries if not prom_query(base, q.expr)]
        assert not empty, "regression queries with no series:\n" + "\n".join(empty)
        # the best challenger is the lowest MAE, and each served version has its own MAE
        (best,) = prom_query(base, f'min by (model) (perennial_online_mae{{model="{MODEL}",role="challenger"}})')
        assert float(best["value"][1]) == pytest.approx(0.9)
        live = prom_query(base, f'max by (model, version) (perennial_served_mae{{model="{MODEL}"}})')
        assert {s["metric"]["version"]: float(s["value"][1]) for s in live} == {"1": 2.0, "2": 0.5}
    finally:
        procs.stop_all()
        server.shutdown()
        thread.join(timeout=5)
