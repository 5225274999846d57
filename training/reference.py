"""Drift reference of a model's training features, stored with each registry version.

Why here and pure: the bootstrap computes it from the data a version was trained on, the
registry stores it (``VersionInfo.reference``), and the service compares served traffic
against it (population stability index and missing rate, `service/drift.py`). No I/O,
numpy only.

Shape (JSON-compatible), one entry per feature by kind::

    {"features": {
        name: {"kind": "numeric", "edges": [c1, ..., c_{k-1}], "fractions": [f1, ..., fk],
               "missing": m},
        name: {"kind": "categorical", "categories": [a, b, ...], "fractions": [fa, fb, ..., f_other],
               "missing": m},
        name: {"kind": "boolean", "fractions": [f_false, f_true], "missing": m},
        name: {"kind": "text" | "tensor", "edges": [...], "fractions": [...], "missing": m},
    }}

Numeric: ``edges`` are the inner cut points, ascending; bin ``i`` holds values ``v`` with
``edges[i-1] < v <= edges[i]`` (the first and last bins are open-ended), so any served
value falls in some bin. Cut points are training quantiles, deduplicated (a discrete
feature gets fewer bins). Categorical: one bucket per known category and a last bucket for
every other value — categories training saw but the spec does not keep, and categories
first seen in production (unseen), so a new category moves PSI instead of vanishing.
Boolean: two buckets. Text and tensors are watched through one number each, binned like a
numeric feature: a text's length in characters, a tensor's mean value (a shift in what
clients send — longer reviews, darker images — moves it; what the values mean is the
model's business). ``fractions`` are shares of the *present* values and sum to 1;
``missing`` is the share of rows where the feature was missing (None or absent), watched
separately (a gauge of its own), so a column that goes missing more often does not hide
in, or masquerade as, a shift of its values. A reference written before kinds existed has
no ``kind`` and is numeric.

>>> ref = reference_histograms([{"a": float(i)} for i in range(100)], bins=4)
>>> ref["features"]["a"]["edges"]
[24.75, 49.5, 74.25]
>>> ref["features"]["a"]["fractions"]
[0.25, 0.25, 0.25, 0.25]
>>> round(psi(ref["features"]["a"], [float(i) for i in range(100)]), 6)
0.0
>>> psi(ref["features"]["a"], [99.0] * 100) > 1
True

Categories, booleans and missing values (kinds inferred here; bootstrap passes its spec):

>>> rows = [{"city": c, "vip": i % 2 == 0, "age": None if i % 4 == 0 else 30.0}
...         for i, c in enumerate(["Oslo"] * 6 + ["Rome"] * 2)]
>>> ref = reference_histograms(rows)["features"]
>>> ref["city"]
{'kind': 'categorical', 'categories': ['Oslo', 'Rome'], 'fractions': [0.75, 0.25, 0.0], 'missing': 0.0}
>>> ref["vip"]["fractions"], ref["age"]["missing"]
([0.5, 0.5], 0.25)
>>> psi(ref["city"], ["Oslo"] * 6 + ["Rome"] * 2) < 1e-9
True
>>> psi(ref["city"], ["Lima"] * 8) > 1    # an unseen category is its own bucket
True
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Added to empty bins so the logarithm in PSI stays finite (a common convention).
EPSILON = 1e-4
#: Categories kept per categorical feature when no spec names them (the most frequent).
MAX_CATEGORIES = 50

NUMERIC, CATEGORICAL, BOOLEAN = "numeric", "categorical", "boolean"
TEXT, TENSOR = "text", "tensor"
#: kinds binned as numbers: the value itself, a text's length, a tensor's mean
BINNED = (NUMERIC, TEXT, TENSOR)


def summary_value(kind: str, v: Any) -> float:
    """The number a present value of ``kind`` is binned by (see the module docstring).

    >>> summary_value(TEXT, "four"), summary_value(TENSOR, [1.0, 2.0, 6.0]), summary_value(NUMERIC, 2)
    (4.0, 3.0, 2.0)
    """
    if kind == TEXT:
        return float(len(v))
    if kind == TENSOR:
        return math.fsum(v) / len(v) if v else 0.0
    return float(v)


def reference_histograms(X: Sequence[Mapping[str, Any]], bins: int = 10, *, spec: Any = None) -> dict:
    """The drift reference of the rows ``X`` (see the module docstring for its shape).

    Args:
        X: training rows, raw (numbers, category strings, booleans, ``None`` or an absent
            key for missing).
        bins: quantile bins per numeric feature.
        spec: the model's `training.spec.ModelSpec`. With it, every spec feature gets an
            entry of its kind, in spec order, and a categorical feature's buckets are the
            spec's categories (so "other" means what the encoders call unknown). Without it,
            the features are the keys seen in ``X`` and each kind is inferred from the
            values (strings: categorical, booleans: boolean, numbers: numeric).
    """
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    if spec is not None:
        plan = [(f.name, str(f.kind.value), tuple(f.categories) or None) for f in spec.features]
    else:
        names: dict[str, None] = {}
        for x in X:
            names.update(dict.fromkeys(x))
        plan = [(name, _infer_kind([x.get(name) for x in X]), None) for name in names]
    n_rows = len(X)
    features = {}
    for name, kind, categories in plan:
        column = [x.get(name) for x in X]
        present = [v for v in column if not _is_missing(v)]
        missing = (n_rows - len(present)) / n_rows if n_rows else 0.0
        if kind == CATEGORICAL:
            entry = _categorical(present, categories)
        elif kind == BOOLEAN:
            entry = {"kind": BOOLEAN, "fractions": _shares(Counter(bool(v) for v in present), [False, True])}
        else:
            binned = kind if kind in BINNED else NUMERIC
            values = np.asarray([summary_value(binned, v) for v in present], dtype=np.float64)
            values = values[np.isfinite(values)]
            if values.size == 0:
                if spec is None:
                    continue  # nothing to compare against; a spec still gets the missing rate
                entry = {"kind": binned, "edges": [], "fractions": [1.0]}
            else:
                cuts = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
                entry = {"kind": binned, "edges": [float(c) for c in cuts],
                         "fractions": [float(f) for f in bin_fractions(cuts, values)]}
        entry["missing"] = float(missing)
        features[name] = entry
    return {"features": features}


def _categorical(present: list, categories: Sequence[str] | None) -> dict:
    counts = Counter(_category(v) for v in present)
    if categories is None:
        categories = [c for c, _ in counts.most_common(MAX_CATEGORIES)]
    categories = list(categories)
    total = len(present)
    known = [counts.get(c, 0) for c in categories]
    other = total - sum(known)
    fractions = [k / total for k in known] + [other / total] if total else [0.0] * len(categories) + [1.0]
    return {"kind": CATEGORICAL, "categories": categories, "fractions": [float(f) for f in fractions]}


def _shares(counts: Counter, keys: list) -> list[float]:
    total = sum(counts.values())
    return [counts.get(k, 0) / total for k in keys] if total else [0.5] * len(keys)


def kind_of(reference: Mapping[str, Any]) -> str:
    """The kind of one feature's reference (``numeric`` for references written before kinds)."""
    return reference.get("kind", NUMERIC)


def bin_fractions(edges: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin defined by the inner cut points ``edges``."""
    values = np.asarray(values, dtype=np.float64)
    counts = np.bincount(
        np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left"),
        minlength=len(edges) + 1,
    )
    return counts / max(values.size, 1)


def code_fractions(codes: np.ndarray, n_buckets: int) -> np.ndarray:
    """Share of each bucket among integer bucket ``codes`` (categorical and boolean features)."""
    counts = np.bincount(np.asarray(codes, dtype=np.int64), minlength=n_buckets)
    return counts / max(codes.size, 1)


def category_codes(reference: Mapping[str, Any]) -> dict[str, int]:
    """Category → bucket index of a categorical reference; anything else is bucket ``len(...)``."""
    return {c: i for i, c in enumerate(reference["categories"])}


def psi_of_fractions(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """PSI between two bucket distributions of the same buckets (empty buckets get `EPSILON`)."""
    e = np.clip(np.asarray(expected, dtype=np.float64), EPSILON, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(reference: Mapping[str, Any], values: Sequence[Any] | np.ndarray) -> float:
    """Population stability index of present ``values`` against one feature's reference.

    Values are what the feature holds: numbers for a numeric feature, category strings for a
    categorical one (a category the reference does not list counts in its "other" bucket),
    booleans for a boolean one. Missing values (``None``) are left out: the missing rate is
    watched on its own. Rule of thumb: below 0.1 stable, 0.1 to 0.25 moderate shift, above
    0.25 significant.
    """
    kind = kind_of(reference)
    if kind == CATEGORICAL:
        index = category_codes(reference)
        other = len(index)
        codes = np.asarray([index.get(_category(v), other) for v in values if not _is_missing(v)], dtype=np.int64)
        actual = code_fractions(codes, other + 1)
    elif kind == BOOLEAN:
        codes = np.asarray([bool(v) for v in values if not _is_missing(v)], dtype=np.int64)
        actual = code_fractions(codes, 2)
    else:
        arr = np.asarray([np.nan if v is None else summary_value(kind, v) for v in values]
                         if not isinstance(values, np.ndarray) else values, dtype=np.float64)
        actual = bin_fractions(reference["edges"], arr[~np.isnan(arr)])
    return psi_of_fractions(reference["fractions"], actual)


def _is_missing(v: object) -> bool:
    return v is None or (type(v) is float and math.isnan(v))


def _category(v: object) -> str:
    return v if isinstance(v, str) else str(v)


def _infer_kind(column: list) -> str:
    present = [v for v in column if not _is_missing(v)]
    if present and all(type(v) is bool for v in present):
        return BOOLEAN
    if any(isinstance(v, str) for v in present):
        return CATEGORICAL
    return NUMERIC
