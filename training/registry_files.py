"""Crash-safe file primitives for the model registry.

The registry lives on a plain file system (a local path, or a volume shared by a trainer and
many serving replicas), so every guarantee it gives is built from three operations that
POSIX makes atomic: ``rename`` of a file or directory within one file system, ``O_APPEND``
writes of a short line, and ``flock`` on an open file. Each helper here fsyncs the data *and*
the directory entry, because a rename that is atomic but not yet durable can be undone by a
power cut, leaving an alias that points at a version whose files never reached the disk.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_bytes(d / "champion", b"3\\n")
>>> (d / "champion").read_bytes()
b'3\\n'
>>> append_line(d / "log.jsonl", '{"a": 1}')
>>> (d / "log.jsonl").read_text()
'{"a": 1}\\n'
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

try:  # POSIX; the registry targets Linux hosts and Kubernetes volumes.
    import fcntl
except ImportError:  # pragma: no cover - Windows: single-writer use only
    fcntl = None  # type: ignore[assignment]

#: Prefix of every scratch entry the registry writes next to real ones; listings skip it.
SCRATCH_PREFIX = "."


def fsync_dir(path: Path) -> None:
    """Make the entries of directory `path` (creations, renames, unlinks) durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms that cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes) -> None:
    """Create (or truncate) `path` with `data` and fsync it; for files no reader sees yet."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader sees the old content or the new, never a mix.

    The temp file lives in the same directory (rename is atomic only within one file
    system) and starts with a dot so directory listings ignore it.
    """
    tmp = path.with_name(f"{SCRATCH_PREFIX}{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write_durable(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def create_once(path: Path, data: bytes) -> bytes:
    """Write `path` with `data` unless it exists; returns what `path` holds afterwards.

    Two writers racing both see the same winner's bytes: the new file is written in full
    under a temp name and hard-linked into place, and a link never replaces a file.
    """
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes()
    tmp = path.with_name(f"{SCRATCH_PREFIX}{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write_durable(tmp, data)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
            fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path.read_bytes()


def remove_durable(path: Path) -> bool:
    """Unlink `path` (atomic) and make that durable; False when it did not exist."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


def append_line(path: Path, line: str) -> None:
    """Append one line with a single ``O_APPEND`` write, then fsync.

    One ``write`` call of a short line is not interleaved with other appenders, so a log
    shared by several processes stays one JSON document per line.
    """
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path: Path, graveyard: Path) -> None:
    """Delete directory `path` so that no reader ever sees it half-deleted.

    It is first renamed (atomically) to a scratch name inside `graveyard`, so it vanishes
    from listings in one step; only then are its files removed.
    """
    doomed = graveyard / f"{SCRATCH_PREFIX}trash-{path.name}-{uuid.uuid4().hex}"
    os.rename(path, doomed)
    fsync_dir(path.parent)
    shutil.rmtree(doomed, ignore_errors=True)


def numbered_entries(directory: Path) -> list[int]:
    """Integer-named entries of `directory`, ascending (scratch and other names ignored)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(n) for n in names if n.isdigit() and not n.startswith("0"))


def publish_numbered_dir(
    parent: Path,
    scratch: Path,
    files: dict[str, bytes],
    numbered_files: Callable[[int], dict[str, bytes]],
    max_attempts: int = 1000,
) -> int:
    """Create ``parent/<n>`` for the next free `n`, complete or not at all; return `n`.

    The folder is built under a scratch name in `scratch` (same file system) and renamed into
    place: ``rename`` of a directory is atomic, and it fails when ``parent/<n>`` already
    exists and is not empty, so of two racing publishers exactly one gets each number. The
    loser rewrites `numbered_files(n)` (content that depends on the number, such as a
    signature) for the next number and tries again.
    """
    staging = scratch / f"{SCRATCH_PREFIX}staging-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        for name, data in files.items():
            write_durable(staging / name, data)
        for _ in range(max_attempts):
            existing = numbered_entries(parent)
            n = existing[-1] + 1 if existing else 1
            for name, data in numbered_files(n).items():
                write_durable(staging / name, data)
            fsync_dir(staging)
            try:
                os.rename(staging, parent / str(n))
            except OSError as e:
                if isinstance(e, FileExistsError) or e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue  # another publisher took this number first
                raise
            fsync_dir(parent)
            return n
        raise OSError(f"no free number in {parent} after {max_attempts} attempts")
    except BaseException:
        if staging.exists():
            remove_tree(staging, scratch)
        raise


def read_with_stat(path: Path, limit: int = 4096) -> tuple[bytes, os.stat_result] | None:
    """Content and stat of one small file from the same open (consistent); None if missing."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return os.read(fd, limit), os.fstat(fd)
    finally:
        os.close(fd)


def read_files(directory: Path, names: tuple[str, ...]) -> dict[str, bytes | None] | None:
    """Contents of `names` in `directory` (None for a missing file); None if the directory
    itself is gone, which tells "deleted meanwhile" apart from "a file is missing"."""
    out: dict[str, bytes | None] = {}
    for name in names:
        try:
            out[name] = (directory / name).read_bytes()
        except FileNotFoundError:
            if not directory.is_dir():
                return None
            out[name] = None
    return out


def read_json_lines(path: Path) -> list[dict]:
    """Parse a JSON-lines file; a torn line (a writer died mid-append) is skipped, not fatal."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on `path` (created if missing), across threads and processes.

    Each call opens its own file description, so two threads of one process exclude each
    other just as two processes do.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def sweep_scratch(directory: Path, older_than_s: float) -> None:
    """Remove scratch entries (staging or trash folders, temp files) of writers that died.

    Only entries untouched for `older_than_s` go, so a live writer's scratch is never taken.
    """
    cutoff = time.time() - older_than_s
    for entry in os.scandir(directory):
        if not entry.name.startswith((f"{SCRATCH_PREFIX}staging-", f"{SCRATCH_PREFIX}trash-")):
            continue
        with contextlib.suppress(FileNotFoundError):
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)
