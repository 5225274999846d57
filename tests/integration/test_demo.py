"""`perennial demo` end to end on a short stream, and its promise to leave no process behind."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, perennial_argv

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


def ctrl_c_as_on_a_terminal() -> None:
    """In the child before exec: SIGINT's default back. A test run started in the background
    of a script inherits SIGINT ignored (POSIX, for asynchronous commands), and Python then
    never raises KeyboardInterrupt: the Ctrl-C tests would test nothing but that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_demo(proc: subprocess.Popen) -> None:
    """SIGTERM, so the demo stops the processes it started; SIGKILL if it does not exit."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait(60)


def demo(tmp_path: Path, *extra: str) -> subprocess.Popen:
    """The demo with its terminal output piped to the test (not the helpers' log file: the
    test reads what a user would see)."""
    return subprocess.Popen(
        perennial_argv("demo", "--workdir", str(tmp_path / "work"), "--json", str(tmp_path / "demo.json"),
                       "--plot", str(tmp_path / "demo.png"), *extra),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        preexec_fn=ctrl_c_as_on_a_terminal,  # noqa: PLW1509 - the child has no threads yet
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


@pytest.mark.slow
def test_regression_demo_serves_values_and_beats_the_frozen_model(tmp_path: Path):
    proc = demo(tmp_path, "--stream", "friedman-drift", "--events", "7000", "--bootstrap-events", "1000",
                "--rate", "300", "--label-delay", "0.5", "--candidates", "linear,hat")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    result = json.loads((tmp_path / "demo.json").read_text())
    assert result["task"] == "regression"
    assert result["events"] == 6000 and result["trainer"]["learned"] == 6000
    assert set(result["prequential"]) == {"mae", "rmse", "r2"}
    assert set(result["baselines"]["static"]) == {"mae", "rmse", "r2"}
    assert result["prequential"]["mae"] < result["baselines"]["static"]["mae"], "served values beat the frozen model"
    assert all("mae" in w and "static_mae" in w for w in result["windows"])
    assert "served by Perennial        MAE " in out and " MAE " in out.split("service ready", 1)[1]
    assert (tmp_path / "demo.png").read_bytes()[:4] == b"\x89PNG"
    assert leftovers(tmp_path, out) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_stops_every_process(tmp_path: Path, signum: int):
    proc = demo(tmp_path, "--events", "200000", "--candidates", "logreg")
    lines = []
    try:
        deadline = time.monotonic() + 300
        for line in proc.stdout:  # wait until the broker, trainer and service are all up
            lines.append(line)
            if "service ready" in line or time.monotonic() > deadline:
                break
        assert any("service ready" in line for line in lines), "".join(lines)[-3000:]
        assert leftovers(tmp_path, "".join(lines)), "the demo's children should be running"
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=120)
    finally:  # a failed check must not leave a 200,000-event demo running
        stop_demo(proc)
    assert proc.returncode != 0
    assert "stopped every process the demo started" in "".join(lines) + out
    assert leftovers(tmp_path, "".join(lines) + out) == []


STATUS_OR_EVENT = re.compile(r"^\[\d\d:\d\d\] ")


def read_pty_until(master: int, done, guard_s: float = 600.0) -> list[str]:  # noqa: ANN001
    """Lines written to the terminal until ``done(lines, elapsed)`` (the guard only ends a hang)."""
    buffer, lines, started = b"", [], time.monotonic()
    while not done(lines, time.monotonic() - started):
        if time.monotonic() - started > guard_s:
            raise AssertionError("the demo's terminal stalled:\n" + "\n".join(lines[-30:]))
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the demo closed its end
            break
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        lines += [line.decode(errors="replace").rstrip("\r") for line in complete]
    return lines


def test_on_a_terminal_the_first_minute_is_status_and_events(tmp_path: Path):
    """On a real terminal (a pty: libraries log differently there) at most one line in five
    is neither the status line nor an event; the champion's version is known at once."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        perennial_argv("demo", "--workdir", str(tmp_path / "work"), "--json", str(tmp_path / "demo.json"),
                       "--plot", str(tmp_path / "demo.png"), "--events", "200000", "--candidates", "logreg,hat"),
        stdin=slave, stdout=slave, stderr=slave, close_fds=True, cwd=ROOT,
        preexec_fn=ctrl_c_as_on_a_terminal,  # noqa: PLW1509 - the child has no threads yet
    )
    os.close(slave)
    try:
        def traffic(lines: list[str]) -> list[str]:
            return [line for line in lines if " served v" in line]

        # the first minute, and at least three status lines of live traffic (a slow machine
        # may spend most of a minute starting the service)
        lines = read_pty_until(master, lambda lines, t: t >= 60 and len(traffic(lines)) >= 3)
        proc.send_signal(signal.SIGINT)
        rest = read_pty_until(master, lambda lines, t: proc.poll() is not None, guard_s=180)
    finally:
        stop_demo(proc)
        os.close(master)
    shown = [line for line in lines if line.strip()]
    other = [line for line in shown if not STATUS_OR_EVENT.match(line)]
    print(f"first minute: {len(shown)} lines, {len(other)} neither status nor event")  # for the record
    assert len(other) * 5 <= len(shown), "\n".join(other[:40])
    assert sum("learner ids:" in line for line in shown) == 1, "the legend, once"
    assert all("champion v?" not in line for line in shown), traffic(shown)[:3]
    assert "champion v1" in traffic(shown)[0]
    assert "stopped every process the demo started" in "\n".join(rest)
    assert leftovers(tmp_path, "\n".join(lines + rest)) == []
