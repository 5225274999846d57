"""`perennial demo` end to end on a short stream, and its promise to leave no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (our workdir is unique per test)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


def leftovers(tmp_path: Path, output: str) -> list[str]:
    """Processes of this demo still alive: those naming its workdir, and its broker (found by
    the port the demo printed: the broker's command lines name the port, not the workdir)."""
    found = processes_mentioning(str(tmp_path / "work"))
    marker = "starting the embedded broker on 127.0.0.1:"
    if marker in output:
        port = output.split(marker, 1)[1].split()[0]
        found += processes_mentioning(f"127.0.0.1:{port} ") + processes_mentioning(f"--port {port} ")
    return found


def demo(tmp_path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "demo", "--workdir", str(tmp_path / "work"),
         "--json", str(tmp_path / "demo.json"), "--plot", str(tmp_path / "demo.png"), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_short_demo_serves_learns_and_cleans_up(tmp_path: Path):
    proc = demo(tmp_path, "--events", "9000", "--bootstrap-events", "1000", "--rate", "400",
                "--label-delay", "0.5", "--candidates", "logreg,hat")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    result = json.loads((tmp_path / "demo.json").read_text())
    assert result["events"] == 8000 and result["feedback_sent"] == 8000
    assert result["trainer"]["learned"] == 8000, "every label sent through /feedback was learned"
    assert result["served_versions"][0] == 1 and len(result["served_versions"]) > 1
    assert result["prequential"]["accuracy"] > result["baselines"]["static"]["accuracy"]
    assert (tmp_path / "demo.png").read_bytes()[:4] == b"\x89PNG"
    assert "stopped every process the demo started" in out
    assert leftovers(tmp_path, out) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_stops_every_process(tmp_path: Path, signum: int):
    proc = demo(tmp_path, "--events", "200000", "--candidates", "logreg")
    lines = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # wait until the broker, trainer and service are all up
        lines.append(line)
        if "service ready" in line or time.monotonic() > deadline:
            break
    assert any("service ready" in line for line in lines), "".join(lines)[-3000:]
    assert leftovers(tmp_path, "".join(lines)), "the demo's children should be running"
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "stopped every process the demo started" in "".join(lines) + out
    assert leftovers(tmp_path, "".join(lines) + out) == []
