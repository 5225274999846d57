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

from training.rows import RowValidator
from training.spec import Value


@dataclass(slots=True)
class Batch:
    """Rows of one request (or of several, merged by the batcher), in the spec's feature order."""

    rows: list[dict[str, Value]]
    #: the same rows as ``[n, n_features]`` float64 when the model's spec is numeric-only
    numeric: np.ndarray | None = None
    #: the tensor's values as ``[n, size]`` float64 when the whole input is one required
    #: tensor feature (an image model): what a network's `RowsPredictor` path takes
    tensor: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: slice) -> Batch:
        if not isinstance(index, slice):
            raise TypeError(f"a Batch is sliced by row ranges, not indexed by {type(index).__name__}")
        return Batch(self.rows[index], None if self.numeric is None else self.numeric[index],
                     None if self.tensor is None else self.tensor[index])

    @staticmethod
    def concat(batches: Sequence[Batch]) -> Batch:
        """One batch of all rows, in order (the numeric array only when every part has one)."""
        if len(batches) == 1:
            return batches[0]
        rows = [r for b in batches for r in b.rows]
        return Batch(rows, _joined([b.numeric for b in batches]), _joined([b.tensor for b in batches]))


def batch_of(rows: list[dict[str, Value]], validator: RowValidator) -> Batch:
    """Validated rows as a batch, with its float64 array when the spec is numeric-only (rows
    are then floats), or the tensor's values as one array when the whole input is one
    required tensor."""
    if validator.numeric_only:
        return Batch(rows, np.array([[*r.values()] for r in rows], dtype=np.float64))
    tensor = validator.spec.tensor_input
    if tensor is not None and not tensor.optional:
        name = tensor.name
        return Batch(rows, tensor=np.array([r[name] for r in rows], dtype=np.float64))
    return Batch(rows)


def _joined(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    return np.concatenate(arrays, axis=0) if all(a is not None for a in arrays) else None
