"""``perennial train``: the streaming trainer of one model (Kafka feedback → learners)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="run the streaming trainer of one model against Kafka",
        description="Consume <model>.feedback and <model>.predictions in group perennial-trainer-<model>, "
        "learn test-then-train, checkpoint then commit, dead-letter invalid events to "
        "<model>.feedback.dlq. Flags override PERENNIAL_* environment variables. A second "
        "trainer with the same --model and checkpoint dir is a hot standby.",
    )
    p.add_argument("--model", help="model name (PERENNIAL_MODEL)")
    p.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (default 127.0.0.1:9092)")
    p.add_argument("--registry", dest="registry_dir", help="model registry dir (default .perennial/registry)")
    p.add_argument("--checkpoint-dir", help="checkpoint dir shared with standbys (default .perennial/checkpoints)")
    p.add_argument("--metrics-port", type=int, help="Prometheus port (default 9464; 0 disables)")
    p.add_argument("--candidates", help="challengers beside the champion, e.g. logreg,hat or acme.models:tree")
    p.add_argument("--candidates-file", help="YAML/JSON file of named candidates: name: {factory, params}")
    p.add_argument("--checkpoint-every", dest="checkpoint_every_events", type=int,
                   help="checkpoint after this many records (default 10000)")
    p.add_argument("--checkpoint-interval", dest="checkpoint_interval_s", type=float,
                   help="... or after this many seconds (default 10)")
    p.add_argument("--partitions", type=int, help="partitions of topics created at start (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import sys
    import threading

    from service.cli_support import UsageError, open_registry, require_champion
    from streaming.bootstrap import build_process
    from streaming.broker import check_reachable
    from streaming.settings import TrainerSettings

    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLogger().level))
    # kafka-python warns whenever a task holds its event loop over 100 ms; the trainer's
    # rebalance callbacks do that on purpose (checkpoint before partitions go, restore when
    # they come), so the warning would only alarm operators
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    # a ValidationError (bad flag or PERENNIAL_* value) becomes one line in `perennial`
    settings = TrainerSettings.from_flags(
        model=args.model, bootstrap_servers=args.bootstrap_servers, registry_dir=args.registry_dir,
        checkpoint_dir=args.checkpoint_dir, metrics_port=args.metrics_port, candidates=args.candidates,
        candidates_file=args.candidates_file,
        checkpoint_every_events=args.checkpoint_every_events,
        checkpoint_interval_s=args.checkpoint_interval_s, partitions=args.partitions,
    )
    if not settings.model:
        raise UsageError("--model NAME is required (or PERENNIAL_MODEL)")
    # what a user can get wrong, checked before anything connects: the first assignment would
    # otherwise fail deep in the consumer loop, a traceback with the cause buried in it
    require_champion(open_registry(settings.registry_dir), settings.model)
    check_reachable(settings.bootstrap_servers, settings.connect_timeout_s)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("perennial.train").info("signal %d: finishing the batch, then checkpoint and exit", signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    process = build_process(settings, stop=stop)
    print(f"training model {settings.model!r} from {settings.bootstrap_servers} "
          f"(group perennial-trainer-{settings.model}, metrics port {settings.metrics_port or 'off'})", flush=True)
    from streaming.checkpoint import CheckpointError

    try:
        process.run()
    except CheckpointError as e:  # a refusal with its reason, not a traceback
        print(f"perennial train: refusing to continue: {e}", file=sys.stderr)
        return 1
    return 0
