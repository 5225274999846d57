"""``perennial broker``: run the embedded Kafka-protocol broker (memory only) until stopped."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "broker",
        help="start the embedded local Kafka-protocol broker (memory only) and print its address",
        description="Start the embedded Tansu broker and block until SIGTERM or Ctrl-C. "
        "It keeps messages in memory only: stopping it loses every topic. In production, "
        "point --bootstrap-servers at a Kafka cluster instead.",
    )
    p.add_argument("--port", type=int, default=9092, help="listening port (default 9092)")
    p.add_argument("--host", default="127.0.0.1", help="listening address (default 127.0.0.1)")
    p.add_argument("--model", action="append", default=[],
                   help="also create this model's topics (repeatable)")
    p.add_argument("--partitions", type=int, default=1, help="partitions of created topics (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import sys
    import threading

    from streaming.broker import MEMORY_ONLY_WARNING, BrokerError, EmbeddedBroker, ensure_topics
    from streaming.topics import model_topics

    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLogger().level))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    broker = EmbeddedBroker(port=args.port, host=args.host)
    try:
        broker.start()
    except BrokerError as e:
        print(f"perennial broker: {e}", file=sys.stderr)
        return 1
    try:
        for model in args.model:
            ensure_topics(broker.bootstrap_servers, model_topics(model), args.partitions)
        print(f"bootstrap servers: {broker.bootstrap_servers}", flush=True)
        print(f"WARNING: {MEMORY_ONLY_WARNING}", flush=True)
        print("press Ctrl-C or send SIGTERM to stop", flush=True)
        while not stop.wait(0.5):
            if not broker.running():
                print("perennial broker: the broker process exited", file=sys.stderr)
                return 1
        return 0
    finally:
        broker.stop()
        print("broker stopped", flush=True)
