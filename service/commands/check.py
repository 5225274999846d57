"""`perennial check MODULE:FACTORY`: the learner contract as a public tool.

Like River's ``check_estimator``: builds the learner the factory names (or a built-in
candidate) for a small spec with numeric, categorical, boolean and missing values, runs
every property of `training.checks` on it and prints each as PASS or FAIL with what was
seen. Exit code 0 when every property holds, 1 when any fails (2 for a usage error, such as
a factory that cannot be imported). The module named on the command line is allowed for
this run; `perennial train` and `perennial serve` still need it in PERENNIAL_ALLOWED_MODULES.
"""

from __future__ import annotations

import argparse
import json

EXIT_FAILED = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check", help="run the learner contract on a user's module:factory (or a built-in candidate)",
        description="Check that a learner keeps the promises the learning loop relies on: predicting does "
        "not change it, a clone is untrained, a snapshot restores it exactly, seeded runs agree, raw rows "
        "(categorical, missing, unseen values) are accepted, a class first seen mid-stream is handled; and "
        "measure its events/s. Exits 1 when any property fails.",
    )
    p.add_argument("target", metavar="MODULE:FACTORY",
                   help="import path of a factory returning a River estimator, a Learner or a torch.nn.Module "
                   "(or a built-in candidate name: logreg, hat, arf, mlp, ...)")
    p.add_argument("--task", choices=("classification", "regression"), default="classification",
                   help="the task of the model the learner is checked for (default classification)")
    p.add_argument("--params", default="{}", type=_json_object,
                   help='keyword parameters of the candidate as a JSON object, e.g. \'{"lr": 0.01}\'')
    p.add_argument("--events", type=int, default=600, help="events in the check stream (default 600)")
    p.add_argument("--spec", dest="spec_file",
                   help="check on synthetic rows of this model spec (YAML or JSON: text, tensors, your table) "
                   "instead of the built-in small table; its task overrides --task")
    p.set_defaults(func=run)


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"--params is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"--params must be a JSON object, got {type(value).__name__}")
    return value


def run(args: argparse.Namespace) -> int:
    import os

    from training.learners.allowlist import ALLOWED_ENV

    before = os.environ.get(ALLOWED_ENV)
    try:
        return _check(args)
    finally:  # the module was allowed for this check only (main() may run in a longer process)
        if before is None:
            os.environ.pop(ALLOWED_ENV, None)
        else:
            os.environ[ALLOWED_ENV] = before


def _check(args: argparse.Namespace) -> int:
    from service.cli_support import UsageError
    from training.checks import check_spec, run_checks
    from training.learners.allowlist import allow
    from training.learners.candidates import build_candidates
    from training.spec import ModelSpec, Task

    if args.events < 20:
        raise UsageError(f"--events {args.events} is too few; give at least 20")
    target = args.target.strip()
    if ":" in target:
        allow(target.partition(":")[0])  # the user asked for this module by name
    task = Task(args.task)
    user_spec = ModelSpec.load(args.spec_file) if args.spec_file else None
    if user_spec is not None:
        task = user_spec.task

    def make(spec):
        return build_candidates([target], spec, **{target: dict(args.params)})[0]

    first = make(user_spec or check_spec(task))  # a factory that cannot be built is a usage error, said in one line
    print(f"perennial check {target} ({task.value}, {type(first).__name__} {first.name!r}, "
          f"{args.events} events)", flush=True)
    failed = 0
    total = 0
    for result in run_checks(make, task, n_events=args.events, spec=user_spec):
        mark = "INFO" if result.info and result.passed else "PASS" if result.passed else "FAIL"
        detail = f": {result.detail}" if result.detail else ""
        print(f"  {mark}  {result.name}{detail}", flush=True)
        if not result.info:
            total += 1
        failed += not result.passed
    if failed:
        print(f"{failed} of {total} properties failed", flush=True)
        return EXIT_FAILED
    print(f"all {total} properties hold", flush=True)
    return 0
