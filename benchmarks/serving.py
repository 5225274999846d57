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
def server(argv: list[str], env: dict[str, str], url: str, log: Path):
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                cwd=ROOT, start_new_session=True)
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

    for latency in [int(v) for v in args.baseline_max_latency_ms.split(",")]:
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

    with EmbeddedBroker(port=free_port(), log_path=work / "broker.log") as broker:
        port, grpc_port = free_port(), free_port()
        env = {"PERENNIAL_REGISTRY_KEY": KEY, "PERENNIAL_ADMIN_TOKEN": "bench"}
        argv = [sys.executable, "-m", "service.cli", "serve", "--registry", str(work / "registry"),
                "--host", "127.0.0.1", "--port", str(port), "--grpc-port", str(grpc_port),
                "--bootstrap-servers", broker.bootstrap_servers]
        with server(argv, env, f"http://127.0.0.1:{port}", work / "perennial.log"):
            run_http("perennial", f"http://127.0.0.1:{port}")
            features = httpx.get(f"http://127.0.0.1:{port}/v2/models/{MODEL}").json()["parameters"]["feature_names"]
            rows = np.array([[x[f] for f in features] for x in instances], dtype=np.float32)
            for c in levels:
                r = asyncio.run(grpc_load(f"127.0.0.1:{grpc_port}", rows, c, args.duration, args.warmup))
                results["runs"][f"perennial grpc c={c}"] = r
                print(f"{'perennial':19s} grpc c={c:<3d} {r}", flush=True)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            dropped = [line for line in metrics.splitlines() if line.startswith("perennial_prediction_log_dropped_total")]
            results["prediction_log_dropped"] = dropped

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
