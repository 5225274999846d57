"""Composition root of `perennial train`: real adapters built here, passed down, nothing global.

Following cosmicpython's ``bootstrap.py``: one function wires the registry, the publisher
journal, the checkpoint store, the Kafka consumer and producer, the dead-letter sink and the
metrics; tests build a `Trainer` with in-memory pieces instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from streaming.checkpoint import CheckpointStore
from streaming.join import JoinStore
from streaming.metrics import TrainerMetrics
from streaming.settings import TrainerSettings
from streaming.trainer import Trainer
from training.learners.base import Learner
from training.lineage import Origin
from training.registry import Registry
from training.spec import Task

if TYPE_CHECKING:  # heavy (Kafka clients) or only needed for annotations
    from wsgiref.simple_server import WSGIServer

    from kafka import KafkaConsumer, KafkaProducer

    from streaming.consumer import TrainerLoop
    from streaming.dlq import DeadLetterSink
    from streaming.promotion_guard import PromotionGuard
    from streaming.sources import FetcherSource
    from training.system import LearningSystem

log = logging.getLogger(__name__)


#: challengers of a trainer that finds none registered beside its champion, per task
TRAINER_CHALLENGERS = {Task.CLASSIFICATION: "logreg,hat", Task.REGRESSION: "linear,hat"}


def system_factories(settings: TrainerSettings, trainer_ref: Callable[[], Trainer | None]) -> tuple[
        Callable[[], LearningSystem], Callable[[bytes], LearningSystem]]:
    """`fresh_system` (registry champion + candidate challengers) and `restore_system`."""
    from streaming.publishing import JournaledPublisher
    from training.learners.candidates_file import build_named, entries_from
    from training.publishers import RegistryPublisher
    from training.registry import model_spec
    from training.system import LearningSystem

    registry = Registry(settings.registry_dir)
    model = settings.model

    def position() -> int:
        trainer = trainer_ref()
        return trainer.system.events_learned if trainer is not None and trainer.system is not None else 0

    publisher = JournaledPublisher(RegistryPublisher(registry, model),
                                   settings.checkpoint_dir / model / "publish-journal.jsonl", position)

    def fresh() -> LearningSystem:
        loaded = registry.load(model, "champion")
        challengers = bootstrap_challengers(registry, model, loaded.info.version)
        if not challengers:  # none registered with this champion: start untrained ones, of its spec
            spec = model_spec(loaded.info, loaded.learner) if loaded.info.spec is not None else loaded.learner.spec
            task = spec.task if spec is not None else Task.CLASSIFICATION
            entries = entries_from(settings.candidates_file)
            names = settings.candidates or ("" if entries else TRAINER_CHALLENGERS[task])
            challengers = build_named(names, spec, entries)
        return LearningSystem(model, loaded.learner, challengers, settings.loop_config(), publisher,
                              loaded.info.version)

    def restore(blob: bytes) -> LearningSystem:
        system = LearningSystem.from_bytes(blob, publisher=publisher)
        system.reconfigure(settings.loop_config())  # settings of this start, not of the checkpoint's
        return system

    return fresh, restore


def bootstrap_challengers(registry: Registry, model: str, champion_version: int) -> list[Learner]:
    """The candidates `perennial bootstrap` trained beside this champion (so they start
    trained, not from scratch); empty when the champion came from anywhere else. Found by
    their lineage (``origin`` and ``parent``), never by the wording of their note."""
    return [
        registry.load(model, v.version).learner
        for v in registry.versions(model)
        if v.parent == champion_version and v.origin is Origin.BOOTSTRAP_CANDIDATE
    ]


def registry_lineage(settings: TrainerSettings) -> Callable[[], str]:
    """The registry's lineage id of the model: a checkpoint of any other is not resumed."""
    from training.registry import Registry

    return lambda: Registry(settings.registry_dir).lineage(settings.model)


def build_guard(settings: TrainerSettings) -> PromotionGuard | None:
    """The serving-side promotion guard, when a Prometheus URL is configured."""
    if not settings.prometheus_url:
        return None
    from streaming.promotion_guard import PrometheusQuery, PromotionGuard, load_checks

    return PromotionGuard(load_checks(settings.guard_checks), PrometheusQuery(settings.prometheus_url),
                          period_s=settings.guard_period_s, interval_s=settings.guard_interval_s,
                          warmup_s=settings.guard_warmup_s)


def build_trainer(settings: TrainerSettings, metrics: TrainerMetrics, dead_letters: DeadLetterSink,
                  fresh_system: Callable[[], LearningSystem] | None = None,
                  restore_system: Callable[[bytes], LearningSystem] | None = None) -> Trainer:
    """A `Trainer` for `settings.model`; system factories default to the registry ones."""
    holder: list[Trainer] = []
    if fresh_system is None or restore_system is None:
        fresh_system, restore_system = system_factories(settings, lambda: holder[0] if holder else None)
    trainer = Trainer(
        settings.model,
        fresh_system=fresh_system,
        restore_system=restore_system,
        store=CheckpointStore(settings.checkpoint_dir, settings.model, settings.hmac_key(), settings.checkpoints_kept),
        dead_letters=dead_letters,
        metrics=metrics,
        join=JoinStore(settings.join_ttl_s, settings.join_grace_s, settings.join_max_predictions,
                       settings.join_max_pending),
        recent_ids=settings.recent_event_ids,
        max_clock_skew_s=settings.max_clock_skew_s,
        checkpoint_every=settings.checkpoint_every_events,
        checkpoint_interval_s=settings.checkpoint_interval_s,
        stats_interval_s=settings.stats_interval_s,
        schema_limits={"max_event_bytes": settings.max_event_bytes, "max_features": settings.max_features,
                       "allow_missing_features": settings.allow_missing_features},
        allow_new_classes=settings.allow_new_classes,
        guard=build_guard(settings),
        lineage=registry_lineage(settings),
    )
    holder.append(trainer)
    return trainer


def build_fetcher_source(settings: TrainerSettings, consumer: KafkaConsumer, trainer: Trainer) -> FetcherSource:
    """Fetching and validation in a child process (`streaming.fetcher`), fed from the trainer's offsets."""
    from streaming.fetcher import Fetcher
    from streaming.sources import FetcherSource, fetcher_kafka_config
    from streaming.topics import predictions_topic

    config = fetcher_kafka_config(settings.bootstrap_servers, f"perennial-trainer-{settings.model}-fetcher",
                                  settings.request_timeout_ms, settings.max_poll_records)
    fetcher = Fetcher(config, predictions_topic(settings.model), settings.max_poll_records)
    return FetcherSource(consumer, fetcher, lambda: trainer.offsets if trainer.loaded else {},
                         on_restart=trainer.count_fetcher_restart)


@dataclass
class TrainerProcess:
    """Everything `perennial train` runs, so the CLI and tests can start and stop it."""

    settings: TrainerSettings
    trainer: Trainer
    loop: TrainerLoop
    producer: KafkaProducer
    metrics_registry: CollectorRegistry
    metrics_server: tuple[WSGIServer, threading.Thread] | None = None

    def run(self) -> None:
        """Run the loop; whatever made it fail (a full disk at the last checkpoint, say) is
        the error raised, not a later one from closing the producer or the metrics server."""
        failed = False
        try:
            self.loop.run()
        except BaseException:
            failed = True
            raise
        finally:
            try:
                self.producer.flush()
                self.producer.close()
                if self.metrics_server is not None:
                    self.metrics_server[0].shutdown()
            except Exception:
                if not failed:
                    raise
                log.exception("%s: closing the producer after a failure also failed", self.settings.model)


def build_process(settings: TrainerSettings, stop: threading.Event | None = None,
                  serve_metrics: bool = True) -> TrainerProcess:
    """Wire the real adapters: Kafka consumer and producer, registry, checkpoints, metrics."""
    settings.check_secrets()  # before anything is read or written with a key everybody knows
    from kafka import KafkaProducer

    from streaming.broker import ensure_topics
    from streaming.consumer import TrainerLoop, build_consumer
    from streaming.dlq import KafkaDeadLetters
    from streaming.topics import dlq_topic, model_topics

    if not settings.model:
        raise ValueError("no model given: pass --model NAME (or set PERENNIAL_MODEL)")
    if settings.create_topics:
        ensure_topics(settings.bootstrap_servers, model_topics(settings.model), settings.partitions,
                      settings.replication_factor)
    registry = CollectorRegistry()
    metrics = TrainerMetrics(registry)
    server = None
    if serve_metrics and settings.metrics_port:
        from prometheus_client import start_http_server

        server = start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers.split(","), acks="all",
                             linger_ms=5, client_id=f"perennial-trainer-{settings.model}-dlq")
    dead_letters = KafkaDeadLetters(producer, dlq_topic(settings.model), settings.bootstrap_servers,
                                    recall_max=settings.dlq_recall_max,
                                    timeout_s=max(30.0, settings.request_timeout_ms / 1000.0))
    trainer = build_trainer(settings, metrics, dead_letters)
    consumer = build_consumer(settings, settings.model)
    source = build_fetcher_source(settings, consumer, trainer) if settings.fetch_process else None
    loop = TrainerLoop(trainer, consumer, poll_timeout_ms=settings.poll_timeout_ms,
                       max_records=settings.max_poll_records, stop=stop, source=source)
    return TrainerProcess(settings, trainer, loop, producer, registry, server)
