"""The durable spool: what it acknowledged survives a restart, a torn last write is cut off, it
is bounded, and one directory has one owner (orphans of a dead owner are adopted)."""

from __future__ import annotations

import pytest

from service.spool import Spool, SpoolBusy, SpoolFull, claim_slots


def payloads(spool: Spool) -> list[bytes]:
    return [p for _, p in spool.peek(10_000)]


def test_append_peek_commit_in_order_and_survive_reopen(tmp_path):
    spool = Spool(tmp_path)
    spool.append([b"r1", b"r2"])
    spool.append([b"r3"])
    assert payloads(spool) == [b"r1", b"r2", b"r3"]
    first_two = spool.peek(2)[-1][0]
    spool.commit(first_two)
    assert payloads(spool) == [b"r3"] and spool.pending == 1
    spool.close()
    again = Spool(tmp_path)
    assert payloads(again) == [b"r3"] and again.pending == 1
    again.commit(again.peek(1)[0][0])
    assert again.pending == 0 and (tmp_path / "spool.log").stat().st_size == 0  # drained: file starts over
    again.close()
    assert Spool(tmp_path).pending == 0


def test_a_torn_last_record_is_cut_off_and_the_rest_kept(tmp_path):
    spool = Spool(tmp_path)
    spool.append([b"kept-1", b"kept-2"])
    spool.close()
    with open(tmp_path / "spool.log", "ab") as f:  # a crash in the middle of the next append
        f.write(b"\x40\x00\x00\x00\x00\x00\x00\x00half")
    again = Spool(tmp_path)
    assert payloads(again) == [b"kept-1", b"kept-2"]
    again.append([b"after"])
    assert payloads(again) == [b"kept-1", b"kept-2", b"after"]


def test_bounded_by_records_and_bytes(tmp_path):
    spool = Spool(tmp_path / "a", max_records=2)
    spool.append([b"1", b"2"])
    with pytest.raises(SpoolFull, match="at most 2 records"):
        spool.append([b"3"])
    assert spool.pending == 2  # all or nothing
    small = Spool(tmp_path / "b", max_bytes=100)
    with pytest.raises(SpoolFull):
        small.append([b"x" * 200])


def test_one_owner_per_directory_and_orphans_are_adopted(tmp_path):
    held = Spool(tmp_path / "slot-0")
    with pytest.raises(SpoolBusy):
        Spool(tmp_path / "slot-0")
    own, orphans = claim_slots(tmp_path)
    assert own.directory.name == "slot-1" and orphans == []
    own.append([b"left behind"])
    own.close()  # its process ended with a record not delivered
    other, orphans = claim_slots(tmp_path)
    assert [o.directory.name for o in orphans] == ["slot-1"] and payloads(orphans[0]) == [b"left behind"]
    assert other.directory.name not in ("slot-0", "slot-1") and other.pending == 0
    held.close()
