"""Child processes that are always stopped: on success, on failure, on Ctrl-C, on SIGTERM.

Each child runs in its own session (process group), so stopping it also stops whatever it
started (BentoML forks workers). Stopping is SIGTERM to the group, a grace period, then
SIGKILL. The group is registered with `atexit` and the caller's signal handlers so an
interrupted demo leaves no orphan behind.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)


class ProcessGroup:
    """Starts ``perennial`` subcommands and other programs; `stop_all` ends every one."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.children: list[tuple[str, subprocess.Popen]] = []
        atexit.register(self.stop_all)

    def log_path(self, name: str) -> Path:
        """Where the output of the child called ``name`` goes (appended across restarts)."""
        return self.log_dir / f"{name}.log"

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log_path = self.log_path(name)
        with log_path.open("ab") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, start_new_session=True,
            )
        self.children.append((name, proc))
        log.info("started %s (pid %d), log %s", name, proc.pid, log_path)
        return proc

    def perennial(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return self.start(name, [sys.executable, "-m", "service.cli", *args], env)

    def check_alive(self) -> None:
        """Raise with the child's log tail when one has died: a dead trainer must not go unnoticed."""
        for name, proc in self.children:
            code = proc.poll()
            if code is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with code {code}; last log lines:\n{tail}")

    def stop(self, name: str, timeout_s: float = 15.0) -> None:
        for child_name, proc in list(self.children):
            if child_name == name:
                stop_process_group(proc, timeout_s)
                self.children.remove((child_name, proc))

    def stop_all(self, timeout_s: float = 15.0) -> None:
        # reverse order: traffic sources first, the broker last
        while self.children:
            name, proc = self.children.pop()
            stop_process_group(proc, timeout_s)
            log.info("stopped %s", name)

    def pids(self) -> list[int]:
        return [p.pid for _, p in self.children]


def stop_process_group(proc: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """SIGTERM to the process's group (started with ``start_new_session=True``), then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):  # a worker that outlived its parent is still ours
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)
