"""The closed loop, end to end, on one machine: what `perennial demo` runs.

1. start the embedded broker;
2. bootstrap a model on the first part of a drifting stream (`perennial bootstrap`);
3. start the trainer (`perennial train`) and the service (`perennial serve`);
4. drive traffic like an application: ``/predict``, then the true label (regression: the
   true value) to ``/feedback`` after a delay — the trainer learns only from what came
   through the service;
5. show a live status line and the events that matter (`service.demo.terminal`), then a
   summary, the JSON (replay's fields plus ``served_versions``) and a PNG timeline, all in
   the task's metrics: accuracy for classification, MAE (RMSE, R²) for regression.

Every process it starts is stopped at the end, on failure and on Ctrl-C (`ProcessGroup`).
Every process it starts listens on 127.0.0.1 only: a demo serves the local machine.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from service.demo.processes import ProcessGroup
from service.demo.status import TrainerStatus, scrape
from service.demo.terminal import DemoTerminal, EventFeed, legend, logs_to_file
from service.demo.traffic import TrafficDriver
from streaming.broker import free_port, wait_until_ready
from training.baselines import Baselines
from training.evaluation import PrequentialMetrics, RegressionMetrics
from training.learners.candidates import DEFAULT_CANDIDATES
from training.registry import Registry, VersionNotFoundError
from training.spec import Task
from training.streams import iter_stream, stream_info
from training.streams.tabular import drift_positions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """Defaults finish in about five minutes on two cores.

    Attributes:
        stream: drifting stream to serve and learn (built-in name or CSV path); a
            regression stream (``friedman-drift``) runs the same loop scored by error.
        events: total events, bootstrap part included.
        bootstrap_events: events the first champion is trained on, offline.
        rate: target events per second through ``/predict``.
        batch: instances per ``/predict`` request.
        candidates: learners, comma-separated; None: the task's defaults
            (``logreg,hat,arf`` or ``linear,hat,arf``).
        label_delay_s: seconds between a prediction and its label arriving as feedback.
        window: events per window on the timeline.
        workdir: registry, checkpoints and process logs (wiped at start).
        trainer_env: extra ``PERENNIAL_*`` settings for the trainer (loop knobs).
    """

    stream: str = "agrawal-drift"
    events: int = 30_000
    bootstrap_events: int = 2_000
    seed: int = 42
    model: str = "demo"
    candidates: str | None = None
    rate: float = 150.0
    batch: int = 10
    label_delay_s: float = 2.0
    window: int = 500
    workdir: Path = Path(".perennial/demo")
    catch_up_timeout_s: float = 120.0
    # a demo is short: republish the learning champion often so serving visibly follows it
    trainer_env: dict[str, str] = field(default_factory=lambda: {"PERENNIAL_REFRESH_EVERY": "500"})


def run_demo(config: DemoConfig, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo; ``say`` gets the terminal's lines (status and events), nothing else."""
    info = stream_info(config.stream)
    workdir = config.workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    registry_dir, checkpoints, logs = workdir / "registry", workdir / "checkpoints", workdir / "logs"
    term = DemoTerminal(say)
    with logs_to_file(logs / "demo.log"):
        procs = ProcessGroup(logs)
        try:
            return _run(config, info, procs, registry_dir, checkpoints, logs, term)
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0]
            term.event("failure", f"{type(exc).__name__}: {first} (logs in {logs})")
            raise
        finally:
            procs.stop_all()
            term.status(f"stopped every process the demo started; logs in {logs}")


def _run(config, info, procs, registry_dir, checkpoints, logs, term: DemoTerminal) -> dict[str, Any]:
    broker_port, http_port, grpc_port, metrics_port = (free_port() for _ in range(4))
    servers = f"127.0.0.1:{broker_port}"
    term.status(f"starting the embedded broker on {servers} (memory only)")
    broker = procs.perennial("broker", "broker", "--port", str(broker_port), "--host", "127.0.0.1")
    wait_until_ready(servers, timeout_s=60, process=broker)

    term.status(f"bootstrapping '{config.model}' on the first {config.bootstrap_events:,} events of {config.stream}")
    chosen = ("--candidates", config.candidates) if config.candidates else ()
    code = procs.perennial("bootstrap", "bootstrap", "--stream", config.stream, "--model", config.model,
                           "--registry", str(registry_dir), "--events", str(config.bootstrap_events),
                           "--seed", str(config.seed), *chosen).wait()
    if code != 0:
        raise RuntimeError(f"bootstrap failed (exit {code}); see {logs / 'bootstrap.log'}")
    procs.children = [(n, p) for n, p in procs.children if n != "bootstrap"]
    registry = Registry(registry_dir)
    first = registry.load(config.model, "champion")
    task = first.learner.task
    score = _score_name(task)
    term.status(f"champion v{first.info.version}: {first.info.learner} "
                f"(validation {score} {first.info.metrics.get(score.lower(), 0):.3f})")
    term.status(legend(config.candidates or ",".join(DEFAULT_CANDIDATES[task])))

    term.status("starting the trainer and the service (127.0.0.1 only)")
    procs.perennial("trainer", "train", "--model", config.model, "--bootstrap-servers", servers,
                    "--registry", str(registry_dir), "--checkpoint-dir", str(checkpoints),
                    "--metrics-port", str(metrics_port), *chosen, env=config.trainer_env)
    procs.perennial("service", "serve", "--registry", str(registry_dir), "--host", "127.0.0.1",
                    "--port", str(http_port), "--grpc-port", str(grpc_port), "--bootstrap-servers", servers)
    base_url = f"http://127.0.0.1:{http_port}"
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    _wait_ready(procs, base_url, metrics_url, config.model)
    term.status(f"service ready on {base_url} (gRPC :{grpc_port}); trainer metrics on {metrics_url}")

    events = list(iter_stream(config.stream, config.events, config.seed))[config.bootstrap_events:]
    baselines = Baselines(first.learner, config.window, delay=int(config.rate * config.label_delay_s))
    driver = TrafficDriver(base_url, config.model, task=task, batch=config.batch, rate=config.rate,
                           label_delay_s=config.label_delay_s)
    windows: list[dict[str, Any]] = []
    served_metrics: PrequentialMetrics | RegressionMetrics = (
        RegressionMetrics(config.window) if task is Task.REGRESSION else PrequentialMetrics(config.window))
    key = score.lower()  # the windows' keys: accuracy / static_accuracy ..., or mae / static_mae ...
    acc = {"served": 0.0, "static": 0.0, "online_only": 0.0, "n": 0}
    last_status = [0.0, TrainerStatus()]
    feed = EventFeed(registry, config.model)

    def on_event(i, x, y, prediction) -> None:
        if isinstance(served_metrics, RegressionMetrics):
            served_metrics.update(float(y), float(prediction["value"]))
        else:
            proba = prediction.get("probabilities") or {}
            served_metrics.update(str(y), str(prediction["label"]),
                                  {str(k): v for k, v in proba.items()} if isinstance(proba, dict) else None)
        base = baselines.step(x, y)  # True/False per baseline, or its absolute error
        acc["served"] += driver.served.scores[-1]
        acc["static"] += base["static"]
        acc["online_only"] += base["online_only"]
        acc["n"] += 1
        if acc["n"] == config.window:
            windows.append({"end": config.bootstrap_events + i + 1, key: acc["served"] / acc["n"],
                            f"static_{key}": acc["static"] / acc["n"],
                            f"online_only_{key}": acc["online_only"] / acc["n"],
                            "served_version": driver.served.versions[-1]})
            acc.update(served=0.0, static=0.0, online_only=0.0, n=0)

    def on_tick() -> None:
        now = time.monotonic()
        if now - last_status[0] < 2.0:
            return
        procs.check_alive()
        status = scrape(metrics_url, config.model) or last_status[1]
        last_status[:] = [now, status]
        for kind, text in feed.new_events(status):
            term.event(kind, text)
        served = driver.served
        term.status(f"{len(served.scores):>6,}/{len(events):,} served v{served.versions[-1]} "
                    f"{score} {served.recent(config.window):.3f} | "
                    f"{status.line(champion_fallback=registry.alias(config.model, 'champion'))}")

    started = time.monotonic()
    try:
        served = driver.run(events, on_event=on_event, on_tick=on_tick)
    finally:
        driver.close()
    term.status(f"sent {len(served.scores):,} predictions and their labels in {time.monotonic() - started:.0f} s; "
                "waiting for the trainer to catch up")
    status = _catch_up(procs, metrics_url, config, len(served.scores), term)
    for kind, text in feed.new_events(status):
        term.event(kind, text)
    return _result(config, info, registry, served, served_metrics, baselines, windows, status,
                   time.monotonic() - started)


def _wait_ready(procs: ProcessGroup, base_url: str, metrics_url: str, model: str, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    service_ready = trainer_up = False
    while time.monotonic() < deadline:
        procs.check_alive()
        if not service_ready:
            with contextlib.suppress(httpx.HTTPError):
                service_ready = httpx.get(f"{base_url}/v2/health/ready", timeout=2).status_code == 200
        trainer_up = trainer_up or scrape(metrics_url, model) is not None
        if service_ready and trainer_up:
            return
        time.sleep(0.5)
    raise RuntimeError(f"service ready: {service_ready}, trainer up: {trainer_up} after {timeout_s:.0f} s")


def _catch_up(procs, metrics_url, config, sent: int, term: DemoTerminal) -> TrainerStatus:
    deadline = time.monotonic() + config.catch_up_timeout_s
    status = TrainerStatus()
    while time.monotonic() < deadline:
        procs.check_alive()
        status = scrape(metrics_url, config.model) or status
        if status.learned >= sent:
            break
        time.sleep(1.0)
    else:
        term.event("warning", f"the trainer learned {status.learned:,.0f} of {sent:,} events before the timeout")
    time.sleep(2.0)  # the service notices the last alias move within its watch interval
    return scrape(metrics_url, config.model) or status


def _result(config, info, registry, served, served_metrics, baselines, windows, status, elapsed) -> dict[str, Any]:
    n = len(served.scores)
    regression = served.task is Task.REGRESSION
    keys = ("mae", "rmse", "r2") if regression else ("accuracy", "precision", "recall", "f1_macro", "log_loss")
    window_key = "window_mae" if regression else "window_accuracy"
    first_seen: dict[int, int] = {}
    for i, v in enumerate(served.versions):
        first_seen.setdefault(v, config.bootstrap_events + i)
    decisions = registry.decisions(config.model)

    def moved(action: str) -> list[dict[str, Any]]:
        out = []
        for d in decisions:
            if d["action"] != action or d["alias"] != "champion" or d.get("from") is None:
                continue
            to = d["to"]
            learner = d.get("learner")
            if learner is None:
                try:
                    learner = registry.info(config.model, to).learner
                except VersionNotFoundError:  # pruned by retention since
                    learner = None
            if action == "promote":
                # first response with this version or a later one (a refresh of the promoted
                # learner can reach the service before the promoted snapshot itself)
                at = min((i for v, i in first_seen.items() if v >= to), default=None)
            else:  # a rollback goes back to an older version: the first time it is served again
                at = _served_again(served.versions, to, first_seen, d["from"], config.bootstrap_events)
            out.append({"at": at, "from_version": d["from"], "to_version": to,
                        "learner": learner, "reason": d["reason"],
                        "served": at is not None, "time": d["time"]})
        return out

    promotions, rollbacks = moved("promote"), moved("rollback")
    total = config.events
    return {
        "stream": config.stream,
        "task": served.task.value,
        "seed": config.seed,
        "events": n,
        "bootstrap_events": config.bootstrap_events,
        "events_per_second": n / elapsed if elapsed else 0.0,
        "elapsed_seconds": elapsed,
        "prequential": {k: v for k, v in served_metrics.summary().items() if k in keys},
        "window": config.window,
        "windows": windows,
        "true_drifts": drift_positions(total, info.n_phases) if info.n_phases > 1 else [],
        "drifts": [],  # the trainer counts drifts (perennial_drift_detected_total); see "trainer"
        "promotions": [p for p in promotions if "refresh" not in p["reason"]],
        "rollbacks": rollbacks,
        "baselines": baselines.summary(),
        "learners": {lid: {"role": role, window_key: a} for lid, (role, a) in status.learners.items()},
        "served_versions": served.versions_in_order(),
        "failed_requests": served.failed_requests,
        "feedback_sent": served.feedback_sent,
        "trainer": {"learned": status.learned, "drifts": status.drifts, "promotions": status.promotions,
                    "rollbacks": status.rollbacks, "champion_version": status.champion_version},
    }


def _served_again(versions: list[int], to: int, first_seen: dict[int, int], rolled_from: int | None,
                  offset: int) -> int | None:
    """Event index at which ``to`` is served after the version it replaced was served."""
    start = first_seen.get(rolled_from, 0) - offset if rolled_from in first_seen else 0
    for i in range(max(0, start), len(versions)):
        if versions[i] == to:
            return offset + i
    return None


def _score_name(task: Task) -> str:
    """The one number the status line and the summary lead with: higher or lower is better."""
    return "MAE" if task is Task.REGRESSION else "accuracy"


def _scores(metrics: dict[str, float]) -> str:
    """The summary's scores of one row, in the task's metrics.

    >>> _scores({"mae": 2.0, "rmse": 2.5, "r2": 0.5})
    'MAE 2.0000  RMSE 2.5000  R² 0.5000'
    >>> _scores({"accuracy": 0.9, "f1_macro": 0.8})
    'accuracy 0.9000'
    """
    if "mae" in metrics:
        return f"MAE {metrics['mae']:.4f}  RMSE {metrics['rmse']:.4f}  R² {metrics['r2']:.4f}"
    return f"accuracy {metrics['accuracy']:.4f}"


def summary(result: dict[str, Any]) -> str:
    lines = [
        f"\n{result['stream']}: {result['events']:,} events served and learned in {result['elapsed_seconds']:.0f} s",
        f"  served by Perennial        {_scores(result['prequential'])}",
    ]
    for name, b in result["baselines"].items():
        lines.append(f"  baseline {name:<17} {_scores(b)}")
    t = result["trainer"]
    lines.append(f"  trainer: learned {t['learned']:,.0f}, drifts {t['drifts']:.0f}, "
                 f"promotions {t['promotions']:.0f}, rollbacks {t['rollbacks']:.0f}")
    lines.append(f"  versions served, in order: {result['served_versions']}")
    for p in result["promotions"]:
        where = f"first served at event {p['at']:,}" if p["served"] else "never served"
        learner = p["learner"] or "learner not recorded: version pruned by retention"
        lines.append(f"  promotion v{p['from_version']} -> v{p['to_version']} ({learner}), {where}: {p['reason']}")
    for r in result["rollbacks"]:
        lines.append(f"  rollback v{r['from_version']} -> v{r['to_version']}: {r['reason']}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - `perennial demo` is the entry point
    sys.exit("use: perennial demo")
