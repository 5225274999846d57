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

The machine is shared and noisy, so the two sides are interleaved in chunks of events (bare
learners on chunk k, then the full loop on the same chunk k): a burst of load from another
process hits both sides alike, and the ratio is of the summed times. Repeats keep the best.

    .venv/bin/python benchmarks/learning.py [--events 20000] [--repeats 2]
    .venv/bin/python benchmarks/learning.py --stream friedman    # regression: linear,hat,arf and linear
"""

from __future__ import annotations

import argparse
import json
import time

from training.learners.candidates import build_candidates
from training.publishers import InMemoryPublisher
from training.spec import Task, numeric_spec
from training.streams import iter_stream, stream_info
from training.system import LearningSystem, LoopConfig


def measure_once(names: str, events, chunk: int, spec=None) -> tuple[float, float]:
    """Seconds spent by the bare learners and by the full loop on the same events."""
    # a River learner's bare estimator; a plain-Python learner is its own bare form
    estimators = [getattr(learner, "estimator", learner) for learner in build_candidates(names, spec)]
    learners = build_candidates(names, spec)
    config = LoopConfig(spawn_on_drift=False, refresh_every=5000)
    system = LearningSystem("bench", learners[0], learners[1:], config, InMemoryPublisher(), 1)
    bare_s = full_s = 0.0
    for start in range(0, len(events), chunk):
        part = events[start:start + chunk]
        t0 = time.perf_counter()
        for x, y in part:
            for est in estimators:
                est.predict_one(x)
                est.learn_one(x, y)
        t1 = time.perf_counter()
        for x, y in part:
            system.process_one(x, y)
        t2 = time.perf_counter()
        bare_s += t1 - t0
        full_s += t2 - t1
    return bare_s, full_s


def measure(names: str, events, repeats: int, chunk: int = 500, spec=None) -> dict:
    runs = [measure_once(names, events, chunk, spec) for _ in range(repeats)]
    bare_s, full_s = min(r[0] for r in runs), min(r[1] for r in runs)
    n = len(events)
    return {"learners": names, "events": n, "bare_events_per_second": round(n / bare_s),
            "full_loop_events_per_second": round(n / full_s), "ratio": round(bare_s / full_s, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--stream", default="agrawal-drift")
    args = parser.parse_args()
    events = list(iter_stream(args.stream, args.events))
    spec, cheap = None, "logreg"
    if stream_info(args.stream).task is Task.REGRESSION:  # the regression branch of the loop
        spec, cheap = numeric_spec(sorted(events[0][0]), task=Task.REGRESSION), "linear"
    rows = [measure(f"{cheap},hat,arf", events, args.repeats, spec=spec),
            measure(cheap, events, args.repeats, spec=spec)]
    print(f"{'learners':<16} {'bare ev/s':>10} {'full loop ev/s':>15} {'ratio':>6}")
    for r in rows:
        print(f"{r['learners']:<16} {r['bare_events_per_second']:>10} {r['full_loop_events_per_second']:>15} {r['ratio']:>6}")
    print(json.dumps(rows))
    ok = rows[0]["ratio"] >= 0.7
    print(f"target ≥ 0.7× for {cheap},hat,arf:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
