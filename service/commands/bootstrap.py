"""`perennial bootstrap`: train the first models offline, report, register the champion as v1."""

from __future__ import annotations

import argparse

from service.cli_support import add_stream_flag

SETTING_FLAGS = ["registry_dir", "candidates", "candidates_file", "validation_fraction", "augment_copies", "max_epochs",
                 "mlp_hidden_layers", "mlp_activation", "mlp_lr", "mlp_batch_size"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bootstrap", help="train the first models offline, evaluate, register the champion",
        description="Split the first events of STREAM into train and validation, augment, train every "
                    "candidate, select by validation macro-F1, write an evaluation report and a "
                    "loss-curve PNG, and register the winner as the model's champion.",
    )
    add_stream_flag(p)
    p.add_argument("--model", required=True, help="model name (letters, digits, . _ -)")
    p.add_argument("--registry", dest="registry_dir", help="registry directory (default ./.perennial/registry)")
    p.add_argument("--events", type=int, default=5000,
                   help="events to train on (default 5000; all of a shorter stream, with a notice)")
    p.add_argument("--seed", type=int, default=42, help="stream seed (default 42)")
    p.add_argument("--target", default="label", help="label column of a CSV or JSON Lines stream")
    p.add_argument("--task", choices=["classification", "regression"],
                   help="what the model predicts (default: inferred from the labels, with a notice)")
    p.add_argument("--spec", dest="spec_file", help="model spec file (YAML or JSON): task, target, features with kind and optional")
    p.add_argument("--categorical", help="columns to read as categories although they hold numbers, e.g. zip,store")
    p.add_argument("--numeric", help="columns to read as numbers (refused if a cell is not one)")
    p.add_argument("--text", help="columns to read as free text (for a model that reads text), e.g. review")
    p.add_argument("--optional", help="columns that may be missing in production although the data has no gap")
    p.add_argument("--split", choices=["random", "time"],
                   help="how validation is held out: random (seeded, stratified; default for files) or time (latest events; default for streams)")
    p.add_argument("--force", action="store_true", help="register a champion that does not beat the trivial baseline")
    p.add_argument("--report-dir", help="where report.json and loss_curves.png go (default: <registry>/<model>/reports/v<N>)")
    p.add_argument("--candidates", help="candidate learners, e.g. logreg,hat,arf,mlp or acme.models:tree "
                   "(import paths need PERENNIAL_ALLOWED_MODULES)")
    p.add_argument("--candidates-file", help="YAML/JSON file of named candidates: name: {factory, params}")
    p.add_argument("--validation-fraction", type=float, help="share held out for selection (default 0.2)")
    p.add_argument("--augment-copies", type=int, help="augmented copies per training row (0 disables)")
    p.add_argument("--max-epochs", type=int, help="PyTorch candidate: max epochs (early stopping)")
    p.add_argument("--mlp-hidden-layers", help="PyTorch candidate: widths, e.g. 64,64")
    p.add_argument("--mlp-activation", help="PyTorch candidate: relu, tanh, gelu, leaky_relu")
    p.add_argument("--mlp-lr", type=float, help="PyTorch candidate: learning rate")
    p.add_argument("--mlp-batch-size", type=int, help="PyTorch candidate: batch size")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import itertools
    from pathlib import Path

    from service.cli_support import UsageError, notice, resolve_stream
    from service.offline_settings import OfflineSettings, apply_flags
    from training.bootstrap import train_candidates
    from training.data_prep import Split
    from training.lineage import Origin
    from training.registry import Registry
    from training.report import plot_loss_curves, write_json
    from training.spec import FeatureKind, ModelSpec, Task
    from training.streams import iter_stream, stream_info

    # bad values raise (ValueError, RegistryError, FileNotFoundError; SpecError and
    # BootstrapRefused are ValueErrors): `perennial` makes each one line
    stream = resolve_stream(args, "bootstrap")
    if args.events < 2:
        raise UsageError(f"--events {args.events}: bootstrap needs at least 2 events (train and validation)")
    settings = apply_flags(OfflineSettings(), args, SETTING_FLAGS)
    info = stream_info(stream)
    events = list(itertools.islice(iter_stream(stream, None, args.seed, args.target), args.events))
    if len(events) < args.events:
        notice(f"{stream} has only {len(events):,} events; bootstrapping on all of them, not --events {args.events:,}")
    registry = Registry(settings.registry_dir)
    spec = ModelSpec.load(args.spec_file) if args.spec_file else None
    kinds = {c: FeatureKind.CATEGORICAL for c in _columns(args.categorical)}
    kinds.update({c: FeatureKind.NUMERIC for c in _columns(args.numeric)})
    kinds.update({c: FeatureKind.TEXT for c in _columns(args.text)})
    # a file is split at random (it may be sorted); a stream keeps time order
    split = Split(args.split) if args.split else (Split.TIME if info.default_events else Split.RANDOM)
    config = dataclasses.replace(
        settings.bootstrap_config(image=info.kind == "image"), split=split, force=args.force,
        task=Task(args.task) if args.task else None, target=args.target, kinds=kinds,
        optional=tuple(_columns(args.optional)))
    candidates = settings.candidates or (f"every entry of {settings.candidates_file}" if settings.candidates_file
                                         else "the task's defaults")
    print(f"bootstrap {args.model} from {len(events):,} events of {stream}; candidates {candidates}")
    result = train_candidates(events, config, on_progress=lambda msg: print(f"  {msg}..."), spec=spec)
    print(f"\nmodel spec ({'from ' + args.spec_file if spec else 'inferred from the data'}):")
    print(result.spec.describe())
    for text in result.notices:
        notice(text)
    champion = result.champion
    version = registry.publish(
        args.model, champion.learner, metrics=champion.validation,
        data_range={"stream": stream, "first_event": 0, "last_event": len(events) - 1, "seed": args.seed,
                    "split": result.split},
        reference=result.reference,
        note=f"bootstrap: best {result.selected_by} of {', '.join(c.name for c in result.candidates)}",
        origin=Origin.BOOTSTRAP,
    )
    registry.promote(args.model, version.version, f"bootstrap champion ({champion.name})")
    for other in result.candidates:  # the trainer starts its challengers from these
        if other is not champion:
            registry.publish(args.model, other.learner, parent=version.version, metrics=other.validation,
                             data_range=version.data_range, reference=result.reference,
                             note=f"bootstrap challenger ({other.name})", origin=Origin.BOOTSTRAP_CANDIDATE)
    report_dir = Path(args.report_dir or Path(settings.registry_dir) / args.model / "reports" / f"v{version.version}")
    report = dict(result.summary(), model=args.model, version=version.version, stream=stream)
    write_json(report, report_dir / "report.json")
    plot_loss_curves({c.name: (c.curve, c.x_label) for c in result.candidates}, report_dir / "loss_curves.png")
    print(f"\nsplit: {result.split}")
    if result.class_balance:
        print("class balance: " + ", ".join(f"{c} {share:.1%}" for c, share in list(result.class_balance.items())[:10]))
    w = max([14, *(len(c.name) + 1 for c in result.candidates)])  # import paths are long names
    if result.spec.task is Task.REGRESSION:
        print(f"\n{'candidate':<{w}} {'MAE':>10} {'RMSE':>10} {'R2':>8}")
        for c in result.candidates:
            v = c.validation
            mark = "  <- champion" if c is champion else ""
            print(f"{c.name:<{w}} {v['mae']:>10.4f} {v['rmse']:>10.4f} {v['r2']:>8.4f}{mark}")
        b = result.baseline
        print(f"{'baseline':<{w}} {b['mae']:>10.4f} {b['rmse']:>10.4f} {'':>8}  ({b['model']})")
    else:
        print(f"\n{'candidate':<{w}} {'accuracy':>9} {'precision':>10} {'recall':>7} {'macro-F1':>9}")
        for c in result.candidates:
            v = c.validation
            mark = "  <- champion" if c is champion else ""
            print(f"{c.name:<{w}} {v['accuracy']:>9.4f} {v['precision']:>10.4f} {v['recall']:>7.4f} {v['f1_macro']:>9.4f}{mark}")
        b = result.baseline
        print(f"{'baseline':<{w}} {b['accuracy']:>9.4f} {'':>10} {'':>7} {b['f1_macro']:>9.4f}  ({b['model']})")
    print(f"\nregistered {args.model} v{version.version} ({champion.name}) as champion in {registry.root}")
    print(f"report: {report_dir / 'report.json'}\nloss curves: {report_dir / 'loss_curves.png'}")
    return 0


def _columns(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]
