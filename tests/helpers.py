"""The things many tests do: wait for a condition, run the CLI, start real processes.

One way each, so every test fails the same readable way:

- `wait_for` names what it waited for, and fails at once with the log of a process that
  died meanwhile (``alive=group.check_alive``). Never a wall-clock bound on what a test
  measures: the guard only turns a hang into a failure.
- `run_perennial` runs a command to completion, output captured.
- Long-running processes are started through a `service.demo.processes.ProcessGroup` (the
  ``processes`` fixture in ``tests/conftest.py``): each in its own session, output in
  ``<log dir>/<name>.log``, the whole group stopped at teardown, `check_alive` raising with
  the log tail of one that died. The demo uses the same class, so tests start processes the
  way the product does.
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
    depends on has died (`ProcessGroup.check_alive`), so a crash fails at once with its
    cause instead of after the guard.
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
