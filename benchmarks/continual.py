"""Continual learning on `digits-rotate`: does replay keep the PyTorch learner from forgetting?

A `TorchMLPLearner` goes through the phases of the stream prequentially (predict, then learn),
once with the class-balanced replay reservoir and once without (``replay_size=0``), same seed.
After each phase both are scored on held-out images of every phase, which gives:

- prequential accuracy per phase (on the stream itself);
- mean accuracy over the phases: held-out accuracy on each phase's data right after it ends;
- backward transfer (BWT): held-out accuracy on phase-0 data after the last phase minus the
  same right after phase 0 (negative = forgetting).

Acceptance (with replay): mean accuracy >= 0.85 and BWT >= -0.05. Exits 1 if either fails.

    .venv/bin/python benchmarks/continual.py            # prints a table and one JSON line
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import torch

from training.learners.torch_mlp import TorchMLPLearner
from training.streams.digits import digits_phase_dataset, digits_rotate, phase_of_event

TARGET_MEAN_ACCURACY = 0.85
TARGET_BWT = -0.05


def accuracy(learner: TorchMLPLearner, xs: list[dict], ys: list[int]) -> float:
    predictions = learner.predict_proba_many(xs)
    hits = sum(max(p, key=p.__getitem__) == y for p, y in zip(predictions, ys, strict=True) if p)
    return hits / len(ys)


def run(args: argparse.Namespace, replay_size: int) -> dict[str, Any]:
    learner = TorchMLPLearner(
        hidden_layers=tuple(args.hidden),
        dropout=args.dropout,
        lr=args.lr,
        batch_size=args.batch_size,
        epochs_per_batch=args.epochs_per_batch,
        replay_size=replay_size,
        replay_ratio=args.replay_ratio,
        device="cpu",
        seed=args.seed,
    )
    held_out = [
        digits_phase_dataset(p, args.phases, args.max_angle, args.seed, args.held_out_n)
        for p in range(args.phases)
    ]
    n_events = args.events_per_phase * args.phases
    hits = [0] * args.phases
    seen = [0] * args.phases
    after: list[list[float]] = []  # after[i][j]: held-out accuracy on phase j after phase i
    started = time.perf_counter()
    stream = digits_rotate(n_events, args.phases, args.max_angle, args.seed)
    for i, (x, y) in enumerate(stream):
        phase = phase_of_event(i, n_events, args.phases)
        hits[phase] += learner.predict_one(x) == y
        seen[phase] += 1
        learner.learn_one(x, y)
        if phase_of_event(i + 1, n_events, args.phases) != phase:
            after.append([accuracy(learner, xs, ys) for xs, ys in held_out])
    last = len(after) - 1
    return {
        "replay_size": replay_size,
        "prequential_accuracy": [h / n for h, n in zip(hits, seen, strict=True)],
        "held_out_after_phase": after,
        "mean_accuracy": sum(after[p][p] for p in range(len(after))) / len(after),
        "bwt": after[last][0] - after[0][0],
        "seconds": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events-per-phase", type=int, default=5000)
    parser.add_argument("--phases", type=int, default=4)
    parser.add_argument("--max-angle", type=float, default=45.0)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs-per-batch", type=int, default=2)
    parser.add_argument("--replay-size", type=int, default=4000)
    parser.add_argument("--replay-ratio", type=float, default=4.0)
    parser.add_argument(
        "--held-out-n",
        type=int,
        default=4 * 359,
        help="held-out examples per phase (default: 4 augmented copies of each held-out image)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    results = {"with_replay": run(args, args.replay_size), "without_replay": run(args, 0)}

    print(f"digits-rotate: {args.phases} phases x {args.events_per_phase} events, seed {args.seed}")
    header = ["", *(f"phase {p}" for p in range(args.phases)), "mean acc", "BWT", "seconds"]
    print("".join(f"{h:>16}" for h in header))
    for name, r in results.items():
        print(f"{name + ' preq':>16}" + "".join(f"{a:>16.3f}" for a in r["prequential_accuracy"]))
        held = [r["held_out_after_phase"][p][p] for p in range(args.phases)]
        print(
            f"{name + ' held':>16}"
            + "".join(f"{a:>16.3f}" for a in held)
            + f"{r['mean_accuracy']:>16.3f}{r['bwt']:>+16.3f}{r['seconds']:>16.1f}"
        )
    replay = results["with_replay"]
    passed = replay["mean_accuracy"] >= TARGET_MEAN_ACCURACY and replay["bwt"] >= TARGET_BWT
    print(json.dumps({"benchmark": "continual", "args": vars(args), **results, "passed": passed}))
    if not passed:
        print(
            f"FAIL: with replay, mean accuracy {replay['mean_accuracy']:.3f} (target >= "
            f"{TARGET_MEAN_ACCURACY}) and BWT {replay['bwt']:+.3f} (target >= {TARGET_BWT})",
            file=sys.stderr,
        )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
