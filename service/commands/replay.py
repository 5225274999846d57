"""`perennial replay --stream STREAM`: the whole learning loop offline, with baselines, JSON and a plot."""

from __future__ import annotations

import argparse

from service.cli_support import add_stream_flag

SETTING_FLAGS = ["candidates", "candidates_file", "window", "check_every", "refresh_every", "drift_delta",
                 "promotion_margin", "promotion_alpha", "promotion_min_events"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replay", help="run the learning loop offline over a stream, with baselines, JSON and a plot",
        description="Bootstrap on the first part of STREAM, then run champion + challengers, drift "
                    "detection, promotion, rollback guard and snapshot refresh over the rest, beside "
                    "the 'static' and 'online_only' baselines. No Kafka needed.",
    )
    add_stream_flag(p, positional_deprecated=True)
    p.add_argument("--events", type=int, help="total events, bootstrap included (default: the stream's own)")
    p.add_argument("--seed", type=int, default=42, help="stream seed (default 42)")
    p.add_argument("--window", type=int, help="events per reported window (default 1000; reduced, with a "
                   "notice, so a short stream still gives about 20 points)")
    p.add_argument("--bootstrap-events", type=int, help="events for offline bootstrap (default 5%%, at least 500)")
    p.add_argument("--target", default="label", help="label column of a CSV stream (default 'label')")
    p.add_argument("--json", dest="json_path", help="write the result JSON here")
    p.add_argument("--plot", dest="plot_path", help="write the timeline PNG here")
    p.add_argument("--candidates", help="candidate learners, e.g. logreg,hat,arf or acme.models:tree "
                   "(default from settings)")
    p.add_argument("--candidates-file", help="YAML/JSON file of named candidates: name: {factory, params}")
    p.add_argument("--check-every", type=int, help="events between promotion tests")
    p.add_argument("--refresh-every", type=int, help="events between champion refreshes")
    p.add_argument("--drift-delta", type=float, help="ADWIN delta")
    p.add_argument("--promotion-margin", type=float, help="accuracy gain required to promote (0..1)")
    p.add_argument("--promotion-alpha", type=float, help="McNemar significance level")
    p.add_argument("--promotion-min-events", type=int, help="events a challenger must see first")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from service.cli_support import notice, resolve_stream
    from training.streams import stream_info

    # bad flags and env values raise ValueError (pydantic's included): `perennial` makes each one line.
    # The stream is checked before the learning stack is imported (seconds), so a typo answers at once.
    stream = resolve_stream(args, "replay")
    info = stream_info(stream)

    from tqdm import tqdm

    from service.offline_settings import OfflineSettings, apply_flags
    from training.replay import ReplayConfig, run_replay
    from training.report import plot_timeline, write_json
    settings = apply_flags(OfflineSettings(), args, SETTING_FLAGS)
    config = ReplayConfig(
        stream=stream, events=args.events, seed=args.seed, window=settings.window,
        bootstrap_events=args.bootstrap_events, target=args.target,
        bootstrap=settings.bootstrap_config(image=info.kind == "image", task=info.task),
        loop=settings.loop_config(),
    )
    from training.learners.candidates import DEFAULT_CANDIDATES

    names = settings.candidates or ",".join(DEFAULT_CANDIDATES[info.task])
    print(f"replay {stream}: {info.description}; bootstrapping candidates {names}...")
    bar = tqdm(total=None, unit="ev", disable=args.no_progress, smoothing=0.1)

    def progress(done: int, total: int, status: dict) -> None:
        bar.total = total
        bar.update(done - bar.n)
        score = {"mae": f"{status['mae']:.3f}"} if "mae" in status else {"acc": f"{status['accuracy']:.3f}"}
        bar.set_postfix(**score, champion=status["champion"], promotions=status["promotions"])

    try:
        result = run_replay(config, progress=progress, notice=lambda m: (bar.clear(), notice(m)))
    finally:
        bar.close()
    print(summary(result))
    if args.json_path:
        print(f"wrote {write_json(result, args.json_path)}")
    if args.plot_path:
        print(f"wrote {plot_timeline(result, args.plot_path)}")
    return 0


def summary(result: dict) -> str:
    """The replay's result as the lines a terminal shows, in the task's metrics."""
    if result.get("task") == "regression":
        def score(m: dict) -> str:
            return f"MAE {m['mae']:.4f}  RMSE {m['rmse']:.4f}  R² {m['r2']:.4f}"

        def learner_score(m: dict) -> str:
            return f"MAE {m['mae']:.4f}"
    else:
        def score(m: dict) -> str:
            return f"accuracy {m['accuracy']:.4f}  macro-F1 {m['f1_macro']:.4f}"

        def learner_score(m: dict) -> str:
            return f"accuracy {m['accuracy']:.4f}"
    lines = [
        f"\n{result['stream']}: {result['events']:,} events after a {result['bootstrap_events']:,}-event "
        f"bootstrap, {result['events_per_second']:,.0f} events/s",
        f"  Perennial (served champion)  {score(result['prequential'])}",
    ]
    for name, b in result["baselines"].items():
        lines.append(f"  baseline {name:<19} {score(b)}")
    for lid, m in result["learners"].items():
        lines.append(f"  learner {lid:<20} {learner_score(m)}  ({m['events']:,} events, {m['role']})")
    lines.append(f"  champion drifts at {result['drifts']}  (true switches {result['true_drifts']})")
    for p in result["promotions"]:
        lines.append(f"  promotion at {p['at']}: v{p['from_version']} -> v{p['to_version']} {p['learner']}: {p['reason']}")
    for r in result["rollbacks"]:
        lines.append(f"  rollback at {r['at']}: v{r['from_version']} -> v{r['to_version']}: {r['reason']}")
    return "\n".join(lines)
