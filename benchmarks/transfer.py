"""Transfer learning: a CNN pre-trained on upright digits, fine-tuned online on rotated ones.

The user's network of `examples/cnn_digits` (``digits_cnn.model:cnn``, imported by path
through the allow-list as any user factory is) is pre-trained offline on upright digits
(`digits_cnn.pretrain`: the stream's training images at 0°, never the held-out ones), then
goes prequentially (predict, then learn) through the phases of `digits-rotate` (0°, 15°,
30°, 45°) inside the generic online fine-tuner, `TorchModuleLearner` — the learner the
trainer runs for such a candidate. Three runs per seed, same pre-trained weights, same
stream:

- **fine-tuned, with replay** — the class-balanced replay reservoir mixes earlier events
  into every step (the setting under test);
- **fine-tuned, no replay** — the same with ``replay_size=0``;
- **frozen** — the pre-trained network as it is, every layer frozen (no learning).

After each phase every run is scored on held-out images of every phase (the 20 % of the
digits the stream never shows, rotated like that phase), which gives, as in
`benchmarks/continual.py`:

- mean accuracy over the phases: held-out accuracy on each phase's data right after it ends;
- backward transfer (BWT): held-out accuracy on phase-0 data after the last phase minus the
  same right after phase 0 (negative = forgetting).

Acceptance (issue 10), with replay, on every seed: mean accuracy >= 0.88 and BWT >= -0.05.
Exits 1 if either fails.

    .venv/bin/python benchmarks/transfer.py                  # 3 seeds; a table and one JSON line
    .venv/bin/python benchmarks/transfer.py --seeds 0 --events-per-phase 1000   # a quick look

Predictions are made a mini-batch at a time, aligned with the fine-tuner's batches: it
learns only when a batch of ``batch_size`` events is full, so predicting the batch's events
before learning them gives exactly the predictions of one-at-a-time test-then-train.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cnn_digits"
FACTORY = "digits_cnn.model:cnn"

TARGET_MEAN_ACCURACY = 0.88
TARGET_BWT = -0.05


def use_example_package() -> None:
    """Import the example as a user's package is imported: on the path, and allowed."""
    sys.path.insert(0, str(EXAMPLE))
    allowed = [p for p in os.environ.get("PERENNIAL_ALLOWED_MODULES", "").split(",") if p]
    os.environ["PERENNIAL_ALLOWED_MODULES"] = ",".join(dict.fromkeys([*allowed, "digits_cnn"]))
    if str(ROOT) not in sys.path:  # run as a script: the project's packages too
        sys.path.insert(0, str(ROOT))


def accuracy(learner: Any, xs: list[dict], ys: list[int]) -> float:
    predictions = learner.predict_many(xs)
    return sum(p == y for p, y in zip(predictions, ys, strict=True)) / len(ys)


def tuner_params(args: argparse.Namespace, variant: str, weights: str, seed: int) -> dict[str, Any]:
    """The candidate parameters of one run, as a candidates file would give them."""
    params: dict[str, Any] = {
        "channels": args.channels, "hidden": args.hidden, "dropout": args.dropout, "weights": weights, "standardize": False, "device": "cpu", "seed": seed,
        "optimizer": args.optimizer, "lr": args.lr, "batch_size": args.batch_size,
        "epochs_per_batch": args.epochs_per_batch, "replay_size": args.replay_size,
        "replay_ratio": args.replay_ratio, "freeze": list(args.freeze),
    }
    if variant == "no_replay":
        params["replay_size"] = 0
    elif variant == "frozen":
        params["freeze"] = ["features.", "head."]  # every parameter: no optimizer, no learning
    return params


def run(args: argparse.Namespace, variant: str, weights: str, seed: int, held_out: list) -> dict[str, Any]:
    from training.learners.factories import build_from_path
    from training.spec import numeric_spec
    from training.streams.digits import FEATURES, digits_rotate, phase_of_event

    spec = numeric_spec(FEATURES, classes=list(range(10)))
    learner = build_from_path(FACTORY, spec, tuner_params(args, variant, weights, seed), name=variant)
    n_events = args.events_per_phase * args.phases
    hits, seen = [0] * args.phases, [0] * args.phases
    after: list[list[float]] = []  # after[i][j]: held-out accuracy on phase j after phase i
    started = time.perf_counter()
    events = list(digits_rotate(n_events, args.phases, args.max_angle, seed))
    for phase in range(args.phases):
        part = [i for i in range(n_events) if phase_of_event(i, n_events, args.phases) == phase]
        for start in range(part[0], part[-1] + 1, args.batch_size):
            chunk = events[start:min(start + args.batch_size, part[-1] + 1)]
            xs, ys = [x for x, _ in chunk], [y for _, y in chunk]
            hits[phase] += sum(p == y for p, y in zip(learner.predict_many(xs), ys, strict=True))
            seen[phase] += len(chunk)
            learner.learn_many(xs, ys)
        after.append([accuracy(learner, xs, ys) for xs, ys in held_out])
    last = len(after) - 1
    return {
        "variant": variant,
        "prequential_accuracy": [h / n for h, n in zip(hits, seen, strict=True)],
        "held_out_after_phase": after,
        "mean_accuracy": sum(after[p][p] for p in range(len(after))) / len(after),
        "bwt": after[last][0] - after[0][0],
        "seconds": time.perf_counter() - started,
    }


def run_seed(args: argparse.Namespace, seed: int, workdir: Path) -> dict[str, Any]:
    from digits_cnn.pretrain import pretrain

    from training.streams.digits import digits_phase_dataset

    weights = str(workdir / f"cnn-seed{seed}.pt")
    pre = pretrain(weights, examples=args.pretrain_examples, epochs=args.pretrain_epochs,
                   channels=args.channels, hidden=args.hidden, dropout=args.dropout, seed=seed)
    held_out = [digits_phase_dataset(p, args.phases, args.max_angle, seed, args.held_out_n)
                for p in range(args.phases)]
    runs = {v: run(args, v, weights, seed, held_out) for v in ("replay", "no_replay", "frozen")}
    return {"seed": seed, "pretrain": pre, **runs}


def print_table(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    labels = {"replay": "fine-tuned, replay", "no_replay": "fine-tuned, no replay", "frozen": "frozen"}
    print(f"digits-rotate: {args.phases} phases x {args.events_per_phase} events; CNN pre-trained on "
          f"{args.pretrain_examples} upright digits x {args.pretrain_epochs} epochs")
    header = ["seed", "run", *(f"phase {p}" for p in range(args.phases)), "mean acc", "BWT", "seconds"]
    print(f"{header[0]:>4} {header[1]:<22}" + "".join(f"{h:>10}" for h in header[2:]))
    for r in results:
        for variant, label in labels.items():
            v = r[variant]
            held = [v["held_out_after_phase"][p][p] for p in range(args.phases)]
            print(f"{r['seed']:>4} {label:<22}" + "".join(f"{a:>10.3f}" for a in held)
                  + f"{v['mean_accuracy']:>10.3f}{v['bwt']:>+10.3f}{v['seconds']:>10.1f}")
    for variant, label in labels.items():
        mean = sum(r[variant]["mean_accuracy"] for r in results) / len(results)
        bwt = sum(r[variant]["bwt"] for r in results) / len(results)
        print(f"{'all':>4} {label:<22}" + " " * 10 * args.phases + f"{mean:>10.3f}{bwt:>+10.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--events-per-phase", type=int, default=2500)
    parser.add_argument("--phases", type=int, default=4)
    parser.add_argument("--max-angle", type=float, default=45.0)
    parser.add_argument("--pretrain-examples", type=int, default=16000)
    parser.add_argument("--pretrain-epochs", type=int, default=4)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs-per-batch", type=int, default=2)
    parser.add_argument("--replay-size", type=int, default=4000)
    parser.add_argument("--replay-ratio", type=float, default=8.0)
    parser.add_argument("--freeze", nargs="*", default=[], help="parameter-name prefixes kept frozen, e.g. features.")
    parser.add_argument("--held-out-n", type=int, default=4 * 359,
                        help="held-out examples per phase (default: 4 augmented copies of each held-out image)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    use_example_package()

    with tempfile.TemporaryDirectory(prefix="perennial-transfer-") as tmp:
        results = [run_seed(args, seed, Path(tmp)) for seed in args.seeds]
    print_table(args, results)
    failed = [r["seed"] for r in results
              if r["replay"]["mean_accuracy"] < TARGET_MEAN_ACCURACY or r["replay"]["bwt"] < TARGET_BWT]
    out = {"benchmark": "transfer", "args": vars(args), "results": results, "passed": not failed}
    print(json.dumps(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    if failed:
        print(f"FAIL: with replay, seed(s) {failed} missed mean accuracy >= {TARGET_MEAN_ACCURACY} or "
              f"BWT >= {TARGET_BWT}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
