"""``perennial produce``: publish a built-in or CSV stream as prediction records + delayed labels."""

from __future__ import annotations

import argparse

from service.cli_support import add_stream_flag


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "produce",
        help="replay a stream to Kafka as prediction records followed by label-only feedback",
        description="Publish --stream NAME (a built-in name, a CSV or a JSON Lines path) to <model>.predictions, and each "
        "label to <model>.feedback after --label-delay seconds: the traffic of a real application.",
    )
    add_stream_flag(p, positional_deprecated=True)
    p.add_argument("--model", required=True, help="model name (topics <model>.predictions / .feedback)")
    p.add_argument("--rate", type=float, default=0.0, help="events per second (default 0: as fast as possible)")
    p.add_argument("--label-delay", type=float, default=1.0, help="seconds between a prediction and its label (default 1)")
    p.add_argument("--events", type=int, default=None, help="number of events (default: the stream's own)")
    p.add_argument("--seed", type=int, default=42, help="stream seed (default 42)")
    p.add_argument("--skip", type=int, default=0, help="skip the first N events (e.g. those used to bootstrap)")
    p.add_argument("--target", default="label", help="label column of a CSV stream (default 'label')")
    p.add_argument("--bootstrap-servers", default=None, help="Kafka bootstrap servers (default 127.0.0.1:9092)")
    p.add_argument("--registry", default=None,
                   help="predict with this registry's champion so records carry real outputs (optional)")
    p.add_argument("--partitions", type=int, default=None, help="partitions of topics created if missing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import itertools
    import logging

    from service.cli_support import open_registry, require_champion, resolve_stream
    from streaming.broker import check_reachable, ensure_topics
    from streaming.producer import EventProducer
    from streaming.replay import replay
    from streaming.settings import KafkaSettings
    from streaming.topics import model_topics
    from training.streams import iter_stream

    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLogger().level))
    settings = KafkaSettings(**{k: v for k, v in {"bootstrap_servers": args.bootstrap_servers,
                                                   "partitions": args.partitions}.items() if v is not None})
    stream = resolve_stream(args, "produce")
    n = None if args.events is None else args.events + args.skip
    events = itertools.islice(iter_stream(stream, n, args.seed, args.target), args.skip, None)
    predict, version = None, None
    if args.registry:
        registry = open_registry(args.registry)
        require_champion(registry, args.model)
        loaded = registry.load(args.model, "champion")
        version = loaded.info.version

        def predict(x):  # noqa: ANN001, ANN202 - small local adapter
            proba = loaded.learner.predict_proba_one(x)
            return (max(proba, key=proba.__getitem__) if proba else None), proba

    check_reachable(settings.bootstrap_servers, settings.connect_timeout_s)
    if settings.create_topics:
        ensure_topics(settings.bootstrap_servers, model_topics(args.model), settings.partitions,
                      settings.replication_factor)
    producer = EventProducer(settings.bootstrap_servers, max_block_ms=30000)
    try:
        stats = replay(producer, args.model, events, rate=args.rate, label_delay_s=args.label_delay,
                       version=version, predict=predict)
    finally:
        producer.close()
    print(f"produced {stats.predictions} prediction records and {stats.feedback} labels "
          f"to {args.model}.predictions / {args.model}.feedback in {stats.seconds:.1f}s", flush=True)
    return 0
