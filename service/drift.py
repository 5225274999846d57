"""Request-side feature drift: PSI of served traffic against the champion's training reference.

The trainer sees concept drift (errors); only the service sees every request, so feature
drift of the inputs is measured here. Served rows go into a fixed-size ring buffer per
champion; every ``every`` rows the population stability index of each feature over the
window is recomputed and published as ``perennial_feature_drift_psi{model,feature}``.
Updating is a numpy slice assignment, run in the batch worker thread, never per request.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import numpy as np

from training.reference import psi


class DriftMonitor:
    """PSI gauges for one model's champion; a new champion gets a new monitor (new reference)."""

    def __init__(
        self,
        model: str,
        feature_names: Sequence[str],
        reference: Mapping | None,
        gauge,
        window: int = 2000,
        every: int = 200,
    ) -> None:
        features = (reference or {}).get("features", {})
        # Only features that are both served and have a reference histogram can be compared.
        self._columns = [(i, n, features[n]) for i, n in enumerate(feature_names) if n in features]
        self._model = model
        self._gauge = gauge
        self._window = np.zeros((window, len(feature_names)), dtype=np.float64)
        self._filled = 0
        self._pos = 0
        self._since = 0
        self._every = every
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._columns)

    def observe(self, rows: np.ndarray) -> None:
        """Add served rows (``[n, n_features]`` in the champion's feature order)."""
        if not self._columns or rows.size == 0:
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
            window = self._window[: self._filled]
            values = {name: psi(ref, window[:, i]) for i, name, ref in self._columns}
        for name, value in values.items():
            self._gauge.labels(model=self._model, feature=name).set(value)

    def snapshot(self) -> dict[str, float]:
        """PSI per feature over the current window (computed now; for tests and /models)."""
        with self._lock:
            window = self._window[: self._filled]
            if not self._filled:
                return {}
            return {name: psi(ref, window[:, i]) for i, name, ref in self._columns}
