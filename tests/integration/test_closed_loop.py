"""The mission, closed: labels that come in through the service's /feedback teach the trainer,
the trainer promotes a better model, the service serves it — and Prometheus sees all of it.

Real parts only: the embedded broker, `perennial bootstrap`, `perennial train` and
`perennial serve` as processes, a real Prometheus server (Debian's package) scraping the
service and the trainer. Then:

1. every Grafana panel query is evaluated through Prometheus' HTTP API and must return series
   (the regression-only ones none: this model classifies; test_dashboard_tasks.py proves them);
2. the trainer is restarted with the serving-side promotion guard pointed at that
   Prometheus and a latency objective no version can meet: the next promotion it makes is
   rolled back, with the failing query and its value as the reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import httpx
import pytest

from service.demo.processes import ProcessGroup
from service.demo.traffic import TrafficDriver
from streaming.broker import free_port
from tests.deploy.catalog import task_of
from tests.deploy.grafana_queries import panel_queries
from tests.deploy.prometheus_local import write_local_config
from tests.helpers import run_perennial, wait_for
from training.registry import Registry
from training.streams import iter_stream

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus package is not installed"),
]

MODEL = "loop"
BOOTSTRAP = 1000
FAST_LOOP = {  # promotion decisions within a few thousand events
    "PERENNIAL_CHECK_EVERY": "50",
    "PERENNIAL_PROMOTION_MIN_EVENTS": "300",
    "PERENNIAL_PROMOTION_WINDOW": "600",
    "PERENNIAL_REFRESH_EVERY": "0",  # served versions change only by promotion or rollback
    "PERENNIAL_CHECKPOINT_INTERVAL_S": "1",
}
SLO_NO_VERSION_MEETS = json.dumps([{
    "name": "p99_latency_seconds",
    "query": 'histogram_quantile(0.99, sum by (le) (rate(perennial_inference_seconds_bucket{model="{model}"}[1m])))',
    "max_value": 1e-7,
}])


def prom_query(base: str, expr: str) -> list:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - local test server
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait(condition, what: str, timeout_s: float, procs: ProcessGroup):  # noqa: ANN001, ANN201
    """`tests.helpers.wait_for`, failing at once with the log of a process that died."""
    return wait_for(condition, what, guard_s=timeout_s, every_s=0.5, alive=procs.check_alive)


class Loop:
    """The running system plus helpers to drive it."""

    def __init__(self, tmp: Path, broker: str) -> None:
        self.tmp, self.broker = tmp, broker
        self.registry_dir, self.checkpoints = tmp / "registry", tmp / "checkpoints"
        self.procs = ProcessGroup(tmp / "logs")
        self.http, self.grpc, self.metrics, self.prom = (free_port() for _ in range(4))
        self.base = f"http://127.0.0.1:{self.http}"
        self.prom_url = f"http://127.0.0.1:{self.prom}"
        self.events = iter(list(iter_stream("agrawal-drift", 40_000, seed=11))[BOOTSTRAP:])
        self.served_versions: list[int] = []

    def registry(self) -> Registry:
        return Registry(self.registry_dir)

    def start_trainer(self, **env: str) -> None:
        self.procs.perennial("trainer", "train", "--model", MODEL, "--bootstrap-servers", self.broker,
                             "--registry", str(self.registry_dir), "--checkpoint-dir", str(self.checkpoints),
                             "--metrics-port", str(self.metrics), "--candidates", "logreg,hat",
                             env={**FAST_LOOP, **env})
        wait(lambda: _get(f"http://127.0.0.1:{self.metrics}/metrics"), "trainer metrics", 120, self.procs)

    def drive_until(self, condition, what: str, max_events: int, drain_s: float = 180.0) -> None:
        """Send traffic (predictions, then labels through /feedback) until ``condition()``.

        After ``max_events`` the trainer may still be behind what was sent (a loaded machine
        learns slower than the traffic arrives): wait up to ``drain_s`` for it to catch up
        before calling the budget spent."""
        driver = TrafficDriver(self.base, MODEL, batch=20, rate=400, label_delay_s=0.5)
        sent = 0
        try:
            while sent < max_events:
                chunk = [next(self.events) for _ in range(200)]
                driver.run(chunk)
                sent += len(chunk)
                self.procs.check_alive()
                if condition():
                    self.served_versions += driver.served.versions
                    return
        finally:
            driver.close()
        self.served_versions += driver.served.versions
        try:
            wait(condition, f"{what} once the trainer learned the {sent} events sent", drain_s, self.procs)
        except AssertionError as e:
            raise AssertionError(f"no {what} after {sent} events; served {sorted(set(self.served_versions))}"
                                 ) from e


def _get(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def loop(tmp_path: Path, broker: str):
    env = Loop(tmp_path, broker)
    try:
        yield env
    finally:
        env.procs.stop_all()


def test_feedback_drives_promotion_served_and_observed(loop: Loop):
    procs = loop.procs
    boot = run_perennial("bootstrap", "--stream", "agrawal-drift", "--model", MODEL,
                         "--registry", str(loop.registry_dir), "--events", str(BOOTSTRAP), "--seed", "11",
                         "--candidates", "logreg,hat", timeout=300)
    assert boot.returncode == 0, boot.stdout + boot.stderr
    first = loop.registry().alias(MODEL, "champion")

    loop.start_trainer()
    procs.perennial("service", "serve", "--registry", str(loop.registry_dir), "--port", str(loop.http),
                    "--grpc-port", str(loop.grpc), "--bootstrap-servers", loop.broker)
    config = write_local_config(loop.tmp / "prometheus.yml", service_port=loop.http, trainer_ports=[loop.metrics])
    check = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    procs.start("prometheus", ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={loop.tmp / 'tsdb'}",
                               f"--web.listen-address=127.0.0.1:{loop.prom}"])
    wait(lambda: _get(f"{loop.base}/v2/health/ready"), "service ready", 180, procs)

    # 1. a promotion made by the trainer from /feedback labels, then served
    def promoted_and_served() -> bool:
        promoted = [d["to"] for d in loop.registry().decisions(MODEL)
                    if d["action"] == "promote" and d["to"] != first]
        return bool(promoted) and any(v in promoted for v in _served_now(loop))

    loop.drive_until(promoted_and_served, "promotion served", max_events=20_000)
    promotion = next(d for d in loop.registry().decisions(MODEL) if d["action"] == "promote" and d["to"] != first)
    assert "challenger better" in promotion["reason"] and "McNemar" in promotion["reason"]
    assert first in loop.served_versions and promotion["to"] in loop.served_versions

    # 2. Prometheus scraped both processes; every dashboard query has series
    wait(lambda: len(prom_query(loop.prom_url, "up == 1")) == 2, "both targets up", 60, procs)
    wait(lambda: prom_query(loop.prom_url, "perennial_promotions_total > 0"), "promotion scraped", 60, procs)
    time.sleep(3)  # rate() windows need two samples after the last traffic
    # (a classification model: the regression-only panels, proven by test_dashboard_tasks.py,
    # must stay empty for it instead)
    queries = panel_queries(variables={"model": MODEL})
    empty = [q.where + ": " + q.expr for q in queries
             if task_of(q.expr) != "regression" and not prom_query(loop.prom_url, q.expr)]
    assert not empty, "queries with no series:\n" + "\n".join(empty)
    leaked = [q.where for q in queries if task_of(q.expr) == "regression" and prom_query(loop.prom_url, q.expr)]
    assert not leaked, f"regression panels with series for a classification model: {leaked}"

    # 3. the serving-side guard rolls back a promotion whose version misses the objective
    procs.stop("trainer")  # SIGTERM: it checkpoints and commits, then the new one resumes
    promotions_before = sum(d["action"] == "promote" for d in loop.registry().decisions(MODEL))
    loop.start_trainer(PERENNIAL_PROMETHEUS_URL=loop.prom_url, PERENNIAL_GUARD_CHECKS=SLO_NO_VERSION_MEETS,
                       PERENNIAL_GUARD_INTERVAL_S="1", PERENNIAL_GUARD_WARMUP_S="2",
                       PERENNIAL_ROLLBACK_GUARD_EVENTS="0")

    def guard_rolled_back() -> dict | None:
        decisions = loop.registry().decisions(MODEL)
        if sum(d["action"] == "promote" for d in decisions) <= promotions_before:
            return None
        return next((d for d in decisions if d["action"] == "rollback"
                     and "promotion guard" in d["reason"]), None)

    loop.drive_until(guard_rolled_back, "guard rollback", max_events=30_000)
    rollback = guard_rolled_back()
    assert "p99_latency_seconds" in rollback["reason"] and "> max 1e-07" in rollback["reason"]
    assert "perennial_inference_seconds_bucket" in rollback["reason"]
    registry = loop.registry()
    assert registry.alias(MODEL, "champion") == rollback["to"]
    wait(lambda: rollback["to"] in _served_now(loop), "rolled-back version served again", 30, procs)


def _served_now(loop: Loop) -> set[int]:
    """Versions the service answers with right now (and all it answered so far)."""
    seen = set(loop.served_versions)
    x, _ = next(iter(iter_stream("agrawal", 1)))
    r = httpx.post(f"{loop.base}/predict", json={"model": MODEL, "instances": [{"features": x}]}, timeout=10)
    if r.status_code == 200:
        loop.served_versions.append(r.json()["version"])
        seen.add(r.json()["version"])
    return seen
