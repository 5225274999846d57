"""The service's only Kafka client: prediction log and feedback, produced off the request path.

A prediction must never wait for Kafka: requests put a small dict into a bounded queue and
return; one background thread owns a kafka-python ``KafkaProducer``, serializes, and sends.
When the queue is full (a slow or absent broker) a prediction record is dropped and counted
(``perennial_prediction_log_dropped_total``). Feedback is worth more than a log line, so a
full queue refuses it with 503 instead of dropping it silently (the caller can retry). Topics
are created on first use (``streaming.broker.ensure_topics``), as the trainer would.

Record shapes are the ones ``streaming.schemas`` validates (``PredictionWire``,
``FeedbackWire``); a contract test decodes what this module writes with those decoders.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time

from service.errors import Kind, ServingError
from streaming.metrics import ServiceMetrics
from streaming.topics import feedback_topic, key, predictions_topic

log = logging.getLogger(__name__)

_RECONNECT_S = 2.0


class KafkaEventLog:
    """Bounded queue + producer thread. ``bootstrap_servers=""`` disables Kafka entirely."""

    def __init__(
        self,
        bootstrap_servers: str,
        metrics: ServiceMetrics,
        buffer: int = 10_000,
        create_topics: bool = True,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._metrics = metrics
        self._queue: queue.Queue[tuple[str, str, dict] | None] = queue.Queue(maxsize=buffer)
        self._create_topics = create_topics
        self._known_topics: set[str] = set()
        self._producer = None
        self._next_connect = 0.0
        self._thread: threading.Thread | None = None
        self._closed = False
        self.sent = 0  # records acknowledged by the broker (for tests and /models diagnostics)

    @property
    def enabled(self) -> bool:
        return bool(self.bootstrap_servers)

    # -- request side (any thread, never blocks) --------------------------------------------

    def log_predictions(self, model: str, records: list[dict]) -> None:
        """Queue prediction records for ``<model>.predictions``; drop and count when full."""
        if not self.enabled:
            return
        topic = predictions_topic(model)
        for i, record in enumerate(records):
            try:
                self._queue.put_nowait((topic, model, record))
            except queue.Full:
                self._metrics.prediction_log_dropped.labels(model=model).inc(len(records) - i)
                return

    def send_feedback(self, model: str, records: list[dict]) -> None:
        """Queue feedback for ``<model>.feedback``; raise 503 rather than lose it."""
        if not self.enabled:
            raise ServingError(
                Kind.UNAVAILABLE, "feedback is disabled: no Kafka bootstrap servers configured "
                "(set --bootstrap-servers or PERENNIAL_BOOTSTRAP_SERVERS)"
            )
        if self._queue.maxsize - self._queue.qsize() < len(records):
            raise ServingError(
                Kind.UNAVAILABLE, f"the Kafka send buffer is full ({self._queue.maxsize} records); "
                "the broker is slow or down, retry later"
            )
        topic = feedback_topic(model)
        for record in records:
            self._queue.put_nowait((topic, model, record))

    # -- producer thread --------------------------------------------------------------------

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="perennial-kafka-log", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (best effort within ``timeout_s``), then stop."""
        if self._thread is None:
            return
        self._closed = True
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout_s)
        self._thread.join(timeout=timeout_s)
        self._thread = None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < 1000:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._closed = True
                    break
                batch.append(nxt)
            self._send(batch)
            if self._closed and self._queue.empty():
                break
        if self._producer is not None:
            try:
                self._producer.flush(timeout=5)
                self._producer.close(timeout=5)
            except Exception as e:  # closing a producer to a dead broker may time out
                log.warning("closing the Kafka producer: %s", e)

    def _connect(self):
        if self._producer is not None or time.monotonic() < self._next_connect:
            return self._producer
        from kafka import KafkaProducer

        try:
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap_servers.split(","),
                client_id="perennial-serve",
                acks=1,
                linger_ms=5,
                max_block_ms=2000,
                bootstrap_timeout_ms=2000,
                request_timeout_ms=10000,
                retries=3,
            )
        except Exception as e:
            self._next_connect = time.monotonic() + _RECONNECT_S
            log.warning("Kafka at %s unavailable (%s); prediction records are dropped meanwhile",
                        self.bootstrap_servers, e)
        return self._producer

    def _ensure_topic(self, topic: str) -> None:
        if not self._create_topics or topic in self._known_topics:
            return
        from streaming.broker import ensure_topics

        try:
            ensure_topics(self.bootstrap_servers, [topic], timeout_s=10)
        except Exception as e:  # the producer may still succeed (auto-creation), so go on
            log.warning("could not create topic %s: %s", topic, e)
        self._known_topics.add(topic)

    def _send(self, batch: list[tuple[str, str, dict]]) -> None:
        producer = self._connect()
        for i, (topic, model, record) in enumerate(batch):
            if producer is None:
                self._drop(topic, model)
                continue
            try:
                self._ensure_topic(topic)
                future = producer.send(topic, key=key(model), value=json.dumps(record).encode("utf-8"))
                future.add_callback(self._acked)
                future.add_errback(self._failed, topic, model)
            except Exception as e:  # broker gone: drop this batch now instead of blocking per record
                log.warning("producing to %s failed (%s); dropping %d queued records", topic, e, len(batch) - i)
                for t, m, _ in batch[i:]:
                    self._drop(t, m)
                return

    def _acked(self, _metadata) -> None:
        self.sent += 1

    def _failed(self, error, topic: str, model: str) -> None:
        log.warning("Kafka did not accept a record for %s: %s", topic, error)
        self._drop(topic, model)

    def _drop(self, topic: str, model: str) -> None:
        if topic.endswith(".predictions"):
            self._metrics.prediction_log_dropped.labels(model=model).inc()
        else:
            log.error("feedback record for %s lost: broker unavailable", model)
