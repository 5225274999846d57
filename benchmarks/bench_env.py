"""What the serving race needs that is not the project's: installed here, by the benchmark.

* ``wrk`` (Debian's package) is the HTTP load generator; ``apt-get install -y wrk`` when it is
  missing.
* ``.perennial/bench-venv``: a venv of its own for the peers that are no part of Perennial
  (MLServer, and py-spy for profiling). Why a venv apart and not the project's: MLServer 1.7
  pins ``fastapi<0.116``, which pins a Starlette older than the one BentoML 1.4 needs, so
  the two cannot share one environment — and a peer must never become a project dependency.
  The MLServer runtime loads the *same* learner from the same registry as Perennial, with
  the project's source on ``PYTHONPATH`` (not installed: its dependencies would drag BentoML
  in); loading a registry artifact needs only ``training``, which imports River and NumPy,
  so River is installed there at the project's version (pickles of River objects are tied
  to it).

    .venv/bin/python benchmarks/bench_env.py      # set up (idempotent), print the venv's python
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".perennial" / "bench-venv"

#: Pinned so that two runs of the race measure the same peers. httptools: MLServer's uvicorn
#: parses HTTP with it when it is installed (as Perennial's does), h11 otherwise — a plain
#: ``pip install mlserver`` lacks it, and the race must not hand the peer the slower parser.
#: uvloop 0.21: MLServer 1.7.1's inference-pool worker calls ``asyncio.get_event_loop()`` with
#: no loop set, which uvloop 0.22 and later turn into a RuntimeError (the worker dies at start
#: and the model never loads); 0.21 is the uvloop of MLServer 1.7.1's release.
PEER_PACKAGES = ["mlserver==1.7.1", "river==0.26.1", "httptools==0.9.0", "uvloop==0.21.0", "py-spy==0.4.3"]


def ensure_wrk() -> str:
    """The path of ``wrk``, installed from Debian's packages when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: apt-get install -y wrk", flush=True)
    subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get installed wrk but it is not on PATH")
    return found


def bench_python() -> Path:
    """The bench venv's python, with `PEER_PACKAGES` installed (created on first use)."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    wanted = "\n".join(PEER_PACKAGES)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if not python.exists():
        print(f"creating {VENV} (python3 -m venv)", flush=True)
        # the project's interpreter (venv bases the new one on its base Python, 3.11): the
        # registry's pickles are read by the same Python line that wrote them
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print(f"installing {' '.join(PEER_PACKAGES)} into {VENV}", flush=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    stamp.write_text(wanted)
    return python


if __name__ == "__main__":
    print(ensure_wrk())
    print(bench_python())
