"""Reference histograms of a model's training features, stored with each registry version.

Why here and pure: the bootstrap computes them from the data a version was trained on, the
registry stores them (``VersionInfo.reference``), and the service compares served traffic
against them (population stability index, `service/drift.py`). No I/O, numpy only.

Shape (JSON-compatible)::

    {"features": {name: {"edges": [c1, ..., c_{k-1}], "fractions": [f1, ..., fk]}}}

``edges`` are the inner cut points, ascending; bin ``i`` holds values ``v`` with
``edges[i-1] < v <= edges[i]`` (the first and last bins are open-ended), so any served
value falls in some bin. Cut points are training quantiles, deduplicated (a discrete
feature gets fewer bins); ``fractions`` sum to 1.

>>> ref = reference_histograms([{"a": float(i)} for i in range(100)], bins=4)
>>> ref["features"]["a"]["edges"]
[24.75, 49.5, 74.25]
>>> ref["features"]["a"]["fractions"]
[0.25, 0.25, 0.25, 0.25]
>>> round(psi(ref["features"]["a"], [float(i) for i in range(100)]), 6)
0.0
>>> psi(ref["features"]["a"], [99.0] * 100) > 1
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Added to empty bins so the logarithm in PSI stays finite (a common convention).
EPSILON = 1e-4


def reference_histograms(X: Sequence[Mapping[str, float]], bins: int = 10) -> dict:
    """Quantile histograms of every feature seen in ``X`` (missing values are skipped)."""
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    names: dict[str, None] = {}
    for x in X:
        names.update(dict.fromkeys(x))
    features = {}
    for name in names:
        values = np.asarray([float(x[name]) for x in X if name in x], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        cuts = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
        features[name] = {
            "edges": [float(c) for c in cuts],
            "fractions": [float(f) for f in bin_fractions(cuts, values)],
        }
    return {"features": features}


def bin_fractions(edges: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin defined by the inner cut points ``edges``."""
    values = np.asarray(values, dtype=np.float64)
    counts = np.bincount(
        np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left"),
        minlength=len(edges) + 1,
    )
    return counts / max(values.size, 1)


def psi(reference: Mapping[str, Sequence[float]], values: Sequence[float] | np.ndarray) -> float:
    """Population stability index of ``values`` against one feature's reference histogram.

    Rule of thumb: below 0.1 stable, 0.1 to 0.25 moderate shift, above 0.25 significant.
    """
    expected = np.clip(np.asarray(reference["fractions"], dtype=np.float64), EPSILON, None)
    actual = np.clip(bin_fractions(reference["edges"], values), EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
