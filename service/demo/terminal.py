"""What `perennial demo` shows on the terminal: its status line and the events that matter.

Everything else (the demo's own logs, httpx's line per request, kafka-python's start-up
chatter, every child process's output) goes to files under ``<workdir>/logs``. Each line
here starts with the time since the demo started, ``[mm:ss]``; an event names its kind in
capitals (``PROMOTION``, ``ROLLBACK``, ``DRIFT``, ``FAILURE``) so it stands out from the
status lines around it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from service.demo.status import TrainerStatus
from training.registry import Registry, RegistryError


def legend(candidates: str) -> str:
    """The learner ids of the status line, explained once (README, "What you will see").

    >>> legend("logreg,hat")[:55]
    'learner ids: logreg, hat = bootstrap candidates; * = ch'
    """
    names = ", ".join(c.strip() for c in candidates.split(",") if c.strip())
    return (f"learner ids: {names} = bootstrap candidates; * = champion; NAME-dN = challenger "
            "spawned at the champion's N-th drift; NAME-vN = registry version N, adopted as champion")

# libraries that log a line per request or per connection at INFO: files only, and WARNING
NOISY_LOGGERS = ("httpx", "httpcore", "kafka", "urllib3", "matplotlib")


class DemoTerminal:
    """Formats the demo's lines and hands them to ``say`` (print, in `perennial demo`)."""

    def __init__(self, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.say, self.clock = say, clock
        self.started = clock()

    def _stamp(self) -> str:
        minutes, seconds = divmod(int(self.clock() - self.started), 60)
        return f"[{minutes:02d}:{seconds:02d}]"

    def status(self, text: str) -> None:
        self.say(f"{self._stamp()} {text}")

    def event(self, kind: str, text: str) -> None:
        self.say(f"{self._stamp()} {kind.upper()} {text}")


class EventFeed:
    """New promotions and rollbacks (from the registry's decision log, with their reasons)
    and drifts (from the trainer's per-learner drift counters) since the last call."""

    def __init__(self, registry: Registry, model: str) -> None:
        self.registry, self.model = registry, model
        self._decisions_seen = self._count_decisions()
        self._drifts: dict[str, float] = {}

    def _count_decisions(self) -> int:
        try:
            return len(self.registry.decisions(self.model))
        except (RegistryError, OSError):
            return 0

    def new_events(self, status: TrainerStatus) -> list[tuple[str, str]]:
        events: list[tuple[str, str]] = []
        for learner, count in sorted(status.drifts_by_learner.items()):
            if count > self._drifts.get(learner, 0):
                role = status.learners.get(learner, ("learner", 0.0))[0]
                events.append(("drift", f"on {role} {learner}'s error stream (drift #{count:.0f} of {learner})"))
            self._drifts[learner] = count
        try:
            decisions = self.registry.decisions(self.model)
        except (RegistryError, OSError):
            return events
        for d in decisions[self._decisions_seen:]:
            if d.get("alias") != "champion" or d.get("action") not in ("promote", "rollback"):
                continue  # refreshes move the alias too: the status line shows the served version
            learner = f" ({d['learner']})" if d.get("learner") else ""
            kind = "promotion" if d["action"] == "promote" else "rollback"
            events.append((kind, f"v{d.get('from')} -> v{d.get('to')}{learner}: {d.get('reason', '')}"))
        self._decisions_seen = len(decisions)
        return events


@contextmanager
def logs_to_file(path: Path) -> Iterator[None]:
    """Send this process's logging to ``path`` instead of the terminal, for the demo's length;
    the per-request INFO lines of HTTP and Kafka clients are dropped (WARNING and up kept)."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler]
    root.setLevel(min(saved_level, logging.INFO) if saved_level else logging.INFO)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        handler.close()
        for name, level in saved_noisy.items():
            logging.getLogger(name).setLevel(level)
