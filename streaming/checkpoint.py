"""Durable, signed checkpoints: the learning state and the offsets it corresponds to, together.

Why offsets live *inside* the checkpoint: the exactly-once effect needs "state after event k"
and "resume at event k+1" to be one atomic fact. Kafka's committed offsets are written after
the checkpoint (for lag monitoring and tooling) but never trusted on resume.

One checkpoint is one file ``<dir>/<model>/checkpoint-<seq>.ckpt``::

    b"PRNLCKP1" | header length (8 bytes, big-endian) | header JSON | system bytes | HMAC-SHA256

The header holds offsets, recent event ids, the join store and bookkeeping; the system bytes
are `LearningSystem.to_bytes()` (a pickle, hence the signature: nothing is unpickled before
its HMAC verifies). Files are written to a temp name, fsynced and renamed, so a ``kill -9``
mid-write leaves the previous checkpoint intact. The newest ``keep`` generations are kept; an
unreadable newest one falls back to an older one (which only means re-learning more events,
since its offsets are older too).

Lineage: each checkpoint names the registry lineage (`training.registry.Registry.lineage`)
of the model it continues. The trainer resumes only its own registry's checkpoints: one from
another registry (same model name, same checkpoint folder) is skipped, said so, and the
trainer starts from its champion instead of republishing a stranger's learning state.

Fail safe: any unusable file — a bad signature, a truncated or garbled header, a path that is
a folder, a file that cannot be read, learning state of the wrong type — is skipped for an
older generation; when checkpoints exist and none is usable, `CheckpointError` says which
and why, and the trainer refuses to start rather than guess.

Fencing: `save` takes the sequence number of the checkpoint the writer last saw; if another
trainer has written a newer one meanwhile (this one lost its partitions without noticing),
the save is refused with `CheckpointFenced` instead of overwriting the successor's progress.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.registry_files import atomic_write_bytes, fsync_dir

log = logging.getLogger(__name__)

MAGIC = b"PRNLCKP1"
_NAME = re.compile(r"^checkpoint-(\d{12})\.ckpt$")
_MAC_LEN = 32


class CheckpointError(Exception):
    """A checkpoint could not be written or none could be read."""


class CheckpointCorrupt(CheckpointError):
    """A checkpoint file failed its signature or format check."""


class CheckpointFenced(CheckpointError):
    """Another trainer wrote a newer checkpoint; this one no longer owns the model."""


@dataclass
class Checkpoint:
    """Everything needed to resume exactly where the checkpointed trainer was."""

    model: str
    system: bytes
    offsets: dict[tuple[str, int], int]  # (topic, partition) -> next offset to read
    recent_ids: list[str] = field(default_factory=list)
    join: dict[str, Any] = field(default_factory=dict)
    stream_time: float | None = None
    info: dict[str, Any] = field(default_factory=dict)  # events_learned, champion_version, ...
    seq: int = 0
    created_at: float = 0.0
    lineage: str | None = None  # the registry lineage of the model (None: written before lineage ids)
    dlq_ends: dict[int, int] = field(default_factory=dict)  # dead-letter partition -> end offset (`streaming.dlq`)

    def header(self) -> dict[str, Any]:
        return {
            "format": 1, "model": self.model, "seq": self.seq, "created_at": self.created_at,
            "lineage": self.lineage,
            "offsets": [[t, p, o] for (t, p), o in sorted(self.offsets.items())],
            "recent_ids": self.recent_ids, "join": self.join, "stream_time": self.stream_time,
            "info": self.info, "dlq_ends": [[p, o] for p, o in sorted(self.dlq_ends.items())],
            "system_sha256": hashlib.sha256(self.system).hexdigest(),
        }


class CheckpointStore:
    """Checkpoints of one model in a directory shared by a trainer and its standbys."""

    def __init__(self, root: str | Path, model: str, key: bytes, keep: int = 2) -> None:
        if not key:
            raise CheckpointError("checkpoint key is empty")
        self.dir = Path(root) / model
        self.model = model
        self._key = key
        self.keep = max(1, keep)

    # -- reading ------------------------------------------------------------------------------

    def sequences(self) -> list[int]:
        """Sequence numbers on disk, newest first."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        except OSError as e:  # NotADirectoryError, PermissionError: nothing can be resumed or saved
            raise CheckpointError(f"checkpoint folder {self.dir} of {self.model!r} cannot be listed: {e}; "
                                  "point PERENNIAL_CHECKPOINT_DIR at a writable folder") from e
        return sorted((int(m.group(1)) for n in names if (m := _NAME.match(n))), reverse=True)

    def latest_seq(self) -> int | None:
        seqs = self.sequences()
        return seqs[0] if seqs else None

    def readable(self, problems: list[str]) -> Iterator[Checkpoint]:
        """Checkpoints that verify, newest first; each one that does not is logged and
        described in `problems` (``"<seq>: why"``), so the caller can say why it gave up."""
        for seq in self.sequences():
            try:
                ckpt = self.load(seq)
            except FileNotFoundError:
                continue  # pruned by the writer while we listed
            except (CheckpointCorrupt, OSError) as e:  # OSError: a folder by that name, unreadable
                log.warning("checkpoint %d of %s is unusable, trying an older one: %s", seq, self.model, e)
                problems.append(f"{seq}: {e}")
                continue
            yield ckpt

    def load_latest(self) -> Checkpoint | None:
        """The newest checkpoint that verifies, or None when there is none at all.

        Raises `CheckpointError` when checkpoints exist but none verifies: starting from
        scratch would silently re-learn (or skip) everything, so an operator must decide.
        """
        problems: list[str] = []
        for ckpt in self.readable(problems):
            return ckpt
        if problems:
            raise self.none_usable(problems)
        return None

    def none_usable(self, problems: list[str]) -> CheckpointError:
        return CheckpointError(
            f"no checkpoint of {self.model!r} in {self.dir} verifies and loads ({'; '.join(problems)}); "
            "check PERENNIAL_CHECKPOINT_KEY, or move the folder away to start from the registry champion"
        )

    def load(self, seq: int) -> Checkpoint:
        return self.decode((self.dir / _filename(seq)).read_bytes())

    def decode(self, data: bytes) -> Checkpoint:
        if len(data) < len(MAGIC) + 8 + _MAC_LEN or not data.startswith(MAGIC):
            raise CheckpointCorrupt("not a Perennial checkpoint (bad magic or truncated)")
        body, mac = data[:-_MAC_LEN], data[-_MAC_LEN:]
        if not hmac.compare_digest(hmac.new(self._key, body, hashlib.sha256).digest(), mac):
            raise CheckpointCorrupt("signature does not verify (corrupt, or written with another key)")
        try:
            return self._parse(body)
        except CheckpointCorrupt:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, struct.error) as e:
            # signed, yet not a header this code understands (another version's, or a bug's)
            raise CheckpointCorrupt(f"signed but unreadable header ({type(e).__name__}: {e})") from e

    def _parse(self, body: bytes) -> Checkpoint:
        (hlen,) = struct.unpack(">Q", body[len(MAGIC): len(MAGIC) + 8])
        start = len(MAGIC) + 8
        header = json.loads(body[start: start + hlen])
        system = body[start + hlen:]
        if not isinstance(header, dict):
            raise CheckpointCorrupt(f"header is JSON {type(header).__name__}; expected an object")
        if header.get("format") != 1 or header.get("model") != self.model:
            raise CheckpointCorrupt(f"checkpoint is for {header.get('model')!r} format {header.get('format')}")
        if hashlib.sha256(system).hexdigest() != header["system_sha256"]:
            raise CheckpointCorrupt("system bytes do not match their checksum")
        lineage = header.get("lineage")
        return Checkpoint(
            model=header["model"], system=system,
            offsets={(str(t), int(p)): int(o) for t, p, o in header["offsets"]},
            recent_ids=list(header["recent_ids"]), join=dict(header["join"]),
            stream_time=None if header["stream_time"] is None else float(header["stream_time"]),
            info=dict(header["info"]), seq=int(header["seq"]), created_at=float(header["created_at"]),
            lineage=None if lineage is None else str(lineage),
            dlq_ends={int(p): int(o) for p, o in header.get("dlq_ends", [])},
        )

    # -- writing ------------------------------------------------------------------------------

    def encode(self, ckpt: Checkpoint) -> bytes:
        header = json.dumps(ckpt.header(), separators=(",", ":")).encode("utf-8")
        body = b"".join([MAGIC, struct.pack(">Q", len(header)), header, ckpt.system])
        return body + hmac.new(self._key, body, hashlib.sha256).digest()

    def save(self, ckpt: Checkpoint, expected_seq: int | None) -> int:
        """Write `ckpt` durably as the next generation; returns its sequence number.

        `expected_seq` is the newest sequence this writer knows (None: it knows none).
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        latest = self.latest_seq()
        if latest is not None and (expected_seq is None or latest > expected_seq):
            raise CheckpointFenced(
                f"checkpoint {latest} of {self.model!r} is newer than {expected_seq}: another trainer "
                "has taken over; this one must reload before it writes"
            )
        ckpt.seq = (latest or 0) + 1
        ckpt.created_at = time.time()
        atomic_write_bytes(self.dir / _filename(ckpt.seq), self.encode(ckpt))
        self._prune(ckpt.seq)
        return ckpt.seq

    def _prune(self, newest: int) -> None:
        removed = False
        for seq in self.sequences():
            if seq <= newest - self.keep:
                try:
                    os.unlink(self.dir / _filename(seq))
                    removed = True
                except FileNotFoundError:
                    pass
                except OSError as e:  # e.g. a folder by that name: not ours to delete
                    log.warning("cannot remove old checkpoint %s: %s", self.dir / _filename(seq), e)
        for name in os.listdir(self.dir):  # temp files of a writer killed mid-write
            if name.startswith(".checkpoint-") and name.endswith(".tmp"):
                path = self.dir / name
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - path.stat().st_mtime > 60:
                        path.unlink()
                        removed = True
        if removed:
            fsync_dir(self.dir)


def _filename(seq: int) -> str:
    return f"checkpoint-{seq:012d}.ckpt"
