"""The real embedded broker (Tansu, memory only) for integration tests: one per session.

Started on a free port so parallel runs and a developer's own `perennial broker` on 9092 do
not collide; every test uses its own model name, hence its own topics and consumer group.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_for  # re-exported: `kio.wait_for` and older imports keep working

_models = itertools.count(1)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a Tansu broker started for this test session."""
    from streaming.broker import EmbeddedBroker, free_port

    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(port=free_port(), log_path=log_path) as b:
        yield b.bootstrap_servers


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    """A model name unique to the test (topics and groups are per model)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    return f"t{os.getpid()}-{next(_models)}-{base}"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


# -- helpers shared by the trainer tests ------------------------------------------------------

FULL = os.environ.get("PERENNIAL_FULL_ACCEPTANCE") == "1"


def scaled(small: int, full: int) -> int:
    """Event counts: small in the regular suite, the issue's full size when
    PERENNIAL_FULL_ACCEPTANCE=1 (run once, numbers recorded in benchmarks/README.md)."""
    return full if FULL else small


def produce_values(bootstrap: str, topic: str, model: str, values: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    try:
        for v in values:
            producer.send(topic, key=model.encode(), value=v)
        producer.flush()
    finally:
        producer.close()


def read_topic(bootstrap: str, topic: str, expected: int, idle_s: float = 3.0) -> list:
    """Read a topic from the start (no group) until `expected` records or `idle_s` of silence."""
    import time

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not parts:  # the topic is not created yet (its first record is still on its way)
            return []
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list = []
        last = time.monotonic()
        while len(out) < expected and time.monotonic() - last < idle_s:
            batch = consumer.poll(timeout_ms=200)
            for recs in batch.values():
                out.extend(recs)
                last = time.monotonic()
        return out
    finally:
        consumer.close()


@pytest.fixture
def kio():  # noqa: ANN201
    """Kafka test helpers (produce, read a topic, wait, scale sizes) as one fixture."""
    import types

    return types.SimpleNamespace(produce_values=produce_values, read_topic=read_topic,
                                 wait_for=wait_for, scaled=scaled, full=FULL)


@pytest.fixture
def trainer_settings(broker: str, tmp_path: Path, model_name: str, make_registry):  # noqa: ANN001, ANN201
    """Settings of a trainer for this test's model, registry bootstrapped; override with kwargs."""
    from streaming.broker import ensure_topics
    from streaming.settings import TrainerSettings
    from streaming.topics import model_topics

    registry = tmp_path / "registry"
    names, classes = make_registry(registry, model_name)
    ensure_topics(broker, model_topics(model_name))

    def build(**overrides: object) -> TrainerSettings:
        base = dict(model=model_name, bootstrap_servers=broker, registry_dir=registry,
                    checkpoint_dir=tmp_path / "checkpoints", metrics_port=0, candidates="logreg",
                    checkpoint_every_events=500, checkpoint_interval_s=1.0)
        return TrainerSettings(**{**base, **overrides})

    build.feature_names, build.classes = names, classes
    return build


@pytest.fixture
def running_trainer():  # noqa: ANN201
    """Start `streaming.bootstrap.build_process(settings)` on a thread; stopped at teardown."""
    import threading

    from streaming.bootstrap import build_process

    started = []

    def start(settings):  # noqa: ANN001, ANN202
        stop = threading.Event()
        process = build_process(settings, stop=stop, serve_metrics=False)
        thread = threading.Thread(target=process.run, name=f"trainer-{settings.model}", daemon=True)
        thread.start()
        started.append((stop, thread))
        process.stop_event, process.thread = stop, thread
        return process

    yield start
    for stop, thread in started:
        stop.set()
        thread.join(60)


@pytest.fixture
def trainer_cli(processes):  # noqa: ANN001, ANN201
    """Start `perennial train` subprocesses (the real CLI) in the ``processes`` group; each
    start gets its own log (``proc.log_path``); all are stopped at teardown."""
    started = itertools.count()

    def start(settings, name: str = "trainer"):  # noqa: ANN001, ANN202
        env = {"PERENNIAL_CHECKPOINT_EVERY_EVENTS": str(settings.checkpoint_every_events),
               "PERENNIAL_CHECKPOINT_INTERVAL_S": str(settings.checkpoint_interval_s),
               "PERENNIAL_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
               "PERENNIAL_HEARTBEAT_INTERVAL_MS": str(settings.heartbeat_interval_ms),
               "PERENNIAL_MAX_POLL_RECORDS": str(settings.max_poll_records)}
        # its own session: a test can signal the trainer's whole process group, as a
        # terminal, `timeout` or systemd would
        log_name = f"{name}-{next(started)}"
        proc = processes.perennial(
            log_name, "train", "--model", settings.model, "--bootstrap-servers", settings.bootstrap_servers,
            "--registry", str(settings.registry_dir), "--checkpoint-dir", str(settings.checkpoint_dir),
            "--metrics-port", "0", "--candidates", settings.candidates, env=env)
        proc.log_path = str(processes.log_path(log_name))
        return proc

    return start


@pytest.fixture
def checkpoints():  # noqa: ANN201
    """Read a model's newest checkpoint and the system in it."""
    import types

    from streaming.checkpoint import CheckpointError, CheckpointStore

    def latest(settings):  # noqa: ANN001, ANN202
        store = CheckpointStore(settings.checkpoint_dir, settings.model, settings.hmac_key())
        try:
            return store.load_latest()
        except (CheckpointError, OSError):
            return None

    def learned(settings) -> int:  # noqa: ANN001
        ckpt = latest(settings)
        return -1 if ckpt is None else ckpt.info["events_learned"]

    def system(settings):  # noqa: ANN001, ANN202
        from training.system import LearningSystem

        return LearningSystem.from_bytes(latest(settings).system)

    return types.SimpleNamespace(latest=latest, learned=learned, system=system)


@pytest.fixture
def reference_system():  # noqa: ANN201
    """The uninterrupted run: bootstrap champion + candidates learning the events in order."""

    def run(settings, events):  # noqa: ANN001, ANN202
        from training.learners.candidates import build_candidates
        from training.registry import Registry
        from training.system import LearningSystem, LoopConfig

        champion = Registry(settings.registry_dir).load(settings.model, 1).learner
        system = LearningSystem(settings.model, champion, build_candidates(settings.candidates), LoopConfig(), None, 1)
        for x, y in events:
            system.process_one(x, y)
        return system

    return run
