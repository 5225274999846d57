"""The serving race's report: its Markdown table and issue 11's acceptance ratios.

Results are `benchmarks/serving.py`'s: ``"<server> <route> x<instances>"`` → one load run
(``rps``, ``instances_per_s``, ``p50_ms``, ``p99_ms``, ``non_2xx``, and for Perennial
``dropped``), plus ``"perennial totals"`` (the prediction-log counters after every run).
"""

from __future__ import annotations


def table(results: dict[str, dict], labels: dict[str, str]) -> str:
    lines = ["| server | route | inst/request | requests/s | instances/s | p50 ms | p99 ms | non-2xx | dropped |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results.values():
        if "route" not in r:
            continue
        lines.append(f"| {labels[r['server']]} | {r['route']} | {r['instances_per_request']} | {r['rps']:,.1f} | "
                     f"{r['instances_per_s']:,.0f} | {r['p50_ms']} | {r['p99_ms']} | {r['non_2xx']} | "
                     f"{int(r['dropped']) if 'dropped' in r else '—'} |")
    return "\n".join(lines)


#: (name, ours, theirs, measure, target): issue 11's acceptance, as ratios of two runs.
ACCEPTANCE = [
    ("64/request: Perennial /predict vs uvicorn+Starlette", "perennial /predict x64", "starlette /predict x64",
     "instances_per_s", 0.5),
    ("64/request: Perennial /predict vs MLServer OIP REST", "perennial /predict x64", "mlserver oip-rest x64",
     "instances_per_s", 1.0),
    ("1/request: Perennial /predict vs MLServer OIP REST", "perennial /predict x1", "mlserver oip-rest x1",
     "rps", 1.0),
    ("1/request: Perennial /predict vs plain BentoML route", "perennial /predict x1", "bentoml /predict x1",
     "rps", 0.8),
    ("1/request: Perennial gRPC vs MLServer gRPC", "perennial grpc x1", "mlserver grpc x1", "rps", 1.0),
]
#: Reported beside the acceptance (same protocol on both sides), no target of their own.
EXTRA = [
    ("1/request: Perennial OIP REST vs MLServer OIP REST", "perennial oip-rest x1", "mlserver oip-rest x1", "rps"),
    ("64/request: Perennial OIP REST vs MLServer OIP REST", "perennial oip-rest x64", "mlserver oip-rest x64",
     "instances_per_s"),
    ("64/request: Perennial gRPC vs MLServer gRPC", "perennial grpc x64", "mlserver grpc x64", "instances_per_s"),
]


def ratios(results: dict[str, dict]) -> dict[str, dict]:
    out = {}
    for name, ours, theirs, measure, *target in ACCEPTANCE + EXTRA:
        if ours in results and theirs in results and results[theirs][measure]:
            value = round(results[ours][measure] / results[theirs][measure], 3)
            verdict = ("PASS" if value >= target[0] else "FAIL") if target else "info"
        else:
            value, verdict = None, "n/a"
        out[name] = {"ratio": value, "target": target[0] if target else None, "verdict": verdict}
    ours = [r for r in results.values() if r.get("server") == "perennial"]
    if ours:
        bad = sum(r["non_2xx"] + r["socket_errors"] for r in ours)
        dropped = results.get("perennial totals", {}).get("dropped", sum(r["dropped"] for r in ours))
        out["Perennial: non-2xx and socket errors"] = {"count": bad, "verdict": "PASS" if bad == 0 else "FAIL"}
        out["Perennial: prediction records dropped"] = {"count": dropped, "verdict": "PASS" if dropped == 0 else "FAIL"}
    return out


def verdict_detail(v: dict) -> str:
    if v.get("ratio") is not None:
        return f"{v['ratio']:.3f}x" + (f" (target >= {v['target']}x)" if v["target"] else "")
    return f"{v['count']:g}" if "count" in v else "not measured"
