"""Serving throughput: Perennial's service against a plain adaptive-batching BentoML service.

Same model (a logistic regression from the registry), same client, same requests (one
instance per ``POST /predict``), concurrency 16 and 64, one server at a time on this
machine. Perennial runs with every feature on: validation, prediction ids, prediction log to
a real (embedded) broker, PSI gauges, metrics, registry watcher, gRPC server. Reports
requests/s, p50, p99 and the share of non-200 answers, plus gRPC (OIP ``ModelInfer`` through
tritonclient) requests/s.

    .venv/bin/python benchmarks/serving.py [--duration 10] [--json serving.json]

Targets (issue 3): Perennial >= 0.9x the baseline's requests/s, and no 503 at concurrency 64
(the baseline runs with a tight ``max_latency_ms`` and sheds load with 503 there).

``--compare DIR`` also serves the same registry, broker and requests from another source tree
(for example ``git archive <commit>`` of an earlier Perennial, unpacked), right after this
one, ``--rounds`` times in turn, and reports this tree's requests/s over that tree's: how much
a change to the serving path costs (issue 9: raw rows through the spec's validator against the
numeric-only path they replace, at most 10 % slower). ``--skip-baseline`` leaves out the
plain BentoML servers. ``--plane-requests N`` also times N in-process ``DataPlane.predict``
calls per tree (1 and 32 instances each, prediction records built, nothing sent): CPU time
per request, which a shared machine's load disturbs far less than requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.demo.processes import stop_process_group  # noqa: E402 - needs ROOT on the path

MODEL = "bench"
KEY = "benchmark-key"


def build_registry(root: Path) -> list[dict]:
    """Register the benchmark champion; return request instances (feature dicts)."""
    from training.learners.candidates import logistic_regression
    from training.reference import reference_histograms
    from training.registry import Registry
    from training.streams import iter_stream

    data = list(iter_stream("agrawal", 2000, 1))
    learner = logistic_regression()
    for x, y in data[:1000]:
        learner.learn_one(x, y)
    registry = Registry(root, key=KEY)
    info = registry.publish(MODEL, learner, reference=reference_histograms([x for x, _ in data[:1000]]))
    registry.promote(MODEL, info.version, "benchmark")
    return [x for x, _ in data[1000:]]


@contextmanager
def server(argv: list[str], env: dict[str, str], url: str, log: Path, cwd: Path = ROOT):
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                cwd=cwd, start_new_session=True)
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
                try:
                    if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.3)
            yield proc
        finally:
            stop_process_group(proc, 30)


def summarize(latencies: list[float], statuses: list[int], seconds: float) -> dict:
    lat = np.array(latencies) * 1000
    n = len(statuses)
    return {
        "requests": n,
        "rps": round(n / seconds, 1),
        "ok_rps": round(sum(s == 200 for s in statuses) / seconds, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if n else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 2) if n else None,
        "non_200_share": round(sum(s != 200 for s in statuses) / n, 4) if n else None,
        "status_503": sum(s == 503 for s in statuses),
    }


class _Connection:
    """A minimal keep-alive HTTP/1.1 client connection.

    Why not httpx: on 2 cores httpx's per-request overhead caps the client near the server's
    rate and hides the difference between the two servers; this costs a few microseconds.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        line = await self.reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        status = int(line.split()[1])
        length, chunked, close = 0, False, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            while (size := int((await self.reader.readline()).strip() or b"0", 16)):
                await self.reader.readexactly(size + 2)
            await self.reader.readline()
        else:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def http_load(url: str, bodies: list[bytes], concurrency: int, duration: float, warmup: float) -> dict:
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    statuses: list[int] = []
    start = time.perf_counter()
    measure_from, end = start + warmup, start + warmup + duration

    async def worker(i: int) -> None:
        conn = _Connection(host, int(port))
        k = i
        while (now := time.perf_counter()) < end:
            body = bodies[k % len(bodies)]
            k += concurrency
            try:
                status = await conn.post("/predict", body)
            except (OSError, ValueError, asyncio.IncompleteReadError):
                conn.close()
                status = 599
            if now >= measure_from:
                latencies.append(time.perf_counter() - now)
                statuses.append(status)
        conn.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return summarize(latencies, statuses, duration)


async def grpc_load(address: str, rows: np.ndarray, concurrency: int, duration: float, warmup: float) -> dict:
    import tritonclient.grpc.aio as tgrpc

    client = tgrpc.InferenceServerClient(address)
    latencies: list[float] = []
    statuses: list[int] = []
    start = time.perf_counter()
    measure_from, end = start + warmup, start + warmup + duration

    async def worker(i: int) -> None:
        k = i
        while (now := time.perf_counter()) < end:
            tensor = tgrpc.InferInput("features", [1, rows.shape[1]], "FP32")
            tensor.set_data_from_numpy(rows[k % len(rows)][None, :])
            k += concurrency
            try:
                await client.infer(MODEL, [tensor])
                status = 200
            except Exception:
                status = 500
            if now >= measure_from:
                latencies.append(time.perf_counter() - now)
                statuses.append(status)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    await client.close()
    return summarize(latencies, statuses, duration)


#: Run with PYTHONPATH=<tree>: the data plane of that tree over the benchmark registry, in one
#: process, without HTTP; CPU microseconds (all threads) per `DataPlane.predict`, best and
#: median of ten chunks.
PLANE_SNIPPET = """
import asyncio, json, sys, time
from service.dataplane import DataPlane
from service.metrics_exposition import build_service_metrics
from service.model_holder import ModelHolder, build_champion
from service.prediction_log import KafkaEventLog
from training.registry import Registry

registry_dir, model, key, n, per_request = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
instances = json.load(sys.stdin)
metrics = build_service_metrics()

class Log(KafkaEventLog):  # records are built as when logging is on; nothing is sent
    enabled = True
    def log_predictions(self, model, records):
        pass

def build(loaded):
    return build_champion(loaded, metrics, max_batch_size=64, max_latency_ms=60000)

holder = ModelHolder(Registry(registry_dir, key=key), build, metrics)
holder.poll_once()
plane = DataPlane(holder, metrics, Log("", metrics), max_instances=1024)
bodies = [instances[i:i + per_request] for i in range(0, len(instances) - per_request + 1, per_request)]

async def go():
    for i in range(200):
        await plane.predict(model, bodies[i % len(bodies)])
    chunks, k = [], 0
    for _ in range(10):  # the best tenth: what a busy shared machine disturbs least
        cpu = time.process_time()
        for _ in range(n // 10):
            await plane.predict(model, bodies[k % len(bodies)])
            k += 1
        chunks.append((time.process_time() - cpu) / (n // 10) * 1e6)
    return {"cpu_us": round(min(chunks), 1), "median_cpu_us": round(sorted(chunks)[5], 1)}

print(json.dumps(asyncio.run(go())))
"""


def plane_cost(tree: Path, work: Path, instances: list[dict], n: int, per_request: int) -> dict:
    """`PLANE_SNIPPET` run from source tree ``tree``: the in-process cost of one predict."""
    out = subprocess.run(
        [sys.executable, "-c", PLANE_SNIPPET, str(work / "registry"), MODEL, KEY, str(n), str(per_request)],
        input=json.dumps([{"features": x} for x in instances]), capture_output=True, text=True, check=True,
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree), "PERENNIAL_REGISTRY_KEY": KEY},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_perennial(name: str, tree: Path, round_: int, bootstrap: str, work: Path, levels: list[int],
                  bodies: list[bytes], instances: list[dict], args, results: dict) -> None:
    """Serve the benchmark registry with `perennial serve` from source tree ``tree``; HTTP
    then gRPC load at each concurrency level."""
    from streaming.broker import free_port

    tag = f" #{round_}" if args.rounds > 1 or args.compare else ""
    port, grpc_port = free_port(), free_port()
    env = {"PERENNIAL_REGISTRY_KEY": KEY, "PERENNIAL_ADMIN_TOKEN": "bench", "PYTHONPATH": str(tree)}
    argv = [sys.executable, "-m", "service.cli", "serve", "--registry", str(work / "registry"),
            "--host", "127.0.0.1", "--port", str(port), "--grpc-port", str(grpc_port),
            "--bootstrap-servers", bootstrap]
    url = f"http://127.0.0.1:{port}"
    with server(argv, env, url, work / f"{name}-{round_}.log", cwd=tree):
        for c in levels:
            r = asyncio.run(http_load(url, bodies, c, args.duration, args.warmup))
            results["runs"][f"{name} http c={c}{tag}"] = r
            print(f"{name:19s} http c={c:<3d} {r}", flush=True)
        features = httpx.get(f"{url}/v2/models/{MODEL}").json()["parameters"]["feature_names"]
        rows = np.array([[x[f] for f in features] for x in instances], dtype=np.float32)
        for c in levels:
            r = asyncio.run(grpc_load(f"127.0.0.1:{grpc_port}", rows, c, args.duration, args.warmup))
            results["runs"][f"{name} grpc c={c}{tag}"] = r
            print(f"{name:19s} grpc c={c:<3d} {r}", flush=True)
        metrics = httpx.get(f"{url}/metrics").text
        dropped = [line for line in metrics.splitlines() if line.startswith("perennial_prediction_log_dropped_total")]
        results.setdefault("prediction_log_dropped", {})[f"{name}{tag}"] = dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run")
    parser.add_argument("--concurrency", default="16,64")
    parser.add_argument("--baseline-max-latency-ms", default="10,10000",
                        help="the baselines' BentoML max_latency_ms: a tight one (sheds load with 503) "
                        "and a generous one (queues; the fair throughput reference)")
    parser.add_argument("--baseline-access-log", action="store_true",
                        help="keep BentoML's access log on in the baseline (Perennial turns it off)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--compare", type=Path, help="also serve from this source tree and report the ratio")
    parser.add_argument("--rounds", type=int, default=1, help="Perennial runs per tree, in turn (averaged)")
    parser.add_argument("--skip-baseline", action="store_true", help="leave out the plain BentoML servers")
    parser.add_argument("--plane-requests", type=int, default=0,
                        help="also time this many in-process DataPlane.predict calls per tree (CPU per request)")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]

    from streaming.broker import EmbeddedBroker, free_port

    work = Path(tempfile.mkdtemp(prefix="perennial-bench-"))
    instances = build_registry(work / "registry")
    bodies = [json.dumps({"model": MODEL, "instances": [{"features": x}]}).encode() for x in instances]
    results: dict = {"machine": f"{os.cpu_count()} CPUs", "duration_s": args.duration, "runs": {}}

    def run_http(name: str, url: str) -> None:
        for c in levels:
            r = asyncio.run(http_load(url, bodies, c, args.duration, args.warmup))
            results["runs"][f"{name} http c={c}"] = r
            print(f"{name:19s} http c={c:<3d} {r}", flush=True)

    for latency in [] if args.skip_baseline else [int(v) for v in args.baseline_max_latency_ms.split(",")]:
        port = free_port()
        baseline_env = {
            "BASELINE_REGISTRY": str(work / "registry"), "BASELINE_MODEL": MODEL, "BASELINE_KEY": KEY,
            "BASELINE_MAX_LATENCY_MS": str(latency), "BENTOML_DO_NOT_TRACK": "True", "PYTHONPATH": str(ROOT),
        }
        if not args.baseline_access_log:  # same BentoML logging as `perennial serve`, for a fair race
            baseline_env["BENTOML_CONFIG_OPTIONS"] = "api_server.logging.access.enabled=false"
        with server([sys.executable, "-m", "bentoml", "serve", "baseline_service:Baseline", "--working-dir",
                     str(ROOT / "benchmarks"), "--port", str(port), "--host", "127.0.0.1"],
                    baseline_env, f"http://127.0.0.1:{port}", work / f"baseline-{latency}.log"):
            run_http(f"baseline({latency}ms)", f"http://127.0.0.1:{port}")

    trees = [("perennial", ROOT)] + ([("perennial@compare", args.compare.resolve())] if args.compare else [])
    if args.plane_requests:
        for round_ in range(args.rounds):
            for name, tree in trees:
                for per_request in (1, 32):
                    r = plane_cost(tree, work, instances, args.plane_requests, per_request)
                    results["runs"][f"{name} plane x{per_request} #{round_}"] = r
                    print(f"{name:19s} plane x{per_request:<3d} {r}", flush=True)
        for name, _ in trees:
            for per_request in (1, 32):
                rounds = [v for k, v in results["runs"].items() if k.startswith(f"{name} plane x{per_request} #")]
                results["runs"][f"{name} plane x{per_request}"] = {
                    "cpu_us": round(sorted(r["cpu_us"] for r in rounds)[len(rounds) // 2], 1),
                    "rounds_cpu_us": [r["cpu_us"] for r in rounds]}
        if args.compare:
            for per_request in (1, 32):
                ours, theirs = (results["runs"][f"{n} plane x{per_request}"]["cpu_us"] for n, _ in trees)
                results[f"compare/perennial plane cpu x{per_request}"] = round(theirs / ours, 3)
    with EmbeddedBroker(port=free_port(), log_path=work / "broker.log") as broker:
        for round_ in range(args.rounds):
            for name, tree in trees:
                run_perennial(name, tree, round_, broker.bootstrap_servers, work, levels, bodies, instances,
                              args, results)

    if args.rounds > 1 or args.compare:
        for key in sorted({k.split(" #")[0] for k in results["runs"] if " #" in k and " plane " not in k}):
            rounds = [v for k, v in results["runs"].items() if k.split(" #")[0] == key]
            results["runs"][key] = {
                "rps": round(sum(r["rps"] for r in rounds) / len(rounds), 1),
                "ok_rps": round(sum(r["ok_rps"] for r in rounds) / len(rounds), 1),
                "status_503": sum(r["status_503"] for r in rounds),
                "rounds_rps": [r["rps"] for r in rounds],
            }
    if args.compare:
        for c in levels:
            for transport in ("http", "grpc"):
                ours, theirs = (results["runs"][f"{n} {transport} c={c}"]["rps"] for n, _ in trees)
                results[f"perennial/compare {transport} rps c={c}"] = round(ours / theirs, 3) if theirs else None
        results["compare_tree"] = str(args.compare)
    if args.skip_baseline:
        print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=2))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0

    runs = results["runs"]
    tight, generous = (f"baseline({v}ms)" for v in args.baseline_max_latency_ms.split(",")[:2])
    for c in levels:
        ours = runs[f"perennial http c={c}"]
        for name in (tight, generous):
            base = runs[f"{name} http c={c}"]
            results[f"perennial/{name} rps c={c}"] = round(ours["rps"] / base["rps"], 3) if base["rps"] else None
            results[f"perennial/{name} ok_rps c={c}"] = (
                round(ours["ok_rps"] / base["ok_rps"], 3) if base["ok_rps"] else None
            )
    results["perennial_503_at_max_concurrency"] = runs[f"perennial http c={max(levels)}"]["status_503"]
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
