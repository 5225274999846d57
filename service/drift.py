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

The service refreshes at most once a second (``PERENNIAL_DRIFT_MIN_INTERVAL_S``; the model
holder's watcher publishes a refresh held back): at 30,000 instances/s a refresh every 200 rows
was 150 a second, 5 % of the serving process, for gauges scraped every 15 s.

Cost: per request, the batch's ``[n, n_features]`` array is copied into the window (one slice
assignment; other specs than numeric-only encode their rows column by column first). Every
``every`` rows only the rows that entered since are put in their buckets (one ``searchsorted``
per binned feature) and counted into per-feature bucket counts, less the rows they replaced,
and PSI and missing rates of every feature come from the counts in a few array operations:
the cost of a refresh grows with ``every``, not with the window (measured: the whole window
rebinned every 200 rows was about a third of the serving process's time at 64 instances per
request).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from service.batch import Batch
from training.reference import (
    BINNED,
    BOOLEAN,
    CATEGORICAL,
    EPSILON,
    NUMERIC,
    category_codes,
    kind_of,
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
    edges: np.ndarray | None = None  # numeric, text, tensor: the reference's inner cut points

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

    def buckets_of(self, values: np.ndarray) -> np.ndarray:
        """Bucket index of each present value (NaN anywhere: the caller marks those missing)
        — `training.reference.bin_fractions`' bins, or a category's / boolean's code."""
        if self.reference is None:
            return np.zeros(values.shape, dtype=np.intp)
        if self.edges is not None:
            return np.searchsorted(self.edges, values, side="left")
        codes = np.nan_to_num(values, nan=0.0).astype(np.intp)
        return np.clip(codes, 0, self.buckets - 1)


class DriftMonitor:
    """Drift gauges for one model's champion; a new champion gets a new monitor (new reference).

    Args:
        model: the model name (the ``model`` label).
        spec: the version's spec: which features, of which kind, in which order.
        reference: the version's drift reference (``VersionInfo.reference``), or None.
        metrics: the service's metrics (`streaming.metrics.ServiceMetrics`).
        window: rows in the sliding window.
        every: recompute and publish after this many new rows...
        min_interval_s: ...but at most once per this many seconds (`flush` publishes one held back).
        clock: seconds, for ``min_interval_s``.
    """

    def __init__(
        self,
        model: str,
        spec: ModelSpec,
        reference: Mapping | None,
        metrics,
        window: int = 2000,
        every: int = 200,
        min_interval_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        refs = (reference or {}).get("features", {})
        self._model = model
        self._columns = [self._column(i, f, refs.get(f.name)) for i, f in enumerate(spec.features)]
        self._compared = [c for c in self._columns if c.reference is not None]
        width = len(self._columns)
        self._window = np.zeros((window, width), dtype=np.float64)  # the raw values, a ring
        # per cell, the bucket its value is counted in; two buckets past every feature's own:
        # missing, and "empty" (a cell no row has filled yet)
        top = max((c.buckets for c in self._compared), default=1)
        self._missing, self._empty = top, top + 1
        self._buckets = np.full((window, width), self._empty, dtype=np.intp)
        self._offsets = np.arange(width, dtype=np.intp) * (top + 2)  # feature j's counts at j * (top + 2)
        self._counts = np.zeros((width, top + 2), dtype=np.int64)
        self._counts[:, self._empty] = window
        # the references as one padded matrix (clipped as `psi_of_fractions` clips them)
        self._compared_index = np.array([c.index for c in self._compared], dtype=np.intp)
        self._expected = np.full((len(self._compared), top), EPSILON)
        self._real = np.zeros((len(self._compared), top), dtype=bool)  # which buckets exist
        for k, c in enumerate(self._compared):
            self._expected[k, :c.buckets] = np.clip(np.asarray(c.reference["fractions"], dtype=np.float64),
                                                    EPSILON, None)
            self._real[k, :c.buckets] = True
        self._pos = 0
        self._since = 0
        self._uncounted = 0  # rows written since the counts were last brought up to date
        self._every = every
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._refreshed = -math.inf  # when the gauges were last refreshed (clock)
        self._lock = threading.Lock()
        # prometheus_client's labels() costs more than set(): each series is resolved once, when
        # first published (a series must not exist, at 0, before any row was served)
        self._psi_gauge, self._missing_gauge = metrics.feature_drift_psi, metrics.feature_missing_ratio
        self._psi_series: list = [None] * len(self._compared)
        self._missing_series: list = [None] * len(self._columns)
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
        edges = (np.asarray(reference["edges"], dtype=np.float64)
                 if reference is not None and kind in BINNED else None)
        return _Column(index, feature.name, kind, reference, codes, edges)

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
            self._uncounted = min(size, self._uncounted + n)
            self._since += n
            refreshed = self._refresh_if_due()
        if refreshed is not None:
            self._publish_all(*refreshed)

    def flush(self) -> None:
        """Publish a refresh that is due but was held back by ``min_interval_s`` (the model
        holder's watcher calls this every second, so gauges do not wait for more traffic)."""
        with self._lock:
            refreshed = self._refresh_if_due()
        if refreshed is not None:
            self._publish_all(*refreshed)

    def _refresh_if_due(self) -> tuple[list[float | None], list[float]] | None:
        """PSI and missing rates when ``every`` rows came since the last refresh and at least
        ``min_interval_s`` passed (caller holds the lock); None otherwise."""
        if self._since < self._every:
            return None
        if self._min_interval_s:
            now = self._clock()
            if now - self._refreshed < self._min_interval_s:
                return None
            self._refreshed = now
        self._since = 0
        return self._compute()

    def _publish_all(self, psi: list[float | None], missing: list[float]) -> None:
        self._publish(self._psi_gauge, self._psi_series, self._compared, psi)
        self._publish(self._missing_gauge, self._missing_series, self._columns, missing)

    def _publish(self, gauge, series: list, columns: list[_Column], values: list[float | None]) -> None:
        for k, value in enumerate(values):
            if value is not None:
                if series[k] is None:
                    series[k] = gauge.labels(model=self._model, feature=columns[k].name)
                series[k].set(value)

    def _encode(self, rows: list[dict]) -> np.ndarray:
        out = np.empty((len(rows), len(self._columns)), dtype=np.float64)
        for c in self._columns:
            out[:, c.index] = c.encode([row.get(c.name) for row in rows])
        return out

    def _count_new_rows(self) -> None:
        """Bring the bucket counts up to date with the rows written since (caller holds the lock)."""
        n, size = self._uncounted, self._window.shape[0]
        if n == 0:
            return
        self._uncounted = 0
        start = (self._pos - n) % size
        cells = slice(start, start + n) if start + n <= size else np.arange(start, start + n) % size
        values = self._window[cells]
        buckets = np.empty(values.shape, dtype=np.intp)
        for c in self._columns:
            buckets[:, c.index] = c.buckets_of(values[:, c.index])
        buckets[np.isnan(values)] = self._missing
        width = self._counts.size
        self._counts += (np.bincount((buckets + self._offsets).ravel(), minlength=width)
                         - np.bincount((self._buckets[cells] + self._offsets).ravel(), minlength=width)
                         ).reshape(self._counts.shape)
        self._buckets[cells] = buckets

    def _compute(self) -> tuple[list[float | None], list[float]]:
        """PSI of each compared feature (None when it is missing in every row of the window)
        and the missing ratio of every feature, from the bucket counts (caller holds the lock)."""
        self._count_new_rows()
        counts = self._counts
        filled = self._window.shape[0] - int(counts[0, self._empty])
        missing = counts[:, self._missing]
        ratios = (missing / filled).tolist() if filled else [0.0] * len(self._columns)
        if not self._compared:
            return [], ratios
        compared = counts[self._compared_index, : self._missing]
        present = filled - missing[self._compared_index]
        with np.errstate(invalid="ignore", divide="ignore"):  # a feature with no value present: no PSI
            actual = np.where(self._real, np.clip(compared / present[:, None], EPSILON, None), EPSILON)
        expected = self._expected
        psi = ((actual - expected) * np.log(actual / expected)).sum(axis=1)
        return [float(v) if p else None for v, p in zip(psi.tolist(), present.tolist(), strict=True)], ratios

    def _named(self) -> tuple[dict[str, float], dict[str, float]]:
        psi, missing = self._compute()
        return ({c.name: v for c, v in zip(self._compared, psi, strict=True) if v is not None},
                {c.name: v for c, v in zip(self._columns, missing, strict=True)})

    def snapshot(self) -> dict[str, float]:
        """PSI per feature over the current window (computed now; for tests and /models)."""
        with self._lock:
            return self._named()[0] if self._filled else {}

    def missing_ratios(self) -> dict[str, float]:
        """Share of window rows missing each feature (computed now)."""
        with self._lock:
            return self._named()[1] if self._filled else {}

    @property
    def _filled(self) -> int:
        """Rows in the window (the counts are brought up to date first)."""
        self._count_new_rows()
        return self._window.shape[0] - int(self._counts[0, self._empty])
