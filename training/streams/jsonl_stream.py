"""A JSON Lines file as a stream of raw rows: the format for inputs a CSV cannot hold.

One JSON object per line, the target among its keys: ``{"review": "arrived broken", "stars":
1, "label": "neg"}``, or ``{"image": [[[0, 3, ...], ...]], "label": 7}`` for an image. Values
stay as JSON has them — numbers, strings (categories or text), booleans, nested lists
(tensors), ``null`` or an absent key for a missing value — and the model spec decides what
each column is (`training.spec_inference`). Blank lines are skipped.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "t.jsonl")
>>> _ = open(path, "w").write('{"text": "so good", "label": "pos"}\\n\\n{"text": null, "label": "neg"}\\n')
>>> list(iter_jsonl(path))
[({'text': 'so good'}, 'pos'), ({'text': None}, 'neg')]
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from training.spec import Value

SUFFIXES = (".jsonl", ".ndjson")


def iter_jsonl(path: str | Path, target: str = "label",
               n_events: int | None = None) -> Iterator[tuple[dict[str, Value], Value]]:
    """Yield ``(row, label)`` per line; errors name the file, the line and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"JSON Lines stream {path} does not exist")
    produced = 0
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if n_events is not None and produced >= n_events:
                return
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{path}:{number}: not JSON ({e})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: a line is one JSON object {{column: value}}; "
                                 f"got {type(row).__name__}")
            if row.get(target) is None:
                raise ValueError(f"{path}:{number}: no label in key {target!r}; keys are "
                                 f"{sorted(row)[:20]}; pass --target")
            label = row.pop(target)
            produced += 1
            yield row, label
