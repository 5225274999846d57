"""Registry writes made idempotent across crashes: a journal keyed by stream position.

Why: the learning system publishes a version and moves aliases the moment a promotion,
rollback or refresh happens, but its state is checkpointed only every N events. After a
crash the trainer re-learns the events since the checkpoint and the system decides the same
promotion again; without this journal the registry would get a second, identical version
and a second alias move. The journal (``<checkpoint dir>/<model>/publish-journal.jsonl``,
shared with the hot standby) records each write with the number of events learned when it
happened and its rank within that event; a replayed write finds its entry and returns the
recorded result instead of writing again.

The remaining window — killed after the registry write but before the journal append — can
leave one extra unaliased version; it never moves an alias twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from training.learners.base import Learner
from training.lineage import Origin
from training.loop_types import Publisher
from training.registry_files import append_line

log = logging.getLogger(__name__)

T = TypeVar("T")


class JournaledPublisher:
    """Wraps a `training.system.Publisher`; `position()` gives the events learned so far."""

    def __init__(self, inner: Publisher, journal_path: Path, position: Callable[[], int]) -> None:
        self.inner = inner
        self.path = Path(journal_path)
        self.position = position
        self._rank_at: tuple[int, int] = (-1, 0)

    def _key(self, op: str) -> str:
        at = self.position()
        last_at, rank = self._rank_at
        rank = rank + 1 if at == last_at else 0
        self._rank_at = (at, rank)
        return f"{at}:{rank}:{op}"

    def _recorded(self, key: str) -> dict | None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        for line in reversed(lines):
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn last line from a crash mid-append
            if entry.get("key") == key:
                return entry
        return None

    def _record(self, key: str, result: object) -> None:  # a version number, or None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_line(self.path, json.dumps({"key": key, "result": result}))

    def _once(self, op: str, do: Callable[[], T]) -> T:
        key = self._key(op)
        done = self._recorded(key)
        if done is not None:
            log.info("registry %s at %s already done before a restart; result %s reused", op, key, done["result"])
            return done["result"]
        result = do()
        self._record(key, result)
        return result

    def publish(self, learner: Learner, *, parent: int | None, metrics: dict, note: str,
                origin: Origin = Origin.MANUAL) -> int:
        return self._once("publish", lambda: self.inner.publish(learner, parent=parent, metrics=metrics,
                                                                note=note, origin=origin))

    def promote(self, version: int, reason: str) -> None:
        self._once("promote", lambda: self.inner.promote(version, reason))

    def rollback(self, reason: str) -> int:
        return self._once("rollback", lambda: self.inner.rollback(reason))

    def refresh(self, version: int) -> None:
        refresh = getattr(self.inner, "refresh", None)
        if refresh is not None:
            self._once("refresh", lambda: refresh(version))

    # -- reads: not journaled ------------------------------------------------------------------

    def current_champion(self, expected: int | None) -> int | None:
        """The ``champion`` alias when someone else moved it, else None.

        After a crash the alias can already point at a version this trainer wrote at a later
        stream position than its checkpoint (the replay will redo that write and get the same
        version back from the journal): that is not someone else's move.
        """
        version = self.inner.current_champion(expected)
        if version is None:
            return None
        now = self.position()
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return version
        for line in lines:
            try:
                entry = json.loads(line)
                at = int(str(entry["key"]).split(":", 1)[0])
            except (ValueError, KeyError):
                continue
            if at >= now and entry.get("result") == version:
                return None
        return version

    def load(self, version: int) -> Learner:
        return self.inner.load(version)

