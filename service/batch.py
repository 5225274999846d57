"""A validated batch of served rows: what the data plane hands to a champion and its monitors.

The transports (``/predict``, OIP REST, gRPC) validate their instances with the model's
`training.rows.RowValidator` into raw rows (spec order, ``None`` for missing). When the spec
is numeric-only the same rows are also a ``[n, n_features]`` float64 array, which the
vectorised paths (a learner's `RowsPredictor` fast path, the drift monitor's histograms)
use without touching the dicts again.

The adaptive batcher merges the batches of concurrent requests (`Batch.concat`) and may split
one that straddles its size cap (BentoML's dispatcher slices a job: ``batch[a:b]``).

>>> import numpy as np
>>> a = Batch([{"x": 1.0}], np.array([[1.0]]))
>>> b = Batch.concat([a, Batch([{"x": 2.0}, {"x": 3.0}], np.array([[2.0], [3.0]]))])
>>> len(b), b.numeric.ravel().tolist(), b[1:].rows
(3, [1.0, 2.0, 3.0], [{'x': 2.0}, {'x': 3.0}])
"""

from __future__ import annotations

from collections.abc import Sequence
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

    def __getitem__(self, index: slice) -> Batch:
        if not isinstance(index, slice):
            raise TypeError(f"a Batch is sliced by row ranges, not indexed by {type(index).__name__}")
        return Batch(self.rows[index], None if self.numeric is None else self.numeric[index])

    @staticmethod
    def concat(batches: Sequence[Batch]) -> Batch:
        """One batch of all rows, in order (the numeric array only when every part has one)."""
        if len(batches) == 1:
            return batches[0]
        rows = [r for b in batches for r in b.rows]
        arrays = [b.numeric for b in batches]
        numeric = np.concatenate(arrays, axis=0) if all(a is not None for a in arrays) else None
        return Batch(rows, numeric)
