"""The two things many tests do: wait for a condition, and start a real process.

One way each, so every test fails the same readable way: a wait names what it waited for
(and the log of a process that died meanwhile), and every process runs in its own session
(stopped with its whole group, as a terminal or systemd would) with its output in a log file.
Never a wall-clock bound on what a test measures: the guard only turns a hang into a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str, guard_s: float = 600.0, every_s: float = 0.2,
             alive: Callable[[], object] | None = None) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    ``alive`` is called before each poll and should raise when a process the condition
    depends on has died (`ProcessGroup.check_alive`, or `alive_check(proc)`), so a crash
    fails at once with its cause instead of after the guard.
    """
    deadline = time.monotonic() + guard_s
    while True:
        if alive is not None:
            alive()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {guard_s:.0f} s")
        time.sleep(every_s)


def perennial_argv(*args: str) -> list[str]:
    """The command line of the real ``perennial`` CLI, with this interpreter."""
    return [sys.executable, "-m", "service.cli", *args]


def run_perennial(*args: str, env: dict[str, str] | None = None, timeout: float = 600,
                  cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``perennial ARGS`` to completion; stdout and stderr captured apart, as text."""
    return subprocess.run(perennial_argv(*args), capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or ROOT, env={**os.environ, **(env or {})})


def start_process(argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                  cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, stdout and stderr to ``log_path`` (``proc.log_path``).

    Stop it with `service.demo.processes.stop_process_group` (the whole group, gracefully).
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, cwd=cwd or ROOT, env={**os.environ, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    proc.log_path = str(log_path)  # type: ignore[attr-defined] - where a failing test looks
    return proc


def start_perennial(*args: str, log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`start_process` of ``perennial ARGS``."""
    return start_process(perennial_argv(*args), log_path, env)


def log_tail(proc: subprocess.Popen[bytes], chars: int = 3000) -> str:
    path = getattr(proc, "log_path", None)
    return Path(path).read_text(errors="replace")[-chars:] if path else ""


def alive_check(proc: subprocess.Popen[bytes]) -> Callable[[], None]:
    """For `wait_for(alive=...)`: raise with the process's log tail once it has exited."""

    def check() -> None:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with code {proc.returncode}:\n{log_tail(proc)}")

    return check
