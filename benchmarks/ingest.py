"""Ingest benchmark: broker → trainer events/s against a raw kafka-python consume of the same topic.

One broker; for each of ``--repeats`` topics holding the same events, back to back:

1. **raw**: a kafka-python consumer reads the topic from the start and ``json.loads`` every
   value — the ceiling of any Python consumer on this machine; timed from its first batch;
2. **trainer**: the real `perennial train` pipeline (fetcher process → validate → learn →
   checkpoint → commit, metrics, DLQ producer), timed from its first learned event;
   with ``--one-process`` also the trainer with ``fetch_process=False`` (on its own topic);
3. **core**: `LearningSystem.process_one` over the same events in memory, no Kafka — the
   ceiling set by the learning core (champion + challengers, metrics, drift detectors).

The machine is shared and noisy, so it prints every pair and the median ratio trainer/raw
(target ≥ 0.5). Run::

    .venv/bin/python benchmarks/ingest.py --events 50000 --candidates logreg,logreg --one-process
    .venv/bin/python benchmarks/ingest.py --events 30000 --repeats 2   # the trainer's default challengers

With no ``--bootstrap-servers`` it starts the embedded broker on a free port.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = "ingest"


def bootstrap(root: Path, stream: str, seed: int, n: int, champion_name: str = "logreg", model: str = MODEL) -> None:
    from training.learners.candidates import build_candidates
    from training.registry import Registry
    from training.streams import iter_stream

    champion, = build_candidates(champion_name)
    for x, y in iter_stream(stream, n, seed):
        champion.learn_one(x, y)
    registry = Registry(root)
    info = registry.publish(model, champion, note="benchmark bootstrap")
    registry.promote(model, info.version, "benchmark bootstrap")


def produce(bootstrap_servers: str, events: list, model: str = MODEL) -> None:
    from kafka import KafkaProducer

    from streaming.topics import feedback_topic, key

    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=20, batch_size=256 * 1024)
    for i, (x, y) in enumerate(events):
        value = json.dumps({"event_id": f"e{i}", "model": model, "features": x, "label": y}).encode()
        producer.send(feedback_topic(model), key=key(model), value=value)
    producer.flush()
    producer.close()


def raw_rate(bootstrap_servers: str, n: int, max_records: int, model: str = MODEL) -> float:
    from kafka import KafkaConsumer, TopicPartition

    from streaming.topics import feedback_topic

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False)
    parts = [TopicPartition(feedback_topic(model), p) for p in consumer.partitions_for_topic(feedback_topic(model))]
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


def core_rate(registry_dir: Path, candidates: str, events: list, model: str = MODEL) -> float:
    from training.learners.candidates import build_candidates
    from training.registry import Registry
    from training.system import LearningSystem, LoopConfig

    champion = Registry(registry_dir).load(model, 1).learner
    system = LearningSystem(model, champion, build_candidates(candidates), LoopConfig(), None, 1)
    started = time.perf_counter()
    for x, y in events:
        system.process_one(x, y)
    return len(events) / (time.perf_counter() - started)


def trainer_rate(bootstrap_servers: str, work: Path, candidates: str, n: int, max_records: int,
                 model: str = MODEL, fetch_process: bool = True) -> tuple[float, int]:
    from streaming.bootstrap import build_process
    from streaming.settings import TrainerSettings

    settings = TrainerSettings(model=model, bootstrap_servers=bootstrap_servers, registry_dir=work / "registry",
                               checkpoint_dir=work / f"checkpoints-{model}", metrics_port=0, candidates=candidates,
                               max_poll_records=max_records, fetch_process=fetch_process)
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
        "perennial_checkpoint_seconds_count", {"model": model}) or 0)
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
    p.add_argument("--repeats", type=int, default=3,
                   help="raw/trainer pairs, each on its own topic (the machine is shared: the median ratio is reported)")
    p.add_argument("--one-process", action="store_true",
                   help="also time the trainer with fetching in its own process turned off (fetch_process=False)")
    p.add_argument("--bootstrap-servers", default=None, help="use this broker instead of starting one")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from streaming.broker import EmbeddedBroker, ensure_topics, free_port
    from streaming.topics import model_topics
    from training.streams import iter_stream

    work = Path(tempfile.mkdtemp(prefix="perennial-ingest-"))
    boot_n = 500
    events = list(itertools.islice(iter_stream(args.stream, args.events + boot_n, args.seed), boot_n, None))
    broker = None
    servers = args.bootstrap_servers
    if servers is None:
        broker = EmbeddedBroker(port=free_port()).start()
        servers = broker.bootstrap_servers
    runs = []
    try:
        for i in range(args.repeats):
            model = f"{MODEL}{i}"
            bootstrap(work / "registry", args.stream, args.seed, boot_n, args.champion, model)
            ensure_topics(servers, model_topics(model))
            produce(servers, events, model)
            run = {"raw_consume_json_per_s": raw_rate(servers, len(events), args.max_poll_records, model)}
            run["trainer_end_to_end_per_s"], run["checkpoints_during_run"] = trainer_rate(
                servers, work, args.candidates, len(events), args.max_poll_records, model)
            if args.one_process:  # its own topic and group: a group resumes where the last run committed
                single = f"{model}-one"
                bootstrap(work / "registry", args.stream, args.seed, boot_n, args.champion, single)
                ensure_topics(servers, model_topics(single))
                produce(servers, events, single)
                run["trainer_one_process_per_s"], _ = trainer_rate(
                    servers, work, args.candidates, len(events), args.max_poll_records, single, fetch_process=False)
            run["learning_core_per_s"] = core_rate(work / "registry", args.candidates, events, model)
            run["ratio_trainer_vs_raw"] = run["trainer_end_to_end_per_s"] / run["raw_consume_json_per_s"]
            runs.append({k: round(v, 3) if isinstance(v, float) and v < 100 else round(v) for k, v in run.items()})
            print(f"run {i + 1}/{args.repeats}: " + ", ".join(f"{k} {v:,}" for k, v in runs[-1].items()), flush=True)
    finally:
        if broker is not None:
            broker.stop()
    median = statistics.median(r["ratio_trainer_vs_raw"] for r in runs)
    result = {"events": len(events), "champion": args.champion, "challengers": args.candidates,
              "fetch_process": True, "runs": runs, "median_ratio_trainer_vs_raw": round(median, 3)}
    print(json.dumps(result, indent=2))
    best = max(runs, key=lambda r: r["ratio_trainer_vs_raw"])
    print(f"median trainer/raw {median:.2f}x over {len(runs)} runs (target >= 0.5x); e.g. trainer "
          f"{best['trainer_end_to_end_per_s']:,} events/s vs raw kafka-python consume+decode "
          f"{best['raw_consume_json_per_s']:,}/s, learning core alone {best['learning_core_per_s']:,}/s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
