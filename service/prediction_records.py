"""The prediction log's records: one request's, several requests' merged, and their bytes.

A request hands the log one `PredictionBatchWire`-shaped dict (its ``prediction_ids``,
``features`` rows and outputs as parallel lists, `service.dataplane.DataPlane._record`). Why
merge: kafka-python spends about 90 µs of Python per ``send`` whatever the record's size, so
at one instance per request one record per request costs more than the prediction itself.
The log's thread therefore takes every record already queued when it wakes and merges those
of the same model, version and outputs into one (`coalesce`): under load one Kafka record
carries several requests' predictions, idle it still carries one request's, and no request
ever waits for company. The merged record is a `PredictionBatchWire` like any other (the
trainer's join reads it unchanged); its ``timestamp`` is its first request's, so a
prediction's recorded time is early by at most `MERGE_SPAN_S` (the requests merged are the
ones queued while the thread was busy, milliseconds apart).

>>> a = {"model": "m", "version": 1, "timestamp": 10.0, "prediction_ids": ["a-0"],
...      "features": [{"x": 1.0}], "values": [0.5]}
>>> b = {**a, "timestamp": 10.001, "prediction_ids": ["b-0", "b-1"], "features": [{"x": 2.0}] * 2,
...      "values": [0.25, 0.75]}
>>> [(model, record["prediction_ids"], record["timestamp"], n) for model, record, n in
...  coalesce([("m", a, 1), ("m", b, 2)])]
[('m', ['a-0', 'b-0', 'b-1'], 10.0, 3)]
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from streaming.schemas import encode_prediction_batch

#: the lists of a prediction record that hold one entry per prediction
COLUMNS = ("prediction_ids", "features", "labels", "probabilities", "values")
#: most predictions merged into one record (~300 bytes each on a 9-feature model: ~150 KB)
MERGE_PREDICTIONS = 512
#: most seconds between the first and the last request merged into one record
MERGE_SPAN_S = 0.25

Item = tuple[str, dict, int]  # (model, record, predictions in it)


def _kind(model: str, record: dict) -> tuple:
    """What records must share to be merged: model, version and the shape of the outputs."""
    classes = record.get("classes")
    return model, record.get("version"), None if classes is None else tuple(classes), "values" in record


def coalesce(items: Iterable[Item], max_predictions: int = MERGE_PREDICTIONS,
             max_span_s: float = MERGE_SPAN_S) -> list[Item]:
    """Merge queued records, in order, into as few as the limits allow: consecutive records
    of the same `_kind`, at most ``max_predictions`` predictions and ``max_span_s`` seconds
    apart each. A record alone comes back as it was (no copy)."""
    out: list[Item] = []
    group: list[Item] = []
    size, first_ts, kind = 0, 0.0, None

    def close() -> None:
        if group:
            out.append(group[0] if len(group) == 1 else merge(group))

    for item in items:
        model, record, count = item
        item_kind = _kind(model, record)
        ts = record.get("timestamp", 0.0)
        if not group or item_kind != kind or size + count > max_predictions or ts - first_ts > max_span_s:
            close()
            group, size, first_ts, kind = [], 0, ts, item_kind
        group.append(item)
        size += count
    close()
    return out


def merge(items: list[Item]) -> Item:
    """One record of several of the same `_kind` (the first one's ``timestamp``)."""
    model, first, _ = items[0]
    record = {k: v for k, v in first.items() if k not in COLUMNS}
    for column in COLUMNS:
        if column in first:
            merged: list = []
            for _, r, _ in items:
                merged += r[column]
            record[column] = merged
    return model, record, sum(count for _, _, count in items)


def encode_predictions(record: dict, max_bytes: int) -> list[bytes]:
    """A prediction record as one value, or as several (its predictions in halves,
    recursively) when one would exceed ``max_bytes``; a single prediction is never split."""
    value = encode_prediction_batch(record)
    n = len(record["prediction_ids"])
    if len(value) <= max_bytes or n <= 1:
        return [value]
    half = n // 2
    columns = [k for k in COLUMNS if k in record]
    return [v for part in (slice(0, half), slice(half, n))
            for v in encode_predictions({**record, **{k: record[k][part] for k in columns}}, max_bytes)]


def prediction_count(value: bytes) -> int:
    """How many predictions a logged value holds (1 for a per-prediction record)."""
    try:
        ids = json.loads(value).get("prediction_ids")
    except (ValueError, AttributeError):
        return 1
    return len(ids) if isinstance(ids, list) else 1
