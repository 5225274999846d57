"""The learner contract as checks anyone can run (like River's ``check_estimator``).

Every learner of a model — built-in, a user's River pipeline, a user's network — must keep
the promises the loop relies on: the evaluator predicts before learning, so predicting must
not change the model; a drift spawns ``clone()``, which must be untrained; the registry and
checkpoints store ``to_bytes``, which must carry all the state; replays must be
reproducible; the service sends raw rows of the spec (strings, missing values, categories
never seen in bootstrap); a class may first appear mid-stream.

`run_checks` yields one `CheckResult` per property, each independent of the others' failures,
for a ``make(spec) -> Learner`` callable; ``perennial check`` prints them and the test suite
runs the built-in candidates through the same checks.

>>> from training.learners.candidates import build_candidates
>>> results = list(run_checks(lambda spec: build_candidates("logreg", spec)[0], n_events=200))
>>> [(r.name, r.passed) for r in results][:2]
[('accepts raw rows', True), ('predicting does not change the model', True)]
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from training.learners.base import Learner
from training.rows import RowValidator
from training.spec import (
    CategoryStats,
    FeatureKind,
    FeatureSpec,
    ModelSpec,
    NumericStats,
    TargetSpec,
    Task,
)

Make = Callable[[ModelSpec], Learner]

CLASSES = ("a", "b", "c")  # "c" is first seen half-way through the stream
COLORS = ("red", "green", "blue")


@dataclass(frozen=True)
class CheckResult:
    """One property: passed or not, and a sentence saying what was seen."""

    name: str
    passed: bool
    detail: str = ""
    info: bool = False  # a measurement (events/s), not a pass/fail property


CHECKS = ("accepts raw rows", "predicting does not change the model", "a clone is untrained",
          "a snapshot round-trip predicts identically", "two seeded runs agree",
          "a class first seen mid-stream is handled", "throughput")


def check_spec(task: Task = Task.CLASSIFICATION) -> ModelSpec:
    """The spec the checks use: numeric, optional numeric, categorical (optional) and boolean
    features; three classes, or a numeric target."""
    features = (
        FeatureSpec("x1", stats=NumericStats(100, 0, -3.0, 3.0, 0.0, 1.0)),
        FeatureSpec("x2", stats=NumericStats(100, 0, -3.0, 3.0, 0.0, 1.0)),
        FeatureSpec("x3", optional=True, stats=NumericStats(100, 20, -3.0, 3.0, 0.0, 1.0)),
        FeatureSpec("color", FeatureKind.CATEGORICAL, optional=True,
                    stats=CategoryStats(100, 10, (("red", 40), ("green", 30), ("blue", 20)))),
        FeatureSpec("flag", FeatureKind.BOOLEAN),
    )
    target = TargetSpec("y", CLASSES) if task is Task.CLASSIFICATION else TargetSpec(
        "y", None, NumericStats(100, 0, -10.0, 10.0, 0.0, 3.0))
    return ModelSpec(task, target, features)


def check_stream(spec: ModelSpec, n: int, seed: int = 0) -> list[tuple[dict, Any]]:
    """``n`` raw rows of ``spec`` with their labels, validated as the service would: about a
    tenth missing ``x3`` or ``color``, some colors bootstrap never saw ("purple"), and (for
    classification) class "c" only in the second half."""
    rng = random.Random(seed)
    validator = RowValidator(spec)
    out = []
    for i in range(n):
        x1, x2 = rng.gauss(0, 1), rng.gauss(0, 1)
        raw: dict[str, Any] = {
            "x1": x1, "x2": x2, "x3": None if rng.random() < 0.1 else rng.gauss(0, 1),
            "color": None if rng.random() < 0.1 else rng.choice(COLORS + ("purple",)),
            "flag": rng.random() < 0.5,
        }
        if spec.task is Task.CLASSIFICATION:
            if i >= n // 2 and x2 > 0.5:
                y: Any = "c"
            else:
                y = "a" if x1 + (0.5 if raw["color"] == "red" else 0.0) > 0 else "b"
        else:
            y = 2.0 * x1 - x2 + (1.0 if raw["flag"] else 0.0) + rng.gauss(0, 0.1)
        out.append((validator.row(raw), validator.label(y)))
    return out


def run_checks(make: Make, task: Task = Task.CLASSIFICATION, *, n_events: int = 600,
               seed: int = 0, spec: ModelSpec | None = None) -> Iterator[CheckResult]:
    """Run every check on learners built by ``make(spec)``; see the module docstring.

    ``spec``: the user's model spec (text, tensors, their table), checked on synthetic rows
    of it (`training.check_rows`); default `check_spec` for ``task``."""
    if spec is None:
        spec = check_spec(task)
        stream = check_stream(spec, n_events, seed)
        probe = [x for x, _ in check_stream(spec, 50, seed + 1)]
    else:
        from training.check_rows import spec_stream

        task = spec.task
        stream = spec_stream(spec, n_events, seed)
        probe = [x for x, _ in spec_stream(spec, 50, seed + 1)]
    half = stream[: n_events // 2]
    classification = task is Task.CLASSIFICATION
    new_class = (spec.classes or ("c",))[-1]

    def trained(events: Sequence[tuple[dict, Any]] = half) -> Learner:
        learner = make(spec)
        for x, y in events:
            learner.learn_one(x, y)
        return learner

    def predictions(learner: Learner) -> list:
        if classification:
            return [learner.predict_proba_one(x) for x in probe]
        return [learner.predict_one(x) for x in probe]

    yield _run("accepts raw rows", lambda: _raw_rows(trained, predictions, classification, spec))
    yield _run("predicting does not change the model", lambda: _predict_is_pure(trained, predictions, probe))
    yield _run("a clone is untrained", lambda: _clone_untrained(trained, make, spec, predictions))
    yield _run("a snapshot round-trip predicts identically",
               lambda: _snapshot(trained, predictions, stream[n_events // 2:]))
    yield _run("two seeded runs agree", lambda: _agree(predictions(trained()), predictions(trained()),
                                                         "two learners built alike and fed the same events"))
    if classification:
        yield _run("a class first seen mid-stream is handled", lambda: _new_class(trained, stream, probe, new_class))
    else:
        yield CheckResult("a class first seen mid-stream is handled", True, "not applicable to regression")
    yield _run("throughput", lambda: _throughput(make, spec, stream, probe, classification), info=True)


# -- the checks -----------------------------------------------------------------------------


class CheckFailed(Exception):
    """A property does not hold; the message says how."""


def _run(name: str, body: Callable[[], str], info: bool = False) -> CheckResult:
    try:
        return CheckResult(name, True, body() or "", info)
    except CheckFailed as e:
        return CheckResult(name, False, str(e), info)
    except Exception as e:  # noqa: BLE001 - a learner's crash is a failed check, reported as such
        return CheckResult(name, False, f"raised {type(e).__name__}: {_short(str(e))}", info)


def _raw_rows(trained, predictions, classification: bool, spec: ModelSpec) -> str:
    learner = trained()
    for i, p in enumerate(predictions(learner)):
        if classification:
            if not isinstance(p, dict) or not p:
                raise CheckFailed(f"after learning, predict_proba_one gave {p!r} for probe row {i}; "
                                  "expected class probabilities")
            if any(not (isinstance(v, int | float) and 0.0 <= v <= 1.0 + 1e-9) for v in p.values()) \
                    or abs(sum(p.values()) - 1.0) > 1e-6:
                raise CheckFailed(f"probabilities for probe row {i} are not a distribution: {_short(repr(p))}")
        elif not (isinstance(p, int | float) and math.isfinite(p)):
            raise CheckFailed(f"after learning, predict_one gave {p!r} for probe row {i}; expected a finite number")
    if spec == check_spec(spec.task):
        return "numeric, boolean, categorical (unseen 'purple') and missing values learned and predicted"
    kinds = sorted({f.kind.value for f in spec.features})
    return f"rows of the given spec ({', '.join(kinds)}) learned and predicted"


def _predict_is_pure(trained, predictions, probe) -> str:
    learner = trained()
    before = predictions(learner)
    for _ in range(3):
        for x in probe:
            learner.predict_one(x)
            if learner.task is Task.CLASSIFICATION:
                learner.predict_proba_one(x)
        learner.predict_many(probe)
    _agree(before, predictions(learner), "predictions before and after predicting the probe rows 3 more times")
    return ""


def _clone_untrained(trained, make, spec, predictions) -> str:
    learner, untouched = trained(), trained()  # each is asked once, so a learner that breaks
    twin = learner.clone()                     # another property is not blamed here too
    _agree(predictions(twin), predictions(make(spec)), "a clone of a trained learner and a fresh learner")
    _agree(predictions(learner), predictions(untouched), "a trained learner after clone() and its twin never cloned")
    if twin.name != learner.name:
        raise CheckFailed(f"the clone is named {twin.name!r}, the original {learner.name!r}")
    return ""


def _snapshot(trained, predictions, more) -> str:
    learner = trained()
    restored = type(learner).from_bytes(learner.to_bytes())
    _agree(predictions(learner), predictions(restored), "the learner and its restored snapshot")
    for x, y in more:
        learner.learn_one(x, y)
        restored.learn_one(x, y)
    _agree(predictions(learner), predictions(restored), "the learner and its restored snapshot after both "
                                                        "learned the same further events")
    return ""


def _new_class(trained, stream, probe, new_class) -> str:
    learner = trained(stream)
    seen = set()
    for i, x in enumerate(probe):
        p = learner.predict_proba_one(x)
        if not p or abs(sum(p.values()) - 1.0) > 1e-6 or not all(math.isfinite(v) for v in p.values()):
            raise CheckFailed(f"after class {new_class!r} arrived, probe row {i} got {_short(repr(p))}; expected a distribution")
        seen.update(p)
    if new_class not in seen:
        raise CheckFailed(f"after learning {sum(y == new_class for _, y in stream)} events of class "
                          f"{new_class!r} (first seen "
                          f"mid-stream) the learner never gives it a probability (classes: {sorted(seen, key=str)})")
    return ""


def _throughput(make, spec, stream, probe, classification: bool) -> str:
    learner = make(spec)
    start = time.perf_counter()
    for x, y in stream:
        learner.learn_one(x, y)
    learn_s = time.perf_counter() - start
    rows = [x for x, _ in stream]
    start = time.perf_counter()
    for x in rows:
        learner.predict_proba_one(x) if classification else learner.predict_one(x)
    predict_s = time.perf_counter() - start
    return (f"learn {len(stream) / max(learn_s, 1e-9):,.0f} events/s, "
            f"predict {len(rows) / max(predict_s, 1e-9):,.0f} events/s (one at a time)")


# -- comparing predictions -------------------------------------------------------------------


def _agree(a: list, b: list, what: str, tol: float = 1e-9) -> str:
    """Raise `CheckFailed` naming the first probe row where ``a`` and ``b`` differ."""
    for i, (p, q) in enumerate(zip(a, b, strict=True)):
        if not _same(p, q, tol):
            raise CheckFailed(f"{what} differ on probe row {i}: {_short(repr(p))} vs {_short(repr(q))}")
    return ""


def _same(p: Any, q: Any, tol: float) -> bool:
    if isinstance(p, dict) and isinstance(q, dict):
        return p.keys() == q.keys() and all(_same(p[k], q[k], tol) for k in p)
    if isinstance(p, float | int) and isinstance(q, float | int) and not isinstance(p, bool):
        return abs(p - q) <= tol * max(1.0, abs(p), abs(q))
    return p == q


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
