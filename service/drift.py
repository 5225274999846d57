"""Request-side feature drift: PSI and missing rate of served traffic, per feature and kind.

The trainer sees concept drift (errors); only the service sees every request, so drift of
the inputs is measured here, against the reference of the champion's training data
(`training.reference`). Served rows go into a fixed-size ring buffer per champion, one
float column per spec feature: the value of a numeric feature, the bucket index of a
categorical one (its reference categories, then one "other" bucket for every category the
reference does not list — unseen ones included), 0/1 for a boolean, a text's length, a
tensor's mean value, NaN for a missing value. Every ``every`` rows, over the window:

- ``perennial_feature_drift_psi{model,feature}``: PSI of the present values against the
  reference buckets (quantile bins, categories, or false/true);
- ``perennial_feature_missing_ratio{model,feature}``: the share of rows missing the feature.

``perennial_feature_reference_missing_ratio{model,feature}`` is set once per champion: the
missing rate its training data had, so an alert compares the two without knowing either.

The update runs in the batch worker thread, never per request. For a numeric-only spec the
batch's ``[n, n_features]`` array is copied into the window as is (one slice assignment);
other specs encode their rows column by column.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from service.batch import Batch
from training.reference import (
    BINNED,
    BOOLEAN,
    CATEGORICAL,
    NUMERIC,
    bin_fractions,
    category_codes,
    code_fractions,
    kind_of,
    psi_of_fractions,
    summary_value,
)
from training.spec import FeatureKind, ModelSpec

log = logging.getLogger(__name__)

_NAN = math.nan


@dataclass(frozen=True, slots=True)
class _Column:
    """How one spec feature is written into the window and compared with its reference."""

    index: int
    name: str
    kind: str
    reference: Mapping | None  # None: missing rate only (no reference of this kind)
    codes: dict[str, int] | None = None  # categorical: category -> bucket; others -> len(codes)

    @property
    def buckets(self) -> int:
        return len(self.reference["fractions"]) if self.reference else 0

    def encode(self, column: list) -> list[float]:
        if self.kind == CATEGORICAL:
            codes = self.codes or {}
            other = len(codes)
            return [_NAN if v is None else codes.get(v, other) for v in column]
        if self.kind == BOOLEAN:
            return [_NAN if v is None else (1.0 if v else 0.0) for v in column]
        if self.kind == NUMERIC:
            return [_NAN if v is None else v for v in column]
        kind = self.kind  # text and tensors: the number they are binned by (a length, a mean)
        return [_NAN if v is None else summary_value(kind, v) for v in column]

    def psi(self, values: np.ndarray) -> float:
        """PSI of the present (non-NaN) window values of this column."""
        if self.kind in BINNED:
            actual = bin_fractions(self.reference["edges"], values)
        else:
            actual = code_fractions(values.astype(np.int64), self.buckets)
        return psi_of_fractions(self.reference["fractions"], actual)


class DriftMonitor:
    """Drift gauges for one model's champion; a new champion gets a new monitor (new reference).

    Args:
        model: the model name (the ``model`` label).
        spec: the version's spec: which features, of which kind, in which order.
        reference: the version's drift reference (``VersionInfo.reference``), or None.
        metrics: the service's metrics (`streaming.metrics.ServiceMetrics`).
        window: rows in the sliding window.
        every: recompute and publish after this many new rows.
    """

    def __init__(
        self,
        model: str,
        spec: ModelSpec,
        reference: Mapping | None,
        metrics,
        window: int = 2000,
        every: int = 200,
    ) -> None:
        refs = (reference or {}).get("features", {})
        self._model = model
        self._psi_gauge = metrics.feature_drift_psi
        self._missing_gauge = metrics.feature_missing_ratio
        self._columns = [self._column(i, f, refs.get(f.name)) for i, f in enumerate(spec.features)]
        self._compared = [c for c in self._columns if c.reference is not None]
        self._window = np.zeros((window, len(self._columns)), dtype=np.float64)
        self._filled = 0
        self._pos = 0
        self._since = 0
        self._every = every
        self._lock = threading.Lock()
        reference_missing = metrics.feature_reference_missing_ratio
        for f in spec.features:
            rate = (refs.get(f.name) or {}).get("missing")
            if rate is None and f.stats is not None:
                rate = f.missing_rate
            if rate is not None:
                reference_missing.labels(model=model, feature=f.name).set(rate)

    def _column(self, index: int, feature, reference: Mapping | None) -> _Column:
        kind = str(feature.kind.value if isinstance(feature.kind, FeatureKind) else feature.kind)
        if reference is not None and kind_of(reference) != kind:
            log.warning("model %s: drift reference of feature %r is %s but the spec says %s; "
                        "watching its missing rate only", self._model, feature.name, kind_of(reference), kind)
            reference = None
        codes = category_codes(reference) if reference is not None and kind == CATEGORICAL else None
        return _Column(index, feature.name, kind, reference, codes)

    @property
    def enabled(self) -> bool:
        return bool(self._columns)

    def observe(self, batch: Batch) -> None:
        """Add a batch of served, validated rows (see `service.batch.Batch`)."""
        if not self._columns:
            return
        rows = batch.numeric if batch.numeric is not None else self._encode(batch.rows)
        if rows.shape[0] == 0:
            return
        with self._lock:
            size = self._window.shape[0]
            rows = rows[-size:]
            n = rows.shape[0]
            end = self._pos + n
            if end <= size:
                self._window[self._pos:end] = rows
            else:
                first = size - self._pos
                self._window[self._pos:] = rows[:first]
                self._window[: n - first] = rows[first:]
            self._pos = end % size
            self._filled = min(size, self._filled + n)
            self._since += n
            if self._since < self._every:
                return
            self._since = 0
            psi, missing = self._compute()
        for name, value in psi.items():
            self._psi_gauge.labels(model=self._model, feature=name).set(value)
        for name, value in missing.items():
            self._missing_gauge.labels(model=self._model, feature=name).set(value)

    def _encode(self, rows: list[dict]) -> np.ndarray:
        out = np.empty((len(rows), len(self._columns)), dtype=np.float64)
        for c in self._columns:
            out[:, c.index] = c.encode([row.get(c.name) for row in rows])
        return out

    def _compute(self) -> tuple[dict[str, float], dict[str, float]]:
        """PSI and missing ratio per feature over the filled window (caller holds the lock)."""
        window = self._window[: self._filled]
        absent = np.isnan(window)
        missing = absent.mean(axis=0)
        psi = {}
        for c in self._compared:
            present = window[~absent[:, c.index], c.index]
            if present.size:  # a feature missing in the whole window has no distribution
                psi[c.name] = c.psi(present)
        return psi, {c.name: float(missing[c.index]) for c in self._columns}

    def snapshot(self) -> dict[str, float]:
        """PSI per feature over the current window (computed now; for tests and /models)."""
        with self._lock:
            return self._compute()[0] if self._filled else {}

    def missing_ratios(self) -> dict[str, float]:
        """Share of window rows missing each feature (computed now)."""
        with self._lock:
            return self._compute()[1] if self._filled else {}
