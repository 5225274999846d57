"""The prediction log's second thread: the spools drained to Kafka, oldest record first.

`service.prediction_log.KafkaEventLog` keeps feedback (fsynced before the 2xx) and the
prediction records Kafka did not take in local spools (`service.spool`); this thread sends
what they hold, in order, with the broker's acknowledgement, and forgets only the
acknowledged prefix. A record Kafka will never take is set aside beside its spool
(``undeliverable.log``), so it cannot block the ones behind it. A mixin of `KafkaEventLog`
(its state: spools, producer, metrics), apart so that each file holds one thread's loop.
"""

from __future__ import annotations

import logging
import time

from service.prediction_records import prediction_count
from service.spool import Spool
from streaming.topics import feedback_topic, key, predictions_topic

log = logging.getLogger("service.prediction_log")  # one logger for the log's threads

RECONNECT_S = 2.0  # seconds between attempts while Kafka does not answer
_DRAIN_BATCH = 500  # records sent before waiting for their acknowledgements
FEEDBACK, PREDICTIONS = "feedback", "predictions"


def spool_entry(model: str, value: bytes) -> bytes:
    """A spool entry: the model's name, a NUL, the record's bytes."""
    return model.encode("utf-8") + b"\x00" + value


def entry_parts(entry: bytes) -> tuple[str, bytes]:
    model, _, value = entry.partition(b"\x00")
    return model.decode("utf-8"), value


def permanent(error: BaseException) -> bool:
    """Errors that no retry fixes: the record itself is unacceptable to Kafka."""
    from kafka.errors import InvalidTopicError, MessageSizeTooLargeError

    return isinstance(error, MessageSizeTooLargeError | InvalidTopicError | TypeError)


class SpoolDrain:
    """The drain thread's loop (`_drain_loop`), for `service.prediction_log.KafkaEventLog`."""

    def _drain_loop(self) -> None:
        while not self._closing.is_set():
            spools = [(FEEDBACK, s) for s in (*self._orphans[FEEDBACK], self.feedback)]
            spools += [(PREDICTIONS, s) for s in (*self._orphans[PREDICTIONS], self.predictions)]
            pending = [(kind, s) for kind, s in spools if s.pending]
            producer = self._connect()
            if not pending:
                self._release_drained_orphans()
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            if producer is None:
                self._closing.wait(RECONNECT_S)
                continue
            kind, spool = pending[0]
            if not self._drain_batch(producer, kind, spool):
                self._closing.wait(RECONNECT_S)

    def _drain_batch(self, producer, kind: str, spool: Spool) -> bool:
        """Send the oldest records of ``spool``; forget the acknowledged prefix. False on failure."""
        batch = spool.peek(_DRAIN_BATCH)
        sent: list[tuple[int, str, object]] = []
        error: Exception | None = None
        for offset, payload in batch:
            model, value = entry_parts(payload)
            topic = feedback_topic(model) if kind == FEEDBACK else predictions_topic(model)
            try:
                self._ensure_topic(topic)
                sent.append((offset, model, producer.send(topic, key=key(model), value=value)))
            except Exception as e:
                if permanent(e) and not sent:
                    self._set_aside(kind, spool, offset, model, payload, e)
                    return True
                error = e
                break
        acked: int | None = None  # offset after the last acknowledged record
        by_model: dict[str, int] = {}
        for offset, model, future in sent:
            try:
                self._wait(future)
            except Exception as e:
                if permanent(e) and acked is None:
                    self._set_aside(kind, spool, offset, model, batch[0][1], e)
                    return True
                error = e
                break
            acked = offset
            by_model[model] = by_model.get(model, 0) + 1
        if acked is not None:
            spool.commit(acked)  # one durable head update per batch
            self.sent += sum(by_model.values())
            if kind == FEEDBACK:
                for model, n in by_model.items():
                    self._metrics.feedback_delivered.labels(model=model).inc(n)
        self._set_gauges()
        if error is not None:
            self._broker_failed(error)
            return False
        self._healthy = True
        if self._outage_logged:
            log.info("Kafka at %s answers again; draining the spool", self.bootstrap_servers)
            self._outage_logged = False
        return True

    def _wait(self, future) -> None:
        deadline = time.monotonic() + self._delivery_timeout_s + 10
        while not future.is_done:
            if self._closing.is_set():
                raise TimeoutError("shutting down before Kafka acknowledged the record")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no acknowledgement within {self._delivery_timeout_s:g}s")
            time.sleep(0.01)
        if future.failed():
            raise future.exception

    def _set_aside(self, kind: str, spool: Spool, offset: int, model: str, payload: bytes, error: Exception) -> None:
        """A record Kafka will never take (e.g. over the broker's size limit) must not block the ones
        behind it: it is appended to ``undeliverable.log`` beside the spool, logged and counted."""
        path = spool.directory / "undeliverable.log"
        with open(path, "ab") as f:
            f.write(payload.replace(b"\x00", b"\t", 1) + b"\n")
        spool.commit(offset)
        log.error("Kafka refused a %s record for %s permanently (%s); kept in %s", kind, model, error, path)
        if kind == FEEDBACK:
            self._metrics.feedback_undeliverable.labels(model=model).inc()
        else:
            self._metrics.prediction_log_dropped.labels(model=model).inc(prediction_count(entry_parts(payload)[1]))
        self._set_gauges()

    def _release_drained_orphans(self) -> None:
        for kind in (FEEDBACK, PREDICTIONS):
            for spool in [s for s in self._orphans[kind] if not s.pending]:
                spool.close()
                self._orphans[kind].remove(spool)
