"""The race's load generators: Debian's ``wrk`` for HTTP, a lean ``grpc.aio`` client for gRPC.

* `wrk_load`: ``wrk -t1 -c32 -dNs --latency`` with a Lua script that cycles through a few
  prebuilt POST requests (bodies formatted once in ``init``, so the script costs wrk nothing
  per request); parses requests/s, p50/p99 and the non-2xx count.
* `grpc_load`: N concurrent in-flight unary ``ModelInfer`` calls on one channel for a fixed
  time. ``ghz`` is not in Debian's packages; this client sends pre-serialised request bytes
  and does not parse the response (it only checks the status), so per call it costs what
  grpcio's core costs and nothing else. Both Perennial and MLServer speak OIP's
  ``inference.GRPCInferenceService``, so one client serves both.
"""

from __future__ import annotations

import asyncio
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _lua_script(path: str, bodies: list[bytes]) -> str:
    """A wrk script POSTing ``bodies`` in turn to ``path`` (JSON in Lua long brackets)."""
    literals = ",\n".join(f"[==[{b.decode()}]==]" for b in bodies)
    return f"""
local bodies = {{
{literals}
}}
local requests = {{}}
local i = 0
init = function(args)
  for k, body in ipairs(bodies) do
    requests[k] = wrk.format("POST", "{path}", {{["Content-Type"] = "application/json"}}, body)
  end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
"""


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(out: str) -> dict:
    """Requests/s, latency percentiles (ms), non-2xx and socket errors from wrk's report."""
    result: dict = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    result["requests"] = int(total.group(1))
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        result[f"p{pct}_ms"] = round(_ms(m.group(1)), 2) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    return result


def wrk_load(wrk: str, url: str, path: str, bodies: list[bytes], *, connections: int = 32,
             threads: int = 1, duration_s: float = 10.0, warmup_s: float = 2.0) -> dict:
    """One measured wrk run against ``url + path`` after an unmeasured warm-up run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_lua_script(path, bodies))
        script = f.name
    try:
        def run(seconds: float) -> str:
            argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
                    "--timeout", "10s", "-s", script, url]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
            return done.stdout

        if warmup_s > 0:
            run(warmup_s)
        cpu = _cpu(resource.RUSAGE_CHILDREN)
        out = run(duration_s)
        cpu = _cpu(resource.RUSAGE_CHILDREN) - cpu
    finally:
        Path(script).unlink(missing_ok=True)
    result = parse_wrk(out)
    # the load generator's own CPU, in cores: near 1 it would be the bottleneck, not the server
    result["client_cores"] = round(cpu / duration_s, 2)
    result["raw"] = out
    return result


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


async def _grpc_load(address: str, requests: list[bytes], concurrency: int, duration_s: float,
                     warmup_s: float) -> dict:
    import grpc

    async with grpc.aio.insecure_channel(address) as channel:
        # no serializer / deserializer: bytes in, bytes out (the request is serialised once)
        infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        latencies: list[float] = []
        failures: dict[str, int] = {}
        start = time.perf_counter()
        measure_from, end = start + warmup_s, start + warmup_s + duration_s

        async def worker(i: int) -> None:
            k = i
            while (now := time.perf_counter()) < end:
                body = requests[k % len(requests)]
                k += 1
                try:
                    await infer(body, timeout=30)
                    ok = True
                except grpc.aio.AioRpcError as e:
                    ok = False
                    if now >= measure_from:
                        failures[e.code().name] = failures.get(e.code().name, 0) + 1
                if ok and now >= measure_from:
                    latencies.append(time.perf_counter() - now)

        async def measured_cpu() -> float:  # this process's CPU over the measured window
            await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
            cpu = _cpu(resource.RUSAGE_SELF)
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
            return _cpu(resource.RUSAGE_SELF) - cpu

        *_, cpu = await asyncio.gather(*(worker(i) for i in range(concurrency)), measured_cpu())
        elapsed = time.perf_counter() - measure_from
    latencies.sort()

    def pct(q: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2) if latencies else None

    n = len(latencies) + sum(failures.values())
    return {"rps": round(n / elapsed, 1), "requests": n, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "non_2xx": sum(failures.values()), "failures": failures, "socket_errors": 0,
            "client_cores": round(cpu / duration_s, 2)}


def grpc_load(address: str, requests: list[bytes], *, concurrency: int = 32, duration_s: float = 10.0,
              warmup_s: float = 2.0) -> dict:
    """``concurrency`` in-flight ``ModelInfer`` calls for ``duration_s`` after ``warmup_s``;
    a non-OK status counts as non-2xx (by its code in ``failures``)."""
    return asyncio.run(_grpc_load(address, requests, concurrency, duration_s, warmup_s))
