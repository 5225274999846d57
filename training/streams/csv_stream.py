"""A CSV file as a stream of raw rows, as a user has it: numbers, strings, booleans, gaps.

Each cell is read as the value it spells — an integer, a number, ``true``/``false``, or text —
and an empty cell is a missing value (``None``). Nothing is encoded here: the model spec
(`training.spec.infer_spec`) decides each column's kind from the values, and every learner
encodes the spec's rows itself (`training.encoding`), so a category first seen late in the
file is a valid value, not a new feature.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "t.csv")
>>> _ = open(path, "w").write("age,city,vip,label\\n31,Oslo,true,yes\\n,Rome,false,no\\n")
>>> list(iter_csv(path))
[({'age': 31, 'city': 'Oslo', 'vip': True}, 'yes'), ({'age': None, 'city': 'Rome', 'vip': False}, 'no')]
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from pathlib import Path

from training.spec import Value

_BOOLEANS = {"true": True, "false": False}


def parse_cell(text: str | None) -> Value:
    """The value a CSV cell spells; None for an empty cell.

    >>> [parse_cell(t) for t in ("7", "-2.5", "1e3", "TRUE", "Oslo", "", " 4 ")]
    [7, -2.5, 1000.0, True, 'Oslo', None, 4]
    """
    if text is None:
        return None
    s = text.strip()
    if not s:
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        value = float(s)
    except ValueError:
        return _BOOLEANS.get(s.lower(), s)
    return value if value == value else None  # "nan" / "NaN" cells are gaps too


def iter_csv(path: str | Path, target: str = "label", n_events: int | None = None) -> Iterator[tuple[dict[str, Value], Value]]:
    """Yield ``(row, label)`` per CSV row; errors name the file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV stream {path} does not exist")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or target not in reader.fieldnames:
            raise ValueError(
                f"{path}: no target column {target!r}; columns are {reader.fieldnames}; pass --target"
            )
        for line, row in enumerate(itertools.islice(reader, n_events), start=2):
            label = parse_cell(row.pop(target))
            if label is None:
                raise ValueError(f"{path}:{line}: empty label in column {target!r}")
            if None in row:  # more cells than the header names
                raise ValueError(f"{path}:{line}: {len(row[None])} more cell(s) than the header's columns")
            yield {name: parse_cell(value) for name, value in row.items()}, label
