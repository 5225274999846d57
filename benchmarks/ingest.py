"""Ingest benchmark: broker → trainer events/s against a raw kafka-python consume of the same topic.

One run, same broker, same topic, same machine:

1. **raw**: a kafka-python consumer reads the topic from the start and ``json.loads`` every
   value — the ceiling of any Python consumer on this machine;
2. **core**: `LearningSystem.process_one` over the same events in memory, no Kafka — the
   ceiling set by the learning core (champion + challengers, metrics, drift detectors);
3. **trainer**: the real `perennial train` pipeline (poll → validate → learn → checkpoint →
   commit, metrics, DLQ producer), timed from partition assignment to the last event learned.

Prints absolute rates and the ratio trainer/raw (target ≥ 0.5) and trainer/core (the share
of the learning core's speed the streaming layer keeps). Run::

    .venv/bin/python benchmarks/ingest.py --events 50000
    .venv/bin/python benchmarks/ingest.py --events 50000 --candidates logreg,logreg

With no ``--bootstrap-servers`` it starts the embedded broker on a free port.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = "ingest"


def bootstrap(root: Path, stream: str, seed: int, n: int, champion_name: str = "logreg") -> None:
    from training.learners.candidates import build_candidates
    from training.registry import Registry
    from training.streams import iter_stream

    champion, = build_candidates(champion_name)
    for x, y in iter_stream(stream, n, seed):
        champion.learn_one(x, y)
    registry = Registry(root)
    info = registry.publish(MODEL, champion, note="benchmark bootstrap")
    registry.promote(MODEL, info.version, "benchmark bootstrap")


def produce(bootstrap_servers: str, events: list) -> None:
    from kafka import KafkaProducer

    from streaming.topics import feedback_topic, key

    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=20, batch_size=256 * 1024)
    for i, (x, y) in enumerate(events):
        value = json.dumps({"event_id": f"e{i}", "model": MODEL, "features": x, "label": y}).encode()
        producer.send(feedback_topic(MODEL), key=key(MODEL), value=value)
    producer.flush()
    producer.close()


def raw_rate(bootstrap_servers: str, n: int, max_records: int) -> float:
    from kafka import KafkaConsumer, TopicPartition

    from streaming.topics import feedback_topic

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False)
    parts = [TopicPartition(feedback_topic(MODEL), p) for p in consumer.partitions_for_topic(feedback_topic(MODEL))]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    got, started = 0, None
    while got < n:
        batch = consumer.poll(timeout_ms=500, max_records=max_records)
        if batch and started is None:
            started = time.perf_counter()
        for records in batch.values():
            for r in records:
                json.loads(r.value)
            got += len(records)
    elapsed = time.perf_counter() - started
    consumer.close()
    return n / elapsed


def core_rate(registry_dir: Path, candidates: str, events: list) -> float:
    from training.learners.candidates import build_candidates
    from training.registry import Registry
    from training.system import LearningSystem, LoopConfig

    champion = Registry(registry_dir).load(MODEL, 1).learner
    system = LearningSystem(MODEL, champion, build_candidates(candidates), LoopConfig(), None, 1)
    started = time.perf_counter()
    for x, y in events:
        system.process_one(x, y)
    return len(events) / (time.perf_counter() - started)


def trainer_rate(bootstrap_servers: str, work: Path, candidates: str, n: int, max_records: int) -> tuple[float, int]:
    from streaming.bootstrap import build_process
    from streaming.settings import TrainerSettings

    settings = TrainerSettings(model=MODEL, bootstrap_servers=bootstrap_servers, registry_dir=work / "registry",
                               checkpoint_dir=work / "checkpoints", metrics_port=0, candidates=candidates,
                               max_poll_records=max_records)
    stop = threading.Event()
    process = build_process(settings, stop=stop, serve_metrics=False)
    thread = threading.Thread(target=process.run, daemon=True)
    thread.start()
    trainer = process.trainer
    # The clock starts at the first event learned, as raw's starts at its first batch: the
    # group join and the first fetch are not ingest speed.
    while trainer.system is None or trainer.system.events_learned == 0:
        time.sleep(0.001)
    started, first = time.perf_counter(), trainer.system.events_learned
    while trainer.system is None or trainer.system.events_learned < n:
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    checkpoints = int(trainer.metrics.registry.get_sample_value(
        "perennial_checkpoint_seconds_count", {"model": MODEL}) or 0)
    stop.set()
    thread.join(60)
    return (n - first) / elapsed, checkpoints


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=50000)
    p.add_argument("--stream", default="agrawal")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--champion", default="logreg",
                   help="the logistic-regression champion: logreg (plain Python, default) or logreg-river (River's pipeline)")
    p.add_argument("--candidates", default="logreg,hat",
                   help="the two challengers beside the champion (default logreg,hat, the trainer's default)")
    p.add_argument("--max-poll-records", type=int, default=2000)
    p.add_argument("--bootstrap-servers", default=None, help="use this broker instead of starting one")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from streaming.broker import EmbeddedBroker, ensure_topics, free_port
    from streaming.topics import model_topics
    from training.streams import iter_stream

    work = Path(tempfile.mkdtemp(prefix="perennial-ingest-"))
    boot_n = 500
    bootstrap(work / "registry", args.stream, args.seed, boot_n, args.champion)
    events = list(itertools.islice(iter_stream(args.stream, args.events + boot_n, args.seed), boot_n, None))
    broker = None
    servers = args.bootstrap_servers
    if servers is None:
        broker = EmbeddedBroker(port=free_port()).start()
        servers = broker.bootstrap_servers
    try:
        ensure_topics(servers, model_topics(MODEL))
        produce(servers, events)
        raw = raw_rate(servers, len(events), args.max_poll_records)
        trainer, n_ckpt = trainer_rate(servers, work, args.candidates, len(events), args.max_poll_records)
        core = core_rate(work / "registry", args.candidates, events)
    finally:
        if broker is not None:
            broker.stop()
    result = {"events": len(events), "champion": args.champion, "challengers": args.candidates,
              "raw_consume_json_per_s": round(raw), "learning_core_per_s": round(core),
              "trainer_end_to_end_per_s": round(trainer), "ratio_trainer_vs_raw": round(trainer / raw, 3),
              "ratio_trainer_vs_core": round(trainer / core, 3), "checkpoints_during_run": n_ckpt}
    print(json.dumps(result, indent=2))
    print(f"trainer {trainer:,.0f} events/s = {trainer / raw:.2f}x raw kafka-python consume+decode "
          f"({raw:,.0f}/s; target >= 0.5x) and {trainer / core:.2f}x the in-memory learning core ({core:,.0f}/s)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
