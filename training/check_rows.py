"""Synthetic raw rows of any model spec, for `training.checks` on a user's own spec.

``perennial check --spec spec.yaml`` checks a learner on the inputs it will really get —
text, an image tensor, a table — so the rows here are made from the spec alone: each
feature by its kind (numbers around bootstrap's mean, the spec's categories plus one never
seen, booleans, text from a small vocabulary, tensors of the spec's shape), a tenth of an
optional feature's values missing. A hidden signal decides the label and moves every
feature a little (a number up, a category towards the first, words towards "good", a
tensor brighter), so a learner has something to learn; the last class appears only in the
second half of the stream, as a class first seen mid-stream.

>>> from training.spec import FeatureKind, FeatureSpec, ModelSpec, TargetSpec, Task
>>> spec = ModelSpec(Task.CLASSIFICATION, TargetSpec("y", ("neg", "pos", "new")), (
...     FeatureSpec("review", FeatureKind.TEXT), FeatureSpec("image", FeatureKind.TENSOR, shape=(1, 2, 2))))
>>> events = spec_stream(spec, 10)
>>> sorted(events[0][0]), len(events[0][0]["image"]), {y for _, y in events[:5]} <= {"neg", "pos"}
(['image', 'review'], 4, True)
"""

from __future__ import annotations

import random
from typing import Any

from training.rows import RowValidator
from training.spec import (
    CategoryStats,
    FeatureKind,
    FeatureSpec,
    ModelSpec,
    NumericStats,
    SpecError,
    Task,
)

UNSEEN = "__never_seen_in_bootstrap__"
WORDS = ("the", "a", "it", "was", "and", "very", "quite", "order", "item", "price", "box", "day")
GOOD, BAD = ("good", "great", "love", "fast"), ("bad", "broken", "late", "refund")


def spec_stream(spec: ModelSpec, n: int, seed: int = 0) -> list[tuple[dict, Any]]:
    """``n`` validated ``(row, label)`` events of ``spec`` (see the module docstring)."""
    rng = random.Random(seed)
    validator = RowValidator(spec)
    classes = list(spec.classes or ())
    if spec.task is Task.CLASSIFICATION and len(classes) < 2:
        raise SpecError(f"the spec's target {spec.target.name!r} lists {len(classes)} class(es); a classification "
                        "spec for a check names at least two (target: {name, classes: [...]})")
    out = []
    for i in range(n):
        signal = rng.random()  # in [0, 1): which class, how far each feature moves
        raw = {f.name: _value(f, signal, rng) for f in spec.features}
        if spec.task is Task.REGRESSION:
            stats = spec.target.stats
            mean, std = (stats.mean, stats.std or 1.0) if stats is not None else (0.0, 1.0)
            y: Any = mean + std * (2.0 * signal - 1.0) + rng.gauss(0, 0.05 * std)
        else:
            early = classes[:-1] if len(classes) > 2 and i < n // 2 else classes
            y = early[min(int(signal * len(early)), len(early) - 1)]
        out.append((validator.row(raw), validator.label(y)))
    return out


def _value(f: FeatureSpec, signal: float, rng: random.Random) -> Any:
    if f.optional and rng.random() < 0.1:
        return None
    if f.kind is FeatureKind.NUMERIC:
        s = f.stats if isinstance(f.stats, NumericStats) and f.stats.count else NumericStats(1, 0, 0, 0, 0.0, 1.0)
        return s.mean + (s.std or 1.0) * (rng.gauss(0, 1) + 2.0 * signal)
    if f.kind is FeatureKind.CATEGORICAL:
        known = f.stats.categories if isinstance(f.stats, CategoryStats) else ()
        choices = list(known[:5]) + [UNSEEN]
        return choices[0] if rng.random() < signal else rng.choice(choices)
    if f.kind is FeatureKind.BOOLEAN:
        return rng.random() < signal
    if f.kind is FeatureKind.TEXT:
        tone = GOOD if rng.random() < signal else BAD
        return " ".join([*rng.sample(WORDS, 4), rng.choice(tone), rng.choice(tone)])
    return [rng.random() * 0.5 + signal for _ in range(f.size)]  # a tensor: brighter with the signal
