"""A record batch kafka-python cannot decode, found so the partition can move past it.

Why this exists: when a fetched batch fails to decode (a codec whose library is missing, a
corrupt compressed payload, a CRC mismatch), kafka-python raises from ``poll`` and leaves the
partition's position *at* that batch, so every later poll fetches it again and fails again:
the partition never advances and nothing behind the batch is learned. The trainer instead
dead-letters the batch (reason ``undecodable_batch``, its raw bytes as the value where they
fit) and reads on from the offset after it.

Which batch failed is not in the exception's message for every cause, so it is read from
the exception's traceback: the frame of kafka-python's record-unpacking generator holds the
batch it was decoding and the position it had reached. That is kafka-python's internals
(pinned ``<4`` in pyproject.toml); when the frame is not found the error is not a decoding
failure and is left to propagate as before. When the batch's end is unknown (the failure
came while locating the next batch) only one offset is skipped, so the next fetch starts
past the damage one step at a time — slow, but it always ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from streaming.schemas import InvalidEvent, Reason
from streaming.trainer import Record

# Kafka's codec ids (the low three bits of a v2 batch's attributes)
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
MAX_COPIED_BYTES = 512 * 1024  # a dead letter must fit the DLQ producer's 1 MiB request limit
_UNPACK = "_unpack_records"  # kafka.consumer.fetcher.CompletedFetch._unpack_records


@dataclass(frozen=True)
class UndecodableBatch:
    """Offsets ``[start, end)`` of one partition that cannot be decoded, and why."""

    topic: str
    partition: int
    start: int
    end: int
    raw: bytes | None  # the batch as fetched (compressed), when it is small enough to keep
    detail: str

    @property
    def span(self) -> int:
        return self.end - self.start

    def as_record(self) -> Record:
        """The batch as one record the trainer dead-letters, standing for all its offsets."""
        return Record(self.topic, self.partition, self.start, None, self.raw, 0,
                      InvalidEvent(Reason.UNDECODABLE_BATCH, self.detail), self.span)


def find_undecodable_batch(error: BaseException) -> UndecodableBatch | None:
    """The batch kafka-python was decoding when it raised `error`, or None if it was not
    decoding one (then `error` is some other failure: a broker error, a rebalance...)."""
    tb = error.__traceback__
    frame_locals = None
    while tb is not None:
        if tb.tb_frame.f_code.co_name == _UNPACK:
            frame_locals = tb.tb_frame.f_locals
        tb = tb.tb_next
    if frame_locals is None:
        return None
    fetch, tp, batch = frame_locals.get("self"), frame_locals.get("tp"), frame_locals.get("batch")
    reached = getattr(fetch, "next_fetch_offset", None)
    if tp is None or not isinstance(reached, int):
        return None
    why = f"{type(error).__name__}: {error}"
    base = getattr(batch, "base_offset", None)
    end = getattr(batch, "next_offset", None)
    if isinstance(base, int) and isinstance(end, int) and end > reached:
        start = max(base, reached)
        codec = CODECS.get(getattr(batch, "compression_type", -1), "unknown")
        raw = bytes(getattr(batch, "_buffer", b"")) or None
        copied = ""
        if raw is not None and len(raw) > MAX_COPIED_BYTES:
            copied = f"; the batch's {len(raw)} bytes are not copied here (read them from the source topic)"
            raw = None
        return UndecodableBatch(
            tp.topic, tp.partition, start, end, raw,
            f"record batch {tp.topic}[{tp.partition}] offsets {start}..{end - 1} "
            f"(compression {codec}) cannot be decoded: {why}{copied}")
    return UndecodableBatch(tp.topic, tp.partition, reached, reached + 1, None,
                            f"{tp.topic}[{tp.partition}] cannot be decoded at offset {reached} "
                            f"(the damaged batch's extent is unknown; skipping one offset): {why}")
