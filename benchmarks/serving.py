"""The serving race (issue 11): Perennial against MLServer, plain BentoML and uvicorn+Starlette.

One run, one server at a time, the same load generator and the same model — the agrawal
logistic regression in a Perennial registry, which every peer loads and calls per instance:

* **uvicorn + Starlette**, one route (`benchmarks/peers/starlette_app.py`): the Python limit;
* **plain BentoML**: that route mounted in a BentoML 1.4 service with Perennial's BentoML
  configuration (`benchmarks/peers/bentoml_service.py`): BentoML's own ceiling;
* **MLServer 1.7** with a custom runtime (`benchmarks/peers/mlserver_runtime.py`), OIP REST and
  gRPC, from the bench venv;
* **Perennial** (`perennial serve`, every feature on: validation, prediction ids, the
  prediction log to a real embedded broker, PSI drift gauges, metrics, registry watcher):
  ``/predict``, OIP REST (``/v2/models/<m>/infer``) and OIP gRPC.

Each at 1 and 64 instances per request. HTTP load is Debian's ``wrk -t1 -c32 -d10s``, gRPC a
lean ``grpc.aio`` client with 32 calls in flight (`benchmarks/loadgen.py`). What is not in
the project (wrk, MLServer) the benchmark installs itself (`benchmarks/bench_env.py`).
Prints a table (requests/s, instances/s, p50/p99, non-2xx, and for Perennial the prediction
records dropped, from its ``/metrics``), the acceptance ratios of issue 11 with PASS/FAIL,
and one JSON line with everything::

    .venv/bin/python benchmarks/serving.py                  # the full race (~4 min)
    .venv/bin/python benchmarks/serving.py --quick          # 3 s runs
    .venv/bin/python benchmarks/serving.py --only perennial,mlserver --json race.json
    .venv/bin/python benchmarks/serving.py --profile prof/  # + py-spy of Perennial at 64/request
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bench_env, loadgen  # noqa: E402 - needs ROOT on the path
from benchmarks.race_report import ratios, table, verdict_detail  # noqa: E402
from service.demo.processes import stop_process_group  # noqa: E402

MODEL = "bench"
KEY = "benchmark-key"
SERVERS = ("starlette", "bentoml", "mlserver", "perennial")
LABELS = {"starlette": "uvicorn + Starlette", "bentoml": "plain BentoML", "mlserver": "MLServer",
          "perennial": "Perennial"}
DROPPED = "perennial_prediction_log_dropped_total"  # streaming/metrics.py, counted in predictions
SPOOLED = "perennial_prediction_log_spooled_total"
PREDICTIONS = "perennial_predictions_total"


def build_registry(root: Path) -> tuple[list[dict], list[str]]:
    """Register the champion as ``perennial bootstrap`` would (a spec inferred from the data,
    the learner built from it); return 1,000 unseen instances and the feature order."""
    from training.learners.candidates import logistic_regression
    from training.reference import reference_histograms
    from training.registry import Registry
    from training.spec_inference import infer_spec
    from training.streams import iter_stream

    data = list(iter_stream("agrawal", 2000, 1))
    train = data[:1000]
    learner = logistic_regression(spec=infer_spec([x for x, _ in train], [y for _, y in train]))
    for x, y in train:
        learner.learn_one(x, y)
    registry = Registry(root, key=KEY)
    info = registry.publish(MODEL, learner, reference=reference_histograms([x for x, _ in train]))
    registry.promote(MODEL, info.version, "benchmark")
    return [x for x, _ in data[1000:]], list(learner.n_features_in)


# -- request bodies (a few distinct ones per size, cycled by the load generators) ----------------


def chunks(instances: list[dict], size: int, count: int = 16) -> list[list[dict]]:
    return [instances[i * size:(i + 1) * size] for i in range(min(count, len(instances) // size))]


def predict_bodies(instances: list[dict], size: int) -> list[bytes]:
    """``/predict`` bodies: Perennial's, and the Starlette peers take the same."""
    return [json.dumps({"model": MODEL, "instances": [{"features": x} for x in c]}).encode()
            for c in chunks(instances, size)]


def oip_rest_bodies(instances: list[dict], features: list[str], size: int) -> list[bytes]:
    """OIP REST bodies: the single ``features`` tensor ``[size, n_features]``, FP64 (exact)."""
    return [json.dumps({"inputs": [{"name": "features", "datatype": "FP64", "shape": [len(c), len(features)],
                                    "data": [x[f] for x in c for f in features]}]}).encode()
            for c in chunks(instances, size)]


def oip_grpc_bodies(instances: list[dict], features: list[str], size: int) -> list[bytes]:
    """Serialised ``ModelInferRequest``s with the same tensor as typed ``fp64_contents``
    (the portable form: both servers also read ``raw_input_contents``)."""
    from service.oip.generated import grpc_service_pb2 as pb

    out = []
    for c in chunks(instances, size):
        tensor = pb.ModelInferRequest.InferInputTensor(
            name="features", datatype="FP64", shape=[len(c), len(features)],
            contents=pb.InferTensorContents(fp64_contents=[x[f] for x in c for f in features]))
        out.append(pb.ModelInferRequest(model_name=MODEL, inputs=[tensor]).SerializeToString())
    return out


# -- servers -------------------------------------------------------------------------------------


@contextmanager
def server(argv: list[str], env: dict[str, str], ready_url: str, log: Path, cwd: Path = ROOT,
           timeout_s: float = 120.0) -> Iterator[subprocess.Popen]:
    """Start ``argv`` in its own process group, wait for ``ready_url`` to answer 200, stop it
    (the whole group: BentoML and MLServer fork workers) on the way out."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[:4]} exited: {log.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv[:4]} not ready after {timeout_s:.0f} s; log {log}")
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        yield proc
    finally:
        stop_process_group(proc, 30)


def metric_sum(text: str, name: str) -> float:
    """Sum of every sample of counter ``name`` in a Prometheus exposition."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Race:
    """The run's settings, inputs and results; one method per kind of load."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.wrk = bench_env.ensure_wrk()
        self.instances, self.features = build_registry(work / "registry")
        self.sizes = [int(s) for s in args.instances.split(",")]
        self.results: dict[str, dict] = {}
        self.peer_env = {"PEER_REGISTRY": str(work / "registry"), "PEER_MODEL": MODEL, "PEER_KEY": KEY,
                         "PYTHONPATH": str(ROOT), "BENTOML_DO_NOT_TRACK": "True"}

    def record(self, server: str, route: str, size: int, r: dict) -> dict:
        r = {k: v for k, v in r.items() if k != "raw"}
        r.update(server=server, route=route, instances_per_request=size,
                 instances_per_s=round(r["rps"] * size, 1), rps=round(r["rps"], 1))
        self.results[f"{server} {route} x{size}"] = r
        print(f"  {LABELS[server]:20s} {route:10s} x{size:<3d} {r['rps']:>9,.1f} req/s "
              f"{r['instances_per_s']:>10,.0f} inst/s  p99 {r['p99_ms']} ms  non-2xx {r['non_2xx']}  "
              f"client {r['client_cores']} cores"
              + (f"  dropped {r['dropped']:.0f}" if "dropped" in r else ""), flush=True)
        return r

    def http(self, server: str, route: str, url: str, path: str, bodies: dict[int, list[bytes]],
             metrics_url: str | None = None) -> None:
        for size in self.sizes:
            before = httpx.get(metrics_url).text if metrics_url else None
            r = loadgen.wrk_load(self.wrk, url, path, bodies[size], connections=self.args.connections,
                                 duration_s=self.args.duration, warmup_s=self.args.warmup)
            if metrics_url:
                r.update(self.log_delta(before, metrics_url))
            self.record(server, route, size, r)

    def grpc(self, server: str, address: str, metrics_url: str | None = None) -> None:
        for size in self.sizes:
            before = httpx.get(metrics_url).text if metrics_url else None
            r = loadgen.grpc_load(address, oip_grpc_bodies(self.instances, self.features, size),
                                  concurrency=self.args.connections, duration_s=self.args.duration,
                                  warmup_s=self.args.warmup)
            if metrics_url:
                r.update(self.log_delta(before, metrics_url))
            self.record(server, "grpc", size, r)

    def log_delta(self, before: str, metrics_url: str) -> dict:
        """Perennial's prediction-log counters over one run (warm-up included)."""
        after = httpx.get(metrics_url).text
        return {key: metric_sum(after, name) - metric_sum(before, name)
                for key, name in (("dropped", DROPPED), ("spooled", SPOOLED), ("predicted", PREDICTIONS))}

    def bodies(self) -> dict[str, dict[int, list[bytes]]]:
        return {"predict": {n: predict_bodies(self.instances, n) for n in self.sizes},
                "oip": {n: oip_rest_bodies(self.instances, self.features, n) for n in self.sizes}}


def run_starlette(race: Race) -> None:
    from streaming.broker import free_port

    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "benchmarks.peers.starlette_app:app", "--host", "127.0.0.1",
            "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
            "--log-level", "warning", "--timeout-keep-alive", "5"]
    url = f"http://127.0.0.1:{port}"
    with server(argv, race.peer_env, url + "/readyz", race.work / "starlette.log"):
        race.http("starlette", "/predict", url, "/predict", race.bodies()["predict"])


def run_bentoml(race: Race) -> None:
    from streaming.broker import free_port

    port = free_port()
    argv = [sys.executable, "-m", "bentoml", "serve", "benchmarks.peers.bentoml_service:Plain",
            "--working-dir", str(ROOT), "--host", "127.0.0.1", "--port", str(port), "--timeout-keep-alive", "5"]
    url = f"http://127.0.0.1:{port}"
    with server(argv, race.peer_env, url + "/readyz", race.work / "bentoml.log"):
        race.http("bentoml", "/predict", url, "/predict", race.bodies()["predict"])


def run_mlserver(race: Race) -> None:
    """``mlserver start`` on a model repository of one model, our runtime, from the bench venv.

    MLServer's defaults but three: the ports; ``debug`` off, which turns off its uvicorn
    access log (every server in the race runs without one, as Perennial does by default);
    and ``parallel_workers`` 0 unless told otherwise. MLServer's default (1) sends every
    inference to a worker process over a pipe; measured here that halves its 1-instance
    requests/s and gains nothing at 64 (benchmarks/README.md), so the race runs the faster
    MLServer, inference in its server process — one serving process, as Perennial's."""
    from streaming.broker import free_port

    python = bench_env.bench_python()
    repo = race.work / "mlserver"
    (repo / MODEL).mkdir(parents=True, exist_ok=True)
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    settings = {"debug": False, "host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port,
                "metrics_port": metrics_port}
    settings["parallel_workers"] = race.args.mlserver_parallel_workers
    (repo / "settings.json").write_text(json.dumps(settings))
    (repo / MODEL / "model-settings.json").write_text(json.dumps(
        {"name": MODEL, "implementation": "benchmarks.peers.mlserver_runtime.PerennialRuntime"}))
    url = f"http://127.0.0.1:{http_port}"
    argv = [str(python.parent / "mlserver"), "start", str(repo)]
    with server(argv, race.peer_env, f"{url}/v2/models/{MODEL}/ready", race.work / "mlserver.log", cwd=repo):
        race.http("mlserver", "oip-rest", url, f"/v2/models/{MODEL}/infer", race.bodies()["oip"])
        race.grpc("mlserver", f"127.0.0.1:{grpc_port}")


def run_perennial(race: Race) -> None:
    from streaming.broker import EmbeddedBroker, free_port

    port, grpc_port = free_port(), free_port()
    env = {"PERENNIAL_REGISTRY_KEY": KEY, "PERENNIAL_ADMIN_TOKEN": "bench",
           "PERENNIAL_SPOOL_DIR": str(race.work / "spool"), "PYTHONPATH": str(ROOT)}
    url = f"http://127.0.0.1:{port}"
    with EmbeddedBroker(port=free_port(), log_path=race.work / "broker.log") as broker:
        argv = [sys.executable, "-m", "service.cli", "serve", "--registry", str(race.work / "registry"),
                "--host", "127.0.0.1", "--port", str(port), "--grpc-port", str(grpc_port),
                "--bootstrap-servers", broker.bootstrap_servers]
        with server(argv, env, url + "/readyz", race.work / "perennial.log") as proc:
            served = httpx.get(f"{url}/v2/models/{MODEL}").json()["parameters"]["feature_names"]
            if served != race.features:  # the tensors' columns must mean the same to both servers
                raise RuntimeError(f"Perennial serves features {served}, the race sends {race.features}")
            bodies, metrics = race.bodies(), f"{url}/metrics"
            race.http("perennial", "/predict", url, "/predict", bodies["predict"], metrics)
            race.http("perennial", "oip-rest", url, f"/v2/models/{MODEL}/infer", bodies["oip"], metrics)
            race.grpc("perennial", f"127.0.0.1:{grpc_port}", metrics)
            if race.args.profile:
                profile_perennial(race, proc, url, bodies["predict"][max(race.sizes)])
            time.sleep(3)  # let the prediction log drain, then the whole run's count
            text = httpx.get(metrics).text
            race.results["perennial totals"] = {"dropped": metric_sum(text, DROPPED),
                                                "spooled": metric_sum(text, SPOOLED),
                                                "predicted": metric_sum(text, PREDICTIONS)}


def profile_perennial(race: Race, proc: subprocess.Popen, url: str, bodies: list[bytes]) -> None:
    """An extra, unmeasured ``/predict`` run at the largest size under py-spy (the worker and
    its threads); folded stacks and their summary go to ``--profile DIR``."""
    from benchmarks import profiling

    out = race.args.profile
    out.mkdir(parents=True, exist_ok=True)
    raw = out / f"perennial-predict-x{max(race.sizes)}.txt"
    py_spy = bench_env.bench_python().parent / "py-spy"
    sampler = profiling.record(py_spy, proc.pid, race.args.duration, raw)
    time.sleep(1)  # py-spy attaches before the load starts
    loadgen.wrk_load(race.wrk, url, "/predict", bodies, connections=race.args.connections,
                     duration_s=race.args.duration, warmup_s=0)
    sampler.wait(timeout=60)
    summary = profiling.summarize(raw, max(1, round(race.args.duration)))
    (out / "summary.txt").write_text(profiling.report(summary) + "\n")
    race.results["perennial profile"] = {"raw": str(raw), **summary}
    print(f"  py-spy of /predict x{max(race.sizes)}: {raw}\n{profiling.report(summary)}", flush=True)


RUNNERS = {"starlette": run_starlette, "bentoml": run_bentoml, "mlserver": run_mlserver,
           "perennial": run_perennial}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run (wrk -d)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c, and gRPC calls in flight")
    parser.add_argument("--instances", default="1,64", help="instances per request, comma-separated")
    parser.add_argument("--only", default=",".join(SERVERS), help=f"servers to race, of {','.join(SERVERS)}")
    parser.add_argument("--mlserver-parallel-workers", type=int, default=0,
                        help="MLServer's parallel_workers (0: inference in its server process, its "
                        "faster setting here; MLServer's own default is 1)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="after Perennial's measured runs, profile its worker with py-spy under "
                        "/predict at the largest size (an extra run, not in the table)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SERVERS))
    if unknown:
        parser.error(f"unknown server(s) {unknown}; choose from {','.join(SERVERS)}")

    work = Path(tempfile.mkdtemp(prefix="perennial-race-"))
    load_before = os.getloadavg()
    race = Race(args, work)
    print(f"race in {work}: {os.cpu_count()} CPUs, load average {load_before[0]:.2f}, "
          f"wrk -t1 -c{args.connections} -d{args.duration:g}s", flush=True)
    for name in SERVERS:
        if name in only:
            print(f"{LABELS[name]}:", flush=True)
            RUNNERS[name](race)

    verdicts = ratios(race.results)
    print("\n" + table(race.results, LABELS) + "\n")
    for name, v in verdicts.items():
        print(f"{v['verdict']:4s}  {name}: {verdict_detail(v)}")
    summary = {"machine": f"{os.cpu_count()} CPUs", "load_average_before": [round(x, 2) for x in load_before],
               "load_average_after": [round(x, 2) for x in os.getloadavg()], "duration_s": args.duration,
               "connections": args.connections, "results": race.results, "acceptance": verdicts}
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
