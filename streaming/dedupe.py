"""The ids of recently learned events, to skip a feedback event delivered twice.

Producers retry, and an application may resend feedback; an event id seen within the last
``capacity`` learned events is not learned again. The set is part of the checkpoint, so the
guarantee holds across restarts.

>>> ids = RecentIds(capacity=2)
>>> ids.add("a"), ids.add("a"), ids.add("b"), ids.add("c"), "a" in ids
(True, False, True, True, False)
"""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    """A bounded, insertion-ordered set; the oldest ids are forgotten first."""

    def __init__(self, capacity: int = 100000, ids: list[str] | None = None) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        for i in ids or ():
            self.add(i)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str) -> bool:
        """Remember `event_id`; False when it was already remembered."""
        if event_id in self._ids:
            return False
        if self.capacity <= 0:
            return True
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def to_list(self) -> list[str]:
        return list(self._ids)
