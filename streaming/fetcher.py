"""Kafka fetching and decoding in a child process, so the trainer's own process only learns.

Why: per event, the trainer spends about as long in kafka-python (fetch responses parsed and
CRC-checked in pure Python) and in validation as in the learning core, and one Python process
can only do them one after the other. A second process fetches and validates the next batch
while the first learns the current one — on a 2-core machine close to twice the throughput.

What stays in the trainer's process: everything the exactly-once effect rests on. Its
consumer stays in the group (rebalances, commits) with its partitions *paused*, so it never
fetches; the trainer's offsets, checkpoints and commits are unchanged. The fetcher holds no
state worth keeping: it is told "read these partitions from these offsets, with this
schema", and answers with batches tagged with that order's *epoch*. Every change — a
revocation, an offset gap, a recreated topic, a restarted fetcher — issues a new epoch from
the trainer's own offsets, and batches of an older epoch are dropped unread, so a batch in
flight is never learned twice nor skipped.

Wire format between the two: `marshal` of plain tuples (the same interpreter on both sides;
several times cheaper than pickling objects). A record travels with its original key and
value, so a dead letter written by the trainer carries the bytes that were consumed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import marshal
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from streaming.schemas import (
    Feedback,
    InvalidEvent,
    ModelSchema,
    Prediction,
    PredictionBatch,
    Reason,
    decode_event,
)
from streaming.trainer import Record
from streaming.undecodable import find_undecodable_batch

log = logging.getLogger(__name__)

# kinds of decoded payloads on the wire
_FEEDBACK, _PREDICTION, _INVALID, _UNDECODABLE, _PREDICTIONS = 0, 1, 2, 3, 4
Position = int | None  # an offset, or None for "the partition's beginning"
# kafka-python's client keyword arguments: mixed types, passed through unread (untyped on purpose)
KafkaConfig = dict[str, Any]
# (kind, epoch, ends, records) of a data message, or ("error", None, None, the child's traceback)
Batch = tuple[str, int | None, dict[tuple[str, int], int | None] | None, list[Record] | str]

if TYPE_CHECKING:
    from kafka.consumer.fetcher import ConsumerRecord


class FetcherError(RuntimeError):
    """The fetcher process could not start or stopped with an error (the message says why)."""


# -- the child process ---------------------------------------------------------------------------


def child_main(control_fd: int, data_fd: int) -> None:
    """Entry point of the fetcher process (see the module docstring).

    Control messages (from the trainer): first ``("config", kafka_config, predictions_topic,
    max_records, report_every_s)``, then any of ``("read", epoch, [(topic, partition, position)],
    schema)``, ``("stop", epoch)``, ``("exit",)``. Data messages (to the trainer):
    ``("batch", epoch, [(topic, partition, highwater)], [record tuple, ...])`` — sent when
    records arrived, and every `report_every_s` without (so lag and the end of a partition
    are known while it is idle) — and ``("error", text)`` before an abnormal exit.
    """
    from streaming.broker import die_with_parent

    # Stop signals often reach the whole process group (Ctrl-C in a terminal, `timeout`,
    # systemd): the trainer decides when its fetcher stops — it finishes its batch, checkpoints,
    # then sends "exit". If the trainer dies instead, the kernel kills this process.
    die_with_parent(signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s fetcher: %(message)s")
    control, data = Connection(control_fd, writable=False), Connection(data_fd, readable=False)
    sender = _Sender(data)
    try:
        _, kafka_config, predictions_topic, max_records, report_every_s = control.recv()
        _fetch_loop(control, sender, kafka_config, predictions_topic, max_records, report_every_s)
    except (EOFError, BrokenPipeError):  # the trainer is gone: nothing to report to
        pass
    except Exception:  # noqa: BLE001 - told to the trainer, which logs it and starts a new fetcher
        sender.drop_pending()
        with contextlib.suppress(OSError):
            sender.put(marshal.dumps(("error", traceback.format_exc(limit=8))))
    finally:
        sender.close()


class _Sender:
    """Writes batches to the trainer from a thread, up to `depth` batches ahead.

    Why a thread: a pipe holds 64 KiB to 1 MiB, less than one batch, so a write from the
    fetching thread would wait for the trainer to finish learning the previous batch — the
    two processes would take turns instead of working at the same time. The queue's bound is
    the back-pressure: at most `depth` decoded batches wait in memory.
    """

    def __init__(self, data: Connection, depth: int = 4) -> None:
        self._data = data
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="fetcher-sender", daemon=True)
        self._thread.start()

    def put(self, payload: bytes) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(payload, timeout=0.2)
                return
            except queue.Full:
                continue

    def drop_pending(self) -> None:
        """Forget queued batches (a new order made them stale)."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()

    def close(self, timeout_s: float = 5.0) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while (payload := self._queue.get()) is not None:
            try:
                self._data.send_bytes(payload)
            except OSError as e:  # BrokenPipeError: the trainer is gone
                self._error = e
                return


def _fetch_loop(control: Connection, sender: _Sender, kafka_config: KafkaConfig, predictions_topic: str,
                max_records: int, report_every_s: float) -> None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_config)
    epoch, schema, reading = -1, None, False
    last_sent = 0.0
    try:
        while True:
            while control.poll(0 if reading else report_every_s):
                message = control.recv()
                if message[0] == "exit":
                    return
                sender.drop_pending()  # batches of the previous order: the trainer would drop them
                if message[0] == "stop":
                    epoch, reading = message[1], False
                    consumer.assign([])
                elif message[0] == "read":
                    epoch, positions, schema = message[1], message[2], message[3]
                    consumer.assign([TopicPartition(t, p) for t, p, _ in positions])
                    for t, p, position in positions:
                        if position is None:
                            consumer.seek_to_beginning(TopicPartition(t, p))
                        else:
                            consumer.seek(TopicPartition(t, p), position)
                    reading = bool(positions)
            if not reading:
                continue
            try:
                fetched = consumer.poll(timeout_ms=100, max_records=max_records)
            except Exception as e:
                bad = find_undecodable_batch(e)
                if bad is None:
                    raise
                # the trainer dead-letters it; this fetcher reads on after it
                log.warning("%s", bad.detail)
                consumer.seek(TopicPartition(bad.topic, bad.partition), bad.end)
                items = [(bad.topic, bad.partition, bad.start, 0, None, bad.raw, _UNDECODABLE, bad.detail, bad.span)]
            else:
                items = [
                    _encode(tp.topic, tp.partition, r, tp.topic == predictions_topic, schema)
                    for tp, records in fetched.items() for r in records
                ]
            now = time.monotonic()
            if items or now - last_sent >= report_every_s:
                ends = [(tp.topic, tp.partition, consumer.highwater(tp)) for tp in consumer.assignment()]
                sender.put(marshal.dumps(("batch", epoch, ends, items)))
                last_sent = now
    finally:
        consumer.close(autocommit=False)


def _encode(topic: str, partition: int, r: ConsumerRecord, is_prediction: bool, schema: ModelSchema) -> tuple:
    """One consumed record, validated, as a marshal-able tuple."""
    head = (topic, partition, r.offset, r.timestamp or 0, r.key, r.value)
    e = decode_event(r.value, schema, is_prediction)
    if type(e) is InvalidEvent:
        return (*head, _INVALID, e.reason.value, e.detail)
    if type(e) is PredictionBatch:  # one request's predictions: columns, rebuilt by `decode_batch`
        ps = e.predictions
        return (*head, _PREDICTIONS, e.model, e.version, e.timestamp, [p.prediction_id for p in ps],
                [p.features for p in ps], [p.label for p in ps])
    if is_prediction:
        return (*head, _PREDICTION, e.prediction_id, e.model, e.version, e.features, e.label, e.timestamp)
    return (*head, _FEEDBACK, e.event_id, e.model, e.label, e.features, e.prediction_id, e.timestamp)


def decode_batch(payload: bytes) -> Batch:
    """``(kind, epoch, ends, records)`` of a data message; records as `Record` with `event` set."""
    message = marshal.loads(payload)
    if message[0] == "error":
        return "error", None, None, message[1]
    _, epoch, ends, items = message
    records = []
    append = records.append
    for item in items:
        kind = item[6]
        if kind == _FEEDBACK:
            event: Feedback | Prediction | PredictionBatch | InvalidEvent = Feedback(item[7], item[8], item[9], item[10], item[11], item[12])
        elif kind == _PREDICTION:
            event = Prediction(item[7], item[8], item[9], item[10], item[11], item[12])
        elif kind == _PREDICTIONS:
            model, version, ts = item[7], item[8], item[9]
            event = PredictionBatch(model, version, ts, [
                Prediction(pid, model, version, features, label, ts)
                for pid, features, label in zip(item[10], item[11], item[12], strict=True)])
        elif kind == _INVALID:
            event = InvalidEvent(Reason(item[7]), item[8])
        else:  # _UNDECODABLE: one dead letter standing for the batch's offsets
            append(Record(item[0], item[1], item[2], None, item[5], 0,
                          InvalidEvent(Reason.UNDECODABLE_BATCH, item[7]), item[8]))
            continue
        append(Record(item[0], item[1], item[2], item[4], item[5], item[3], event))
    return "batch", epoch, {(t, p): high for t, p, high in ends}, records


# -- the trainer's side --------------------------------------------------------------------------


class Fetcher:
    """Owns one fetcher process: start it, order reads, receive decoded batches, restart it.

    `read` and `stop` are cheap, never block on the child, and are safe from kafka-python's
    rebalance callbacks; `receive` is called from the trainer's loop.
    """

    def __init__(self, kafka_config: KafkaConfig, predictions_topic: str, max_records: int,
                 report_every_s: float = 0.5, restart_backoff_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._args = (kafka_config, predictions_topic, max_records, report_every_s)
        self.restart_backoff_s = restart_backoff_s
        self._clock = clock
        self._process: subprocess.Popen[bytes] | None = None
        self._control: Connection | None = None
        self._data: Connection | None = None
        self.epoch = 0
        self._next_start = 0.0
        self._failures = 0
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Fetcher:
        # A fresh interpreter (not fork: this process has Kafka and metrics threads; not
        # multiprocessing's spawn: it re-imports the caller's __main__, which breaks any script
        # without a main guard), talking over two pipes handed down as file descriptors.
        control_child, control = os.pipe()
        data, data_child = os.pipe()
        code = (f"import sys; sys.path[:0] = {[p for p in sys.path if p]!r}; "
                f"from streaming.fetcher import child_main; child_main({control_child}, {data_child})")
        self._process = subprocess.Popen([sys.executable, "-c", code], pass_fds=(control_child, data_child),
                                         stdin=subprocess.DEVNULL)
        os.close(control_child)
        os.close(data_child)
        with contextlib.suppress(OSError, AttributeError):  # Linux: room for more than 64 KiB in flight
            fcntl.fcntl(data, fcntl.F_SETPIPE_SZ, 1 << 20)
        self._control = Connection(control, readable=False)
        self._data = Connection(data, writable=False)
        self._send(("config", *self._args))
        log.info("fetcher process %d reads and validates records for this trainer", self._process.pid)
        return self

    def read(self, positions: dict[tuple[str, int], Position], schema: ModelSchema) -> int:
        """Read these partitions from these positions from now on; returns the new epoch."""
        self.epoch += 1
        self._send(("read", self.epoch, [(t, p, o) for (t, p), o in sorted(positions.items())], schema))
        return self.epoch

    def stop(self) -> None:
        """Stop reading (partitions revoked or lost); batches in flight become stale."""
        self.epoch += 1
        self._send(("stop", self.epoch))

    def receive(self, timeout_s: float) -> tuple[list[Record], dict[tuple[str, int], int | None]] | None:
        """The next batch of the current epoch, as records with their decoded `event`, and the
        partitions' ends; None if none came within `timeout_s`. A batch of an older epoch is
        dropped; a dead fetcher is logged and restarted (after a back-off)."""
        deadline = self._clock() + timeout_s
        while True:
            if self._process is None and not self._restart():
                time.sleep(max(0.0, min(timeout_s, self._next_start - self._clock())))
                return None
            try:
                if not self._data.poll(max(0.0, deadline - self._clock())):
                    return None
                kind, epoch, ends, records = decode_batch(self._data.recv_bytes())
            except (EOFError, OSError):
                self._lost(f"fetcher process exited with code {self._exitcode()}")
                continue
            if kind == "error":
                self._lost(f"fetcher process failed:\n{records}")
                continue
            self._failures = 0  # it works: the next loss is restarted after the shortest back-off
            if epoch == self.epoch:
                return records, ends
            if self._clock() >= deadline:
                return None

    def _send(self, message: tuple) -> None:
        if self._control is None:
            return
        with contextlib.suppress(OSError):  # the child is gone: receive() notices and starts a new one
            self._control.send(message)

    def _exitcode(self) -> int | None:
        try:
            return self._process.wait(1.0)
        except subprocess.TimeoutExpired:
            return None

    def _lost(self, why: str) -> None:
        # back-off doubling up to a minute while it keeps failing: a fetcher that cannot
        # start (Kafka unreachable, say) must not turn into a busy crash loop
        delay = min(60.0, self.restart_backoff_s * 2 ** self._failures)
        self._failures += 1
        log.error("%s; starting a new one in %.0fs", why, delay)
        self._discard()
        self._next_start = self._clock() + delay

    def _restart(self) -> bool:
        if self._clock() < self._next_start:
            return False
        # The new child starts idle; its owner sees `restarts` change and orders a read from
        # where the trainer is (`FetcherSource.poll`), under a new epoch.
        self.restarts += 1
        self.start()
        return True

    def _discard(self) -> None:
        for conn in (self._control, self._data):
            if conn is not None:
                conn.close()
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5.0)
        self._process = self._control = self._data = None

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the child to exit, then make sure it has."""
        if self._process is None:
            return
        self._send(("exit",))
        try:  # drain so a child blocked on a full pipe can see the order
            deadline = self._clock() + timeout_s
            while self._process.poll() is None and self._clock() < deadline:
                if self._data.poll(0.05):
                    self._data.recv_bytes()
        except (EOFError, OSError):
            pass
        self._discard()
