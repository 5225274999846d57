"""What the model spec costs the numeric path: the learning loop on agrawal, this checkout
against another checkout of the project (e.g. the commit before the spec), same run.

    .venv/bin/python benchmarks/spec_overhead.py --baseline /path/to/old/checkout

Each side runs in its own interpreter (its own imports), alternating, ``--repeats`` times;
the events are validated the way the trainer does (`ModelSchema.check_features`) and fed
to a `LearningSystem` of logreg + hat challengers (built from the inferred spec where the
checkout has one, as bootstrap builds them). Prints events per CPU-second (process time: the machine is shared) and the median ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import itertools, json, time
from training.streams import iter_stream
from training.learners.candidates import build_candidates
from training.system import LearningSystem, LoopConfig
from streaming.schemas import ModelSchema
events = list(itertools.islice(iter_stream("agrawal-drift", None, 7), {n}))
boot = events[:500]
import pathlib, training
if (pathlib.Path(training.__file__).parent / "spec.py").exists():
    # learners built from the spec bootstrap infers, as `perennial bootstrap` does
    from training.spec_inference import infer_spec
    spec = infer_spec([x for x, _ in events[:500]], [y for _, y in events[:500]])
    champion, *challengers = build_candidates("logreg,logreg,hat", spec)
else:  # a checkout from before the spec
    champion, *challengers = build_candidates("logreg,logreg,hat")
for x, y in boot:
    for l in (champion, *challengers):
        l.learn_one(x, y)
system = LearningSystem("m", champion, challengers, LoopConfig(), None, 1)
schema = ModelSchema.from_system(system)
start = time.process_time()
for x, y in events[500:]:
    system.process_one(schema.check_features(x), schema.check_label(y))
print(json.dumps({{"rate": ({n} - 500) / (time.process_time() - start)}}))
"""


def run(root: Path, n: int) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD.format(n=n)], cwd=root, capture_output=True, text=True,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["rate"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, type=Path, help="checkout of the code to compare against")
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    here = Path(__file__).resolve().parents[1]
    ratios = []
    for i in range(args.repeats):
        base, new = run(args.baseline, args.events), run(here, args.events)
        ratios.append(new / base)
        print(f"pair {i + 1}: baseline {base:,.0f} events/s, this checkout {new:,.0f} events/s, ratio {new / base:.3f}")
    print(f"median ratio (this / baseline): {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
