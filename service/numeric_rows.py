"""``/predict`` instances of a numeric-only model checked as one array, not one row at a time.

Why: `training.rows.RowValidator.row` is a few microseconds of Python per instance; a
request of 64 instances spent more in it than in the model. Most requests are uniform — every
instance an object ``{"features": {...}}`` with the spec's features in the spec's order, or
every instance a list of the same length — and for those the checks the validator makes per
row can be made per request with C-level passes: the shapes as sets, the keys as one list
comparison, the value types in one pass over all values, finiteness in one numpy test. When
every value is a float already, the request's own objects are the validated rows (same
keys, order and values) and no dict is built. `numeric_batch` returns
None for anything else (a missing, extra or misspelt feature, a string, a NaN, mixed forms),
and the caller then runs the per-instance validator, which names the instance, the feature
and the value exactly as before: the fast path decides only "all valid", never an error.

>>> from training.rows import RowValidator
>>> from training.spec import numeric_spec
>>> v = RowValidator(numeric_spec(["a", "b"]))
>>> numeric_batch([{"features": {"a": 1.5, "b": 2}}] * 2 + [{"features": {"a": 3, "b": 4.0}}] * 2, v).rows
[{'a': 1.5, 'b': 2.0}, {'a': 1.5, 'b': 2.0}, {'a': 3.0, 'b': 4.0}, {'a': 3.0, 'b': 4.0}]
>>> numeric_batch([[1, 2], [3, 4]] * 2, v).numeric.tolist()
[[1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [3.0, 4.0]]
>>> numeric_batch([[1, 2], [3, float("nan")]] * 2, v) is None  # the validator will say which
True
"""

from __future__ import annotations

from array import array
from itertools import chain
from operator import itemgetter

import numpy as np

from service.batch import Batch
from training.rows import RowValidator

_NUMBER_TYPES = frozenset((int, float))  # not bool: True is no number here, as in the validator
_FLOAT = {float}
_DICT = {dict}
_LIST = {list}
_ONE = {1}
_features = itemgetter("features")
#: below this many instances the per-instance validator is cheaper than the set-up here
MIN_INSTANCES = 4


def numeric_batch(instances: list, validator: RowValidator) -> Batch | None:
    """The validated batch of uniform, valid ``instances`` of a numeric-only spec, else None."""
    names = validator.names
    width = len(names)
    n = len(instances)
    if n < MIN_INSTANCES or not validator.numeric_only or width > validator.max_features:
        return None
    forms = set(map(type, instances))
    if forms == _DICT:
        if set(map(len, instances)) != _ONE:
            return None
        try:
            features = list(map(_features, instances))
        except KeyError:
            return None
        if set(map(type, features)) != _DICT:
            return None
        # every object with the spec's features in the spec's order (one C-level comparison);
        # another order, even a consistent one, is left to the validator, which reorders
        if list(chain.from_iterable(features)) != list(names) * n:
            return None
        flat = list(chain.from_iterable(map(dict.values, features)))
        rows = features  # the request's own objects, when every value is a float already
    elif forms == _LIST:
        if set(map(len, instances)) != {width}:
            return None
        flat = list(chain.from_iterable(instances))
        rows = None
    else:
        return None
    kinds = set(map(type, flat))
    if not _NUMBER_TYPES.issuperset(kinds):
        return None
    try:  # array.array converts in C faster than np.array does from a list (measured)
        values = np.frombuffer(array("d", flat), dtype=np.float64).reshape(n, width)
    except OverflowError:  # an integer beyond float range: the validator says which
        return None
    if not np.isfinite(values).all():
        return None
    if rows is None or kinds != _FLOAT:  # validated rows hold floats: build them from the array
        rows = [dict(zip(names, row, strict=True)) for row in values.tolist()]
    return Batch(rows, values)
