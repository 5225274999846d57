"""A validated batch of served rows: what the data plane hands to a champion and its monitors.

The transports (``/predict``, OIP REST, gRPC) validate their instances with the model's
`training.rows.RowValidator` into raw rows (spec order, ``None`` for missing). When the spec
is numeric-only the same rows are also a ``[n, n_features]`` float64 array, which the
vectorised paths (a learner's `RowsPredictor` fast path, the drift monitor's histograms)
use without touching the dicts again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.spec import Value


@dataclass(slots=True)
class Batch:
    """Rows of one request (or of several, merged by the batcher), in the spec's feature order."""

    rows: list[dict[str, Value]]
    #: the same rows as ``[n, n_features]`` float64 when the model's spec is numeric-only
    numeric: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)
