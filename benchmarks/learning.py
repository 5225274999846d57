"""Cost of Perennial's learning loop on top of the learners themselves.

Runs, on the same events and in the same process:

* **bare** — the River estimators alone: ``predict_one`` then ``learn_one`` for each, the
  least any online system must do;
* **full loop** — `LearningSystem` with the same learners as champion and challengers:
  input checks, prequential metrics per learner, ADWIN per learner, the paired promotion /
  rollback test every ``check_every`` events, and champion refreshes (snapshot to bytes).

and prints events/s of both and their ratio (target ≥ 0.7 for logreg+hat+arf). The
logistic-regression-only set shows the overhead where it is most visible (the learner is
cheapest). Post-drift challenger spawning is off so both runs have exactly the same learners.
Alternating repeats; the best of each is kept (noise on a shared machine only slows runs).

    .venv/bin/python benchmarks/learning.py [--events 20000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import time

from training.learners.candidates import build_candidates
from training.publishers import InMemoryPublisher
from training.streams import iter_stream
from training.system import LearningSystem, LoopConfig


def bare(estimators, events) -> float:
    start = time.perf_counter()
    for x, y in events:
        for est in estimators:
            est.predict_one(x)
            est.learn_one(x, y)
    return len(events) / (time.perf_counter() - start)


def full_loop(learners, events) -> float:
    config = LoopConfig(spawn_on_drift=False, refresh_every=5000)
    system = LearningSystem("bench", learners[0], learners[1:], config, InMemoryPublisher(), 1)
    start = time.perf_counter()
    for x, y in events:
        system.process_one(x, y)
    return len(events) / (time.perf_counter() - start)


def measure(names: str, events, repeats: int) -> dict:
    best_bare = best_full = 0.0
    for _ in range(repeats):
        learners = build_candidates(names)
        best_bare = max(best_bare, bare([lr.estimator for lr in learners], events))
        best_full = max(best_full, full_loop(build_candidates(names), events))
    return {"learners": names, "events": len(events), "bare_events_per_second": round(best_bare),
            "full_loop_events_per_second": round(best_full), "ratio": round(best_full / best_bare, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--stream", default="agrawal-drift")
    args = parser.parse_args()
    events = list(iter_stream(args.stream, args.events))
    rows = [measure("logreg,hat,arf", events, args.repeats), measure("logreg", events, args.repeats)]
    print(f"{'learners':<16} {'bare ev/s':>10} {'full loop ev/s':>15} {'ratio':>6}")
    for r in rows:
        print(f"{r['learners']:<16} {r['bare_events_per_second']:>10} {r['full_loop_events_per_second']:>15} {r['ratio']:>6}")
    print(json.dumps(rows))
    ok = rows[0]["ratio"] >= 0.7
    print("target ≥ 0.7× for logreg,hat,arf:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
