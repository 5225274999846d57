"""`perennial demo`: broker, bootstrap, trainer, service and traffic on embedded defaults."""

from __future__ import annotations

import argparse

from service.cli_support import add_stream_flag


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="the closed loop on embedded defaults against a drifting stream "
                     "(classification, or regression with --stream friedman-drift)",
        description="Start the local broker, bootstrap a model on the first part of a drifting stream, "
                    "start the trainer and the service, then drive /predict traffic and send the true "
                    "labels back through /feedback after a delay. Shows a live status, then writes a "
                    "summary, a JSON and a PNG timeline. Stops every process it started.",
    )
    add_stream_flag(p, default="agrawal-drift")
    p.add_argument("--events", type=int, default=30_000, help="total events, bootstrap included (default 30000)")
    p.add_argument("--bootstrap-events", type=int, default=2_000, help="events for the first champion (default 2000)")
    p.add_argument("--rate", type=float, default=150.0, help="events per second through /predict (default 150)")
    p.add_argument("--label-delay", type=float, default=2.0, help="seconds before each label is sent back (default 2)")
    p.add_argument("--candidates", default=None,
                   help="learners (default: the task's, logreg,hat,arf or linear,hat,arf for a regression stream)")
    p.add_argument("--seed", type=int, default=42, help="stream seed (default 42)")
    p.add_argument("--workdir", default=".perennial/demo", help="registry, checkpoints and logs (wiped at start)")
    p.add_argument("--json", dest="json_path", default="demo.json", help="result JSON (default demo.json)")
    p.add_argument("--plot", dest="plot_path", default="demo.png", help="timeline PNG (default demo.png)")
    p.set_defaults(func=run)


def _interrupt(signum, frame) -> None:  # noqa: ANN001
    # SIGTERM / SIGHUP (a closed terminal) end the demo like Ctrl-C: through the `finally`
    # that stops every child; Python's default handlers would skip it and leave orphans.
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    import signal
    from pathlib import Path

    import httpx

    from service.cli_support import resolve_stream
    from service.demo.run import DemoConfig, run_demo, summary
    from training.registry import RegistryError
    from training.report import plot_timeline, write_json

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)

    config = DemoConfig(stream=resolve_stream(args, "demo"), events=args.events, bootstrap_events=args.bootstrap_events,
                        rate=args.rate, label_delay_s=args.label_delay, candidates=args.candidates,
                        seed=args.seed, workdir=Path(args.workdir))
    try:
        result = run_demo(config, say=lambda line: print(line, flush=True))
    except (RuntimeError, ValueError, OSError, httpx.HTTPError, RegistryError) as exc:
        detail = str(exc).splitlines()[1:]  # the FAILURE line said the first; a child's log tail follows
        if detail:
            print("\n".join(["last lines of its log:", *detail]), flush=True)
        return 1
    print(summary(result))
    print(f"wrote {write_json(result, args.json_path)}")
    if result["windows"]:
        title = f"perennial demo: {result['stream']}, served through /predict, learned from /feedback"
        print(f"wrote {plot_timeline(result, args.plot_path, title=title)}")
    return 0
