"""The active/standby assignor gives every partition to one member, preferring the owner."""

from __future__ import annotations

from types import SimpleNamespace

from streaming.consumer import ActiveStandbyAssignor


def member(member_id: str, active: bool) -> SimpleNamespace:
    meta = SimpleNamespace(topics=["m.feedback", "m.predictions"], user_data=b"active" if active else b"standby")
    return SimpleNamespace(member_id=member_id, metadata=meta, group_instance_id=None)


class Cluster:
    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1, 2}


def test_everything_to_the_current_owner() -> None:
    out = ActiveStandbyAssignor().assign(Cluster(), [member("a", False), member("b", True)])
    assert len(out["b"].partitions()) == 6 and out["a"].partitions() == []


def test_without_owner_the_lowest_member_takes_all() -> None:
    out = ActiveStandbyAssignor().assign(Cluster(), [member("b", False), member("a", False)])
    assert len(out["a"].partitions()) == 6 and out["b"].partitions() == []
