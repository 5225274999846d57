"""CPU per ``/predict`` request inside the Perennial process, without HTTP: the steady number.

The race (`benchmarks/serving.py`) is what counts, but on two shared cores its rounds vary by
±20–30 %. This times what Perennial's own code costs per request, in CPU seconds of this
process (``time.process_time``, so other processes' load does not enter): parse the body
(pydantic-core), `DataPlane.predict` (validation, the forward, drift, ids, metrics, the
prediction record) and render the response — on the race's model (the agrawal logistic
regression, built as `benchmarks/serving.py` builds it). The prediction log's thread is
replaced by an encoder called in line (``--encode``, on by default: its cost is the same
CPU, only on another thread in the server).

    .venv/bin/python benchmarks/hot_path.py                 # 1 and 64 instances per request
    .venv/bin/python benchmarks/hot_path.py --sizes 64 --requests 3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serving import KEY, MODEL, build_registry, predict_bodies  # noqa: E402
from service.prediction_records import encode_predictions  # noqa: E402


class InlineLog:
    """The prediction log's request side, encoding each record at once (its thread's work)."""

    enabled = True

    def __init__(self, encode: bool) -> None:
        self.encode = encode
        self.records = 0

    def log_predictions(self, model: str, record: dict, count: int) -> None:
        self.records += 1
        if self.encode:
            encode_predictions(record, 1_000_000)


def build_plane(registry_dir: Path, encode: bool):  # noqa: ANN201 - a DataPlane
    from service.dataplane import DataPlane
    from service.metrics_exposition import build_service_metrics
    from service.model_holder import ModelHolder, build_champion
    from service.settings import ServiceSettings
    from training.registry import Registry

    metrics = build_service_metrics()
    registry = Registry(registry_dir, key=KEY)
    settings = ServiceSettings()

    def build(loaded):  # noqa: ANN001, ANN202 - as the server builds it (service/runtime.py)
        return build_champion(loaded, metrics, max_batch_size=settings.max_batch_size,
                              max_latency_ms=settings.max_latency_ms, drift_window=settings.drift_window,
                              drift_every=settings.drift_every, drift_min_interval_s=settings.drift_min_interval_s,
                              batching=settings.batching)

    holder = ModelHolder(registry, build, metrics)
    holder.poll_once()
    return DataPlane(holder, metrics, InlineLog(encode))


async def _requests(plane, bodies: list[bytes], n: int) -> None:  # noqa: ANN001
    from service.http_api import FastJSONResponse, parse_json

    for i in range(n):
        body = parse_json(bodies[i % len(bodies)])
        FastJSONResponse(await plane.predict(body.get("model"), body.get("instances"), "http"))


def measure(plane, bodies: list[bytes], requests: int, chunks: int) -> float:  # noqa: ANN001
    """Least CPU µs per request of ``chunks`` chunks (after one warm-up chunk): the least
    disturbed by other processes on a shared machine (cache, frequency), as `timeit` advises."""
    per_chunk = max(1, requests // chunks)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_requests(plane, bodies, per_chunk))
        times = []
        for _ in range(chunks):
            start = time.process_time()
            loop.run_until_complete(_requests(plane, bodies, per_chunk))
            times.append((time.process_time() - start) / per_chunk * 1e6)
    finally:
        loop.close()
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,64", help="instances per request, comma-separated")
    parser.add_argument("--requests", type=int, default=4000, help="requests timed per size")
    parser.add_argument("--chunks", type=int, default=20, help="chunks the requests are timed in (the least is reported)")
    parser.add_argument("--no-encode", dest="encode", action="store_false",
                        help="leave out encoding the prediction record (the log thread's work)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="perennial-hot-path-"))
    instances, _ = build_registry(work / "registry")
    plane = build_plane(work / "registry", args.encode)
    results = {}
    for size in (int(s) for s in args.sizes.split(",")):
        bodies = predict_bodies(instances, size)
        requests = max(200, args.requests // max(1, size // 8))
        us = measure(plane, bodies, requests, args.chunks)
        results[size] = {"cpu_us_per_request": round(us, 1), "cpu_us_per_instance": round(us / size, 2),
                         "instances_per_cpu_s": round(size / us * 1e6)}
        print(f"{size:>4d} instances/request: {us:9.1f} CPU µs/request  {us / size:7.2f} µs/instance  "
              f"{size / us * 1e6:>9,.0f} instances per CPU-second", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": MODEL, "encode": args.encode, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
