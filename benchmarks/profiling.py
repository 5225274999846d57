"""Where the Perennial worker's time goes under the race's load: py-spy, summarised.

`record` attaches py-spy (from the bench venv, `benchmarks/bench_env.py`) to a process and its
children (``perennial serve`` execs BentoML's arbiter, which forks the worker) and writes
folded stacks (``--format raw``); `summarize` turns them into the share of samples each
function is on the stack for (inclusive) and at the top of (self), per process and thread
kind, for benchmarks/README.md. ``benchmarks/serving.py --profile DIR`` runs it during an
extra, unmeasured load run, so the profiler's overhead never touches the race's numbers.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")
RATE = 100  # samples per second
PROJECT = {"service", "training", "streaming"}


def record(py_spy: Path, pid: int, seconds: float, out: Path) -> subprocess.Popen:
    """Start sampling ``pid`` and its subprocesses for ``seconds``; wait on the result."""
    # --gil: only samples of a thread holding the GIL, i.e. running Python. Without it, the
    # gRPC server's 64 pool threads parked in a C queue read as busy and drown the rest.
    return subprocess.Popen([str(py_spy), "record", "--pid", str(pid), "--subprocesses", "--gil",
                             "--nolineno", "--format", "raw", "--rate", str(RATE), "--duration",
                             str(max(1, round(seconds))), "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def _name(frame: str) -> str:
    m = _FRAME.match(frame)
    return f"{m['func']} ({m['file']})" if m else frame


def _package(frame: str) -> str:
    """The top-level package of a frame's file (py-spy shortens paths to the package part)."""
    m = _FRAME.match(frame)
    path = m["file"] if m else ""
    return path.split("/", 1)[0].removesuffix(".py") if path else "?"


def _thread(frames: list[str]) -> str:
    """What a stack's thread is: the main thread (the event loop), else the first frame below
    ``threading``'s bootstrap (kafka's sender, a thread-pool worker...)."""
    if not frames or not frames[0].endswith("(threading.py)"):
        return "main thread (event loop)"
    inner = next((f for f in frames if not f.endswith("(threading.py)")), frames[-1])
    return f"thread: {_name(inner)}"


def summarize(raw: Path, seconds: float, top: int = 20) -> dict:
    """Shares of the GIL-holding samples: per thread, per package of the running function
    (self), per project function on the stack (inclusive) and per running function; and how much of the ``seconds`` the GIL was held (1.0: the process is saturated)."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    roots: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        python = [f for f in stack.split(";") if not f.startswith(("process ", "thread ("))]
        roots[_thread(python)] += n
        for name in {_name(f) for f in python if _package(f) in PROJECT}:
            inclusive[name] += n
        if python:
            leaf[_name(python[-1])] += n
            packages[_package(python[-1])] += n

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)] if total else []

    return {"samples": total, "gil_busy": round(total / (seconds * RATE), 2), "threads": share(roots),
            "self by package": share(packages), "inclusive, project code": share(inclusive),
            "self": share(leaf)}


def report(summary: dict) -> str:
    lines = [f"{summary['samples']} samples holding the GIL (GIL held {summary['gil_busy']:.0%} of the time)"]
    for key in ("threads", "self by package", "inclusive, project code", "self"):
        lines.append(f"  {key} (% of samples):")
        lines += [f"    {pct:5.1f}  {name}" for name, pct in summary[key]]
    return "\n".join(lines)
