"""A CSV file as a stream: numeric columns as they are, categorical ones one-hot encoded.

Categories are discovered as rows arrive (``color=red`` becomes feature ``color=red`` with
value 1.0), so a stream can be replayed without a schema. Empty cells are left out; the
learners treat a missing feature as absent.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from pathlib import Path

from training.learners.base import Label


def _label(value: str) -> Label:
    try:
        return int(value)
    except ValueError:
        return value


def iter_csv(path: str | Path, target: str = "label", n_events: int | None = None) -> Iterator[tuple[dict[str, float], Label]]:
    """Yield ``(features, label)`` per row; errors name the file, line and column."""
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
            raw = row.pop(target)
            if raw is None or raw == "":
                raise ValueError(f"{path}:{line}: empty label in column {target!r}")
            features: dict[str, float] = {}
            for name, value in row.items():
                if value is None or value == "":
                    continue
                try:
                    features[name] = float(value)
                except ValueError:
                    features[f"{name}={value}"] = 1.0
            yield features, _label(raw)
