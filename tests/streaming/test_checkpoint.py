"""Checkpoints: atomic round trip, refusal of tampered files, fallback, fencing."""

from __future__ import annotations

import pytest

from streaming.checkpoint import Checkpoint, CheckpointError, CheckpointFenced, CheckpointStore


def ckpt(n: int) -> Checkpoint:
    return Checkpoint("m", system=b"state-%d" % n, offsets={("m.feedback", 0): n}, recent_ids=[f"e{n}"],
                      join={"predictions": [], "pending": []}, stream_time=float(n), info={"events_learned": n})


def test_round_trip_and_generations(tmp_path) -> None:  # noqa: ANN001
    store = CheckpointStore(tmp_path, "m", b"k", keep=2)
    assert store.load_latest() is None
    seq = None
    for n in (1, 2, 3):
        seq = store.save(ckpt(n), seq)
    loaded = store.load_latest()
    assert loaded.system == b"state-3" and loaded.offsets == {("m.feedback", 0): 3} and loaded.seq == 3
    assert store.sequences() == [3, 2]


def test_corrupt_newest_falls_back_to_older(tmp_path) -> None:  # noqa: ANN001
    store = CheckpointStore(tmp_path, "m", b"k")
    store.save(ckpt(1), None)
    store.save(ckpt(2), 1)
    newest = store.dir / "checkpoint-000000000002.ckpt"
    data = bytearray(newest.read_bytes())
    data[20] ^= 0xFF
    newest.write_bytes(bytes(data))
    assert store.load_latest().system == b"state-1"


def test_wrong_key_is_refused(tmp_path) -> None:  # noqa: ANN001
    CheckpointStore(tmp_path, "m", b"k").save(ckpt(1), None)
    with pytest.raises(CheckpointError, match="verifies"):
        CheckpointStore(tmp_path, "m", b"other").load_latest()


def test_a_stale_writer_is_fenced(tmp_path) -> None:  # noqa: ANN001
    a, b = CheckpointStore(tmp_path, "m", b"k"), CheckpointStore(tmp_path, "m", b"k")
    seq_a = a.save(ckpt(1), None)
    b.save(ckpt(2), b.latest_seq())  # the standby took over
    with pytest.raises(CheckpointFenced):
        a.save(ckpt(3), seq_a)
