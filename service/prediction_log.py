"""The service's only Kafka client: feedback (durable) and the prediction log (best effort, spooled).

**Feedback** is a promise: ``/feedback`` answers 2xx only once the records are in the local
durable spool (`service.spool`, fsynced before the answer); a drain thread sends them to
``<model>.feedback`` in order with the broker's acknowledgement (``acks=all`` by default)
and removes them from the spool only then. A broker that is down — at start, or for longer
than the producer's delivery timeout — delays delivery, it does not lose labels. A full spool
(or a disk that cannot be written) refuses with 503 and ``Retry-After``, so the client keeps
the label. Records too large for Kafka are refused at the door (the data plane checks
`max_record_bytes` first), so they never wedge the spool.

**Predictions** must never wait: a request puts its *one* record (all its predictions,
``streaming.schemas.PredictionBatchWire``) into an in-memory queue bounded in predictions,
and returns; a thread takes every record queued (waiting `GATHER_S` after the first for
others), merges those it can into one
(`service.prediction_records.coalesce`), encodes it (pydantic-core's Rust encoder), splits it
when it would exceed ``max_record_bytes``, and sends it while the broker takes records, and
moves each request's record to a second, bounded spool (written but not fsynced per record)
while it does not, so labels that arrive after an outage still find their prediction to join.
Whatever does not fit is dropped and counted in predictions
(``perennial_prediction_log_dropped_total``). So the prediction log costs the request one
queue put whatever the number of instances, and Kafka one record per request at most — one
per several requests under load.

Record shapes are the ones ``streaming.schemas`` validates (``PredictionBatchWire``,
``FeedbackWire``); a contract test decodes what this module writes with those decoders.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from service.errors import Kind, ServingError
from service.prediction_records import coalesce, encode_predictions, prediction_count
from service.spool import Spool, SpoolFull, claim_slots
from service.spool_drain import (
    FEEDBACK,
    PREDICTIONS,
    RECONNECT_S,
    SpoolDrain,
    permanent,
    spool_entry,
)
from streaming.metrics import ServiceMetrics
from streaming.topics import key, predictions_topic

log = logging.getLogger(__name__)

#: most queued records the prediction thread takes at once (to merge; `service.prediction_records`)
_TAKE_RECORDS = 1024
#: after a record arrives, the prediction thread waits this long for others to merge with it:
#: at 1,000 requests/s of one instance a record left alone is a send (~90 µs of Python) per
#: request; gathered for 10 ms, one per ten. Nothing waits on a prediction record.
GATHER_S = 0.01
__all__ = ["KafkaEventLog", "encode_predictions", "encode_record", "prediction_count"]


def encode_record(record: dict) -> bytes:
    """The bytes a record is produced as (also what the door measures against the size limit)."""
    return json.dumps(record, separators=(",", ":")).encode("utf-8")


class KafkaEventLog(SpoolDrain):
    """Durable feedback spool + prediction queue, drained to Kafka by two threads.

    ``bootstrap_servers=""`` disables Kafka entirely (feedback then answers 503).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        metrics: ServiceMetrics,
        buffer: int = 10_000,
        create_topics: bool = True,
        *,
        spool_dir: Path | None = None,
        feedback_spool_records: int = 100_000,
        feedback_spool_bytes: int = 256 * 1024 * 1024,
        prediction_spool_records: int = 100_000,
        prediction_spool_bytes: int = 256 * 1024 * 1024,
        delivery_timeout_s: float = 120.0,
        acks: str | int = "all",
        compression: str = "none",
        retry_after_s: int = 5,
        producer_factory: Callable[..., object] | None = None,
        max_record_bytes: int = 1_000_000,
        gather_s: float = GATHER_S,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._metrics = metrics
        # (model, record, predictions in it); bounded in predictions by `buffer`
        self._queue: queue.Queue[tuple[str, dict, int] | None] = queue.Queue()
        self._buffer = buffer
        self._queued = 0  # predictions in the queue
        self._queued_lock = threading.Lock()
        self.max_record_bytes = max_record_bytes
        self._gather_s = gather_s
        self._create_topics = create_topics
        self._known_topics: set[str] = set()
        self._topic_lock = threading.Lock()
        self._producer = None
        self._producer_lock = threading.Lock()
        self._producer_factory = producer_factory
        self._next_connect = 0.0
        self._healthy = False  # the broker took our last send
        self._delivery_timeout_s = delivery_timeout_s
        self._acks = acks
        self._compression = None if compression == "none" else compression
        self.retry_after_s = retry_after_s
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._outage_logged = False
        self.sent = 0  # records acknowledged by the broker (tests and diagnostics)
        self.feedback: Spool | None = None
        self.predictions: Spool | None = None
        self._orphans: dict[str, list[Spool]] = {FEEDBACK: [], PREDICTIONS: []}
        if self.enabled:
            if spool_dir is None:
                spool_dir = Path(tempfile.mkdtemp(prefix="perennial-spool-"))
                log.warning("no spool directory configured; using %s (not kept across restarts)", spool_dir)
            self.spool_dir = Path(spool_dir)
            self.feedback, self._orphans[FEEDBACK] = claim_slots(
                self.spool_dir / FEEDBACK, max_records=feedback_spool_records, max_bytes=feedback_spool_bytes)
            self.predictions, self._orphans[PREDICTIONS] = claim_slots(
                self.spool_dir / PREDICTIONS, max_records=prediction_spool_records,
                max_bytes=prediction_spool_bytes, sync=False)
            self._set_gauges()

    @property
    def enabled(self) -> bool:
        return bool(self.bootstrap_servers)

    # -- request side ---------------------------------------------------------------------

    def log_predictions(self, model: str, record: dict, count: int) -> None:
        """Queue one request's prediction record (``count`` predictions) for
        ``<model>.predictions``; never blocks. Dropped and counted when the queue holds
        ``buffer`` predictions already."""
        if not self.enabled:
            return
        with self._queued_lock:
            if self._queued + count > self._buffer and self._queued:
                full = True
            else:
                full = False
                self._queued += count
        if full:
            self._metrics.prediction_log_dropped.labels(model=model).inc(count)
            return
        self._queue.put_nowait((model, record, count))

    def _take(self, count: int) -> None:
        with self._queued_lock:
            self._queued -= count

    def send_feedback(self, model: str, records: list[dict]) -> None:
        """Make ``records`` durable in the spool (fsync) or raise 503: the caller answers only after this.

        Blocking disk I/O: call it from a worker thread, not the event loop.
        """
        if not self.enabled:
            raise ServingError(
                Kind.UNAVAILABLE, "feedback is disabled: no Kafka bootstrap servers configured "
                "(set --bootstrap-servers or PERENNIAL_BOOTSTRAP_SERVERS)"
            )
        payloads = [spool_entry(model, encode_record(r)) for r in records]
        try:
            self.feedback.append(payloads)
        except SpoolFull as e:
            raise ServingError(Kind.UNAVAILABLE, f"{e}; retry later", retry_after=self.retry_after_s) from None
        except OSError as e:
            log.error("cannot write the feedback spool %s: %s", self.feedback.directory, e)
            raise ServingError(
                Kind.UNAVAILABLE, f"the feedback spool cannot be written ({e.strerror or e}); retry later",
                retry_after=self.retry_after_s,
            ) from None
        self._set_gauges()
        self._wake.set()

    # -- threads ----------------------------------------------------------------------------

    def start(self) -> None:
        if not self.enabled or self._threads:
            return
        for name, target in (("perennial-feedback-drain", self._drain_loop),
                             ("perennial-prediction-log", self._prediction_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop: queued predictions go to their spool, undelivered records stay on disk for the next start."""
        if not self.enabled:
            return
        self._closing.set()
        self._wake.set()
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout_s)
        for t in self._threads:
            t.join(timeout=timeout_s)
        self._threads = []
        if self._producer is not None:
            try:  # failed in-flight predictions land in the spool through their errback
                self._producer.flush(timeout=timeout_s)
                self._producer.close(timeout=timeout_s)
            except Exception as e:  # closing a producer to a dead broker may time out
                log.warning("closing the Kafka producer: %s", e)
            self._producer = None
        self._spool_queued()
        left = self.feedback.pending + sum(s.pending for s in self._orphans[FEEDBACK])
        if left:
            log.warning("%d feedback records not yet delivered stay in the spool %s for the next start",
                        left, self.spool_dir / FEEDBACK)
        for spool in (self.feedback, self.predictions, *self._orphans[FEEDBACK], *self._orphans[PREDICTIONS]):
            spool.close()

    # -- prediction thread: queue → Kafka while it answers, → spool while it does not ---------

    def _prediction_loop(self) -> None:
        while True:
            items = [self._queue.get()]
            if items[0] is not None and self._gather_s:
                self._closing.wait(self._gather_s)  # let the requests that follow queue theirs
            while items[-1] is not None and len(items) < _TAKE_RECORDS:  # and whatever else is queued
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = items[-1] is None  # close() queued its sentinel
            if stop:
                items.pop()
            for _, _, count in items:
                self._take(count)
            if stop or self._closing.is_set():
                for item in items:
                    self._spool_record(*item)
                return
            # to Kafka: the records of several requests in one (one send, not one per request);
            # to the spool while Kafka does not answer: one per request, as they came
            healthy = self._producer is not None and self._healthy
            for model, record, count in coalesce(items) if healthy else items:
                try:
                    values = encode_predictions(record, self.max_record_bytes)
                except Exception as e:  # a value the encoder cannot write: a bug, but never a stuck log
                    log.warning("prediction record for %s cannot be encoded: %s", model, e)
                    self._metrics.prediction_log_dropped.labels(model=model).inc(count)
                    continue
                for value in values:
                    self._send_prediction(model, value, count if len(values) == 1 else prediction_count(value))

    def _send_prediction(self, model: str, value: bytes, count: int) -> None:
        # A healthy producer takes new records even while the spool still holds old ones: the
        # join does not need predictions in order, and under steady load a spool that must
        # be empty first would keep every record on the detour through the disk.
        producer = self._producer
        if producer is None or not self._healthy:
            self._spool_prediction(model, value, count)
            self._wake.set()
            return
        topic = predictions_topic(model)
        try:
            self._ensure_topic(topic)
            future = producer.send(topic, key=key(model), value=value)
        except Exception as e:
            if permanent(e):
                log.warning("prediction record for %s refused by the producer: %s", model, e)
                self._metrics.prediction_log_dropped.labels(model=model).inc(count)
                return
            self._broker_failed(e)
            self._spool_prediction(model, value, count)
            return
        future.add_callback(self._acked)
        future.add_errback(self._prediction_failed, model, value, count)

    def _prediction_failed(self, model: str, value: bytes, count: int, error: Exception) -> None:
        """Errback of a direct prediction send (kafka-python appends the exception last)."""
        if permanent(error):
            log.warning("Kafka refused a prediction record for %s: %s", model, error)
            self._metrics.prediction_log_dropped.labels(model=model).inc(count)
            return
        self._broker_failed(error)
        self._spool_prediction(model, value, count)

    def _spool_record(self, model: str, record: dict, count: int) -> None:
        """A record taken from the queue at shutdown: encoded into the spool for the next start."""
        try:
            values = encode_predictions(record, self.max_record_bytes)
        except Exception:
            self._metrics.prediction_log_dropped.labels(model=model).inc(count)
            return
        for value in values:
            self._spool_prediction(model, value, count if len(values) == 1 else prediction_count(value))

    def _spool_prediction(self, model: str, value: bytes, count: int = 1) -> None:
        try:
            self.predictions.append([spool_entry(model, value)])
        except (SpoolFull, OSError, ValueError):  # ValueError: spool closed at shutdown
            self._metrics.prediction_log_dropped.labels(model=model).inc(count)
            return
        self._metrics.prediction_log_spooled.labels(model=model).inc(count)
        self._set_gauges()

    def _spool_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._take(item[2])
                self._spool_record(*item)

    def _acked(self, _metadata) -> None:
        self.sent += 1
        self._healthy = True

    # -- the producer ---------------------------------------------------------------------

    def _connect(self):
        with self._producer_lock:
            if self._producer is not None or time.monotonic() < self._next_connect:
                return self._producer
            try:
                self._producer = self._new_producer()
                self._healthy = True
            except Exception as e:
                self._next_connect = time.monotonic() + RECONNECT_S
                if not self._outage_logged:
                    log.warning("Kafka at %s unavailable (%s); feedback and predictions are kept in the spool %s "
                                "until it answers", self.bootstrap_servers, e, self.spool_dir)
                    self._outage_logged = True
            return self._producer

    def _new_producer(self):
        if self._producer_factory is not None:
            return self._producer_factory()
        from kafka import KafkaProducer

        delivery_ms = max(int(self._delivery_timeout_s * 1000), 1000)
        return KafkaProducer(
            bootstrap_servers=self.bootstrap_servers.split(","),
            client_id="perennial-serve",
            acks=self._acks,
            # Fewer, larger produce requests: kafka-python's sender costs per request far more
            # than per byte (measured against the embedded broker, 21 KB records at 220/s: 1.6 ms
            # of CPU per record at linger 5 ms and the default 16 KB batches, which such records
            # overflow; 0.4 ms at 50 ms and 512 KB). Nothing waits on a prediction record, and
            # the feedback drain's batches of up to 500 records wait one linger each.
            linger_ms=50,
            batch_size=512 * 1024,
            compression_type=self._compression,
            max_block_ms=2000,
            bootstrap_timeout_ms=2000,
            request_timeout_ms=min(10_000, delivery_ms // 2),
            delivery_timeout_ms=delivery_ms,
        )

    def _broker_failed(self, error: Exception) -> None:
        self._healthy = False
        with self._topic_lock:
            self._known_topics.clear()  # a broker that came back may have lost its topics
        if not self._outage_logged:
            log.warning("Kafka at %s did not take a record (%s); feedback and predictions are kept in the "
                        "spool %s until it answers", self.bootstrap_servers, error, self.spool_dir)
            self._outage_logged = True

    def _ensure_topic(self, topic: str) -> None:
        if not self._create_topics:
            return
        with self._topic_lock:
            if topic in self._known_topics:
                return
        from streaming.broker import ensure_topics

        try:
            ensure_topics(self.bootstrap_servers, [topic], timeout_s=5)
        except Exception as e:  # the producer may still succeed (auto-creation), so go on
            log.debug("could not create topic %s: %s", topic, e)
        with self._topic_lock:  # asked once per broker session: a failure clears the set
            self._known_topics.add(topic)

    def _set_gauges(self) -> None:
        for kind, own in ((FEEDBACK, self.feedback), (PREDICTIONS, self.predictions)):
            spools = (own, *self._orphans[kind])
            self._metrics.spool_records.labels(log=kind).set(sum(s.pending for s in spools))
            self._metrics.spool_bytes.labels(log=kind).set(sum(s.pending_bytes for s in spools))
