"""A local durable spool: what the service has promised to deliver to Kafka, kept on disk.

Why: a ``2xx`` from ``/feedback`` is a promise that the label reaches ``<model>.feedback``.
The service cannot make that promise on the broker's behalf (it may be down, or down for
longer than any producer timeout), so every accepted record is first appended here —
written, flushed and ``fsync``-ed before the answer goes out — and a drain thread sends it
to Kafka, in order, and only then forgets it. A restart (or ``kill -9``) of the service
loses nothing: the next process finds the spool, and drains it when the broker returns.

Format: one append-only file ``spool.log`` of frames ``<len:u32><crc32:u32><payload>``, and
``spool.head``, the byte offset of the first frame not yet acknowledged (replaced atomically).
A torn last frame (a crash mid-write) fails its length or CRC check and is cut off at open:
it was never acknowledged to a client, because the answer waits for the fsync. When the head
reaches the end, the log is truncated to zero, so the file only grows during an outage.

Bounded (records and bytes): when full, `append` raises `SpoolFull` and the caller answers
503 with ``Retry-After`` — the client keeps the label instead of the service losing it.

One spool directory belongs to one process at a time (``flock`` on ``spool.lock``): several
workers or ``perennial serve`` processes on one host each claim their own ``slot-N`` under the
configured directory (see `claim_slots`), and a process also adopts slots whose owner is gone,
so a spool left by a crashed process with more workers is drained too.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> s = Spool(d, max_records=3)
>>> s.append([b"a", b"b"]); s.pending
2
>>> [p for _, p in s.peek(10)]
[b'a', b'b']
>>> s.commit(s.peek(1)[0][0]); [p for _, p in s.peek(10)]
[b'b']
>>> s.close(); Spool(d, max_records=3).pending   # survives a restart
1
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_FRAME = struct.Struct("<II")  # payload length, crc32 of payload


class SpoolFull(Exception):
    """The spool holds its maximum of records or bytes; refuse (retryable) instead of losing data."""


class SpoolBusy(OSError):
    """Another live process holds this spool directory."""


class Spool:
    """Append-only, fsynced (when ``sync``), bounded queue of byte records in one directory."""

    def __init__(self, directory: Path, *, max_records: int = 100_000, max_bytes: int = 256 * 1024 * 1024,
                 sync: bool = True) -> None:
        self.directory = Path(directory)
        self.max_records, self.max_bytes, self.sync = max_records, max_bytes, sync
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._lock_fd = os.open(self.directory / "spool.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolBusy(f"spool {self.directory} is held by another process") from None
        self._log_path = self.directory / "spool.log"
        self._head_path = self.directory / "spool.head"
        self._file = open(self._log_path, "a+b")  # noqa: SIM115 - closed in close()
        self._head = self._read_head()
        self._end, self.pending = self._recover()
        self.pending_bytes = self._end - self._head

    # -- opening ----------------------------------------------------------------------------

    def _read_head(self) -> int:
        try:
            text = self._head_path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        return int(text) if text.isascii() and text.isdigit() else 0

    def _recover(self) -> tuple[int, int]:
        """Scan from the head: the end of the last whole frame, and how many frames there are."""
        size = os.fstat(self._file.fileno()).st_size
        if self._head > size:  # the log was truncated after a full drain, the head not yet reset
            self._head = 0
            self._write_head(0)
        pos, count = self._head, 0
        self._file.seek(pos)
        while pos + _FRAME.size <= size:
            length, crc = _FRAME.unpack(self._file.read(_FRAME.size))
            if pos + _FRAME.size + length > size:
                break
            payload = self._file.read(length)
            if zlib.crc32(payload) != crc:
                break
            pos += _FRAME.size + length
            count += 1
        if pos < size:  # a torn frame from a crash mid-append: never acknowledged, cut it off
            log.warning("spool %s: dropping %d bytes of an incomplete last record (a crash during a write)",
                        self.directory, size - pos)
            self._file.truncate(pos)
            self._fsync()
        if count:
            log.info("spool %s holds %d records not yet delivered; they are sent when Kafka answers",
                     self.directory, count)
        return pos, count

    # -- writing (request threads) ----------------------------------------------------------

    def append(self, payloads: Sequence[bytes]) -> None:
        """Append every payload, durably, or none (`SpoolFull`, or the `OSError` of the disk)."""
        data = b"".join(_FRAME.pack(len(p), zlib.crc32(p)) + p for p in payloads)
        with self._lock:
            if self.pending + len(payloads) > self.max_records or self.pending_bytes + len(data) > self.max_bytes:
                raise SpoolFull(
                    f"the spool at {self.directory} holds {self.pending} records ({self.pending_bytes} bytes), "
                    f"at most {self.max_records} records / {self.max_bytes} bytes; Kafka has not taken them yet"
                )
            try:
                self._file.seek(0, os.SEEK_END)
                self._file.write(data)
                self._file.flush()
                if self.sync:
                    os.fsync(self._file.fileno())
            except OSError:
                with contextlib.suppress(OSError):  # leave no half-written frame behind (ENOSPC)
                    self._file.truncate(self._end)
                raise
            self._end += len(data)
            self.pending += len(payloads)
            self.pending_bytes += len(data)

    # -- draining (the drain thread) --------------------------------------------------------

    def peek(self, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` oldest records as ``(offset after it, payload)``, without removing them."""
        with self._lock:
            out, pos = [], self._head
            while pos < self._end and len(out) < limit:
                self._file.seek(pos)
                length, _ = _FRAME.unpack(self._file.read(_FRAME.size))
                payload = self._file.read(length)
                pos += _FRAME.size + length
                out.append((pos, payload))
            return out

    def commit(self, offset: int) -> None:
        """Forget every record before ``offset`` (they were delivered)."""
        with self._lock:
            if offset <= self._head:
                return
            removed = self._count(self._head, offset)
            self._head = offset
            self.pending -= removed
            self.pending_bytes = self._end - self._head
            if self._head == self._end:  # drained: start the file over (truncate first, see _recover)
                self._file.truncate(0)
                self._fsync()
                self._head = self._end = 0
            self._write_head(self._head)

    def _count(self, start: int, stop: int) -> int:
        n, pos = 0, start
        while pos < stop:
            self._file.seek(pos)
            length, _ = _FRAME.unpack(self._file.read(_FRAME.size))
            pos += _FRAME.size + length
            n += 1
        return n

    def _write_head(self, offset: int) -> None:
        tmp = self._head_path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(str(offset).encode("ascii"))
            f.flush()
            if self.sync:
                os.fsync(f.fileno())
        os.replace(tmp, self._head_path)
        if self.sync:
            _fsync_dir(self.directory)

    def _fsync(self) -> None:
        if self.sync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            if self._file.closed:
                return
            self._file.close()
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)


def claim_slots(root: Path, **kwargs) -> tuple[Spool, list[Spool]]:
    """This process's own spool under ``root`` (the first free ``slot-N``), and the orphans.

    Orphans are existing slots no live process holds that still have records (their owner
    crashed, or ran with more workers than now): this process drains them too, then releases
    them. The own slot is always a fresh claim, so two processes never write one file.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    own: Spool | None = None
    orphans: list[Spool] = []
    n = 0
    while own is None:
        try:
            candidate = Spool(root / f"slot-{n}", **kwargs)
        except SpoolBusy:
            n += 1
            continue
        if candidate.pending:
            orphans.append(candidate)  # keep it locked while we drain it; look for an empty one
            n += 1
            continue
        own = candidate
    for path in sorted(root.glob("slot-*")):
        if path.name == own.directory.name or any(o.directory == path for o in orphans):
            continue
        try:
            candidate = Spool(path, **kwargs)
        except SpoolBusy:
            continue
        if candidate.pending:
            orphans.append(candidate)
        else:
            candidate.close()
    return own, orphans


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
