"""A model spec inferred from bootstrap data: each column's kind, optionality and stats.

Numbers are ``numeric``, booleans ``boolean``, nested lists of numbers ``tensor`` (the shape
of the first row, which every row must share), and strings ``categorical`` — unless they
read as free text: mostly distinct values, several words each on average
(`looks_like_text`), which become ``text``. Every inference can be overridden per column
(``kinds``), which bootstrap exposes as ``--categorical``, ``--numeric`` and ``--text``.

>>> spec = infer_spec([{"review": "not what I ordered, sent it back", "stars": 1},
...                    {"review": "great value and it arrived early", "stars": 5}], ["neg", "pos"])
>>> [(f.name, f.kind.value) for f in spec.features]
[('review', 'text'), ('stars', 'numeric')]
>>> infer_spec([{"image": [[0, 1], [2, 3]]}], [1]).features[0].shape
(2, 2)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from training.spec import (
    MAX_CATEGORIES,
    MAX_CLASSES_INFERRED,
    CategoryStats,
    FeatureKind,
    FeatureSpec,
    ModelSpec,
    NumericStats,
    SpecError,
    TargetSpec,
    Task,
    Value,
    _is_label,
    _is_number,
)

#: text, not categories: at least this share of distinct values ...
TEXT_DISTINCT_SHARE = 0.5
#: ... and at least this many words per value on average
TEXT_MEAN_WORDS = 4.0


def infer_task(labels: Sequence[Any]) -> Task:
    """Regression when every label is a number and there are many distinct values or a
    fractional one; classification otherwise (strings, booleans, a few integer codes).

    >>> infer_task([0, 1, 1]), infer_task([0.5, 1.25]), infer_task(list(range(100)))
    (<Task.CLASSIFICATION: 'classification'>, <Task.REGRESSION: 'regression'>, <Task.REGRESSION: 'regression'>)
    """
    if not labels or not all(_is_number(y) for y in labels):
        return Task.CLASSIFICATION
    if any(float(y) != int(y) for y in labels if math.isfinite(y)):
        return Task.REGRESSION
    return Task.REGRESSION if len(set(labels)) > MAX_CLASSES_INFERRED else Task.CLASSIFICATION


def infer_spec(
    rows: Sequence[Mapping[str, Value]],
    labels: Sequence[Any],
    *,
    target: str = "label",
    task: Task | None = None,
    kinds: Mapping[str, FeatureKind] | None = None,
    optional: Iterable[str] = (),
    max_categories: int = MAX_CATEGORIES,
) -> ModelSpec:
    """Build a spec from bootstrap data: each column's kind from its values (see the module
    docstring), optional when any row lacks it, stats from what was seen. ``kinds`` and ``optional`` override per column;
    ``task`` overrides `infer_task`."""
    if not rows:
        raise SpecError("no rows to infer a spec from")
    kinds = dict(kinds or {})
    forced_optional = set(optional)
    names: list[str] = []
    seen: set[str] = set()
    for row in rows:
        for name in row:
            if name not in seen:
                seen.add(name)
                names.append(name)
    unknown = sorted((set(kinds) | forced_optional) - seen)
    if unknown:
        raise SpecError(f"column override(s) for {unknown}, which the data does not have; columns are {names[:50]}")
    features = []
    for name in names:
        present = [row.get(name) for row in rows]
        values = [v for v in present if v is not None and not (isinstance(v, float) and math.isnan(v))]
        missing = len(present) - len(values)
        kind = kinds.get(name) or _infer_kind(values)
        stats = _stats(name, kind, values, missing, max_categories)
        shape = _tensor_shape(name, values) if kind is FeatureKind.TENSOR else ()
        features.append(FeatureSpec(name, kind, missing > 0 or name in forced_optional, stats, shape))
    chosen = task or infer_task(labels)
    if chosen is Task.CLASSIFICATION:
        bad = next((y for y in labels if not _is_label(y)), None)
        if bad is not None:
            raise SpecError(f"label {bad!r} is not a class (strings, integers or booleans)")
        classes = tuple(sorted(set(labels), key=lambda c: (str(type(c)), c)))
        target_spec = TargetSpec(target, classes)
    else:
        bad = next((y for y in labels if not _is_number(y) or not math.isfinite(y)), None)
        if bad is not None:
            raise SpecError(f"a regression target must be a finite number; got {bad!r}")
        target_spec = TargetSpec(target, None, NumericStats.of([float(y) for y in labels]))
    return ModelSpec(chosen, target_spec, tuple(features))


def with_stats(spec: ModelSpec, rows: Sequence[Mapping[str, Value]], max_categories: int = MAX_CATEGORIES) -> ModelSpec:
    """``spec`` (a hand-written one, say) with each feature's stats taken from ``rows`` —
    the categories its encoders one-hot, the means they impute — keeping kinds and
    ``optional`` as declared."""
    features = []
    for f in spec.features:
        present = [row.get(f.name) for row in rows]
        values = [v for v in present if v is not None and not (isinstance(v, float) and math.isnan(v))]
        features.append(replace(f, stats=_stats(f.name, f.kind, values, len(present) - len(values), max_categories)))
    return replace(spec, features=tuple(features))


def _stats(name: str, kind: FeatureKind, values: Sequence[Any], missing: int,
           max_categories: int) -> NumericStats | CategoryStats | None:
    if kind is FeatureKind.NUMERIC:
        bad = next((v for v in values if not _is_number(v)), None)
        if bad is not None:
            raise SpecError(f"column {name!r} is declared numeric but holds {bad!r}; declare it categorical")
        return NumericStats.of([float(v) for v in values if math.isfinite(v)], missing)
    if kind is FeatureKind.CATEGORICAL:
        counts = Counter(category_text(v) for v in values)
        top = counts.most_common(max_categories)
        return CategoryStats(len(values), missing, tuple(top), len(values) - sum(k for _, k in top))
    return None


def _infer_kind(values: Sequence[Any]) -> FeatureKind:
    if values and all(type(v) is bool for v in values):
        return FeatureKind.BOOLEAN
    if all(_is_number(v) for v in values):
        return FeatureKind.NUMERIC
    if values and all(type(v) is list for v in values):
        return FeatureKind.TENSOR
    if looks_like_text([v for v in values if type(v) is str]):
        return FeatureKind.TEXT
    return FeatureKind.CATEGORICAL


def looks_like_text(values: Sequence[str]) -> bool:
    """Free text rather than categories: mostly distinct values of several words each.

    >>> looks_like_text(["red", "green", "red"]), looks_like_text(["a b c d e", "f g h i j"])
    (False, True)
    """
    if len(values) < 2:
        return bool(values) and len(values[0].split()) >= TEXT_MEAN_WORDS
    distinct = len(set(values)) / len(values)
    words = sum(len(v.split()) for v in values) / len(values)
    return distinct >= TEXT_DISTINCT_SHARE and words >= TEXT_MEAN_WORDS


def tensor_shape(value: object) -> tuple[int, ...]:
    """The shape of nested lists (``[]`` has shape ``(0,)``); raises ValueError when ragged.

    >>> tensor_shape([[1, 2, 3], [4, 5, 6]])
    (2, 3)
    """
    if type(value) is not list:
        return ()
    if not value:
        return (0,)
    inner = tensor_shape(value[0])
    if any(tensor_shape(v) != inner for v in value[1:]):
        raise ValueError("ragged nested lists (rows of different lengths)")
    return (len(value), *inner)


def _tensor_shape(name: str, values: Sequence[Any]) -> tuple[int, ...]:
    try:
        shape = tensor_shape(values[0])
        other = next((tensor_shape(v) for v in values if tensor_shape(v) != shape), None)
    except ValueError as e:
        raise SpecError(f"column {name!r} holds {e}; a tensor column holds lists of one shape") from None
    if other is not None:
        raise SpecError(f"column {name!r} holds tensors of shapes {list(shape)} and {list(other)}; "
                        "a tensor column has one shape (declare it in a spec file)")
    return shape


def category_text(value: Any) -> str:
    """Categories are strings; a number or boolean code is kept as its text (as
    `training.rows.RowValidator` reads it: 2000.0 and 2000 are both "2000")."""
    if isinstance(value, str):
        return value
    if type(value) is float and value.is_integer():
        return str(int(value))
    return str(value) if type(value) is not float else repr(value)
