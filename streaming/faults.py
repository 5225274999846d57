"""Invalid feedback of every kind, for integration tests, benchmarks and chaos drills.

Each generated record carries the reason the trainer must give when it dead-letters it, so a
test can assert "learned = valid, dead-lettered = invalid, each with the right reason".

>>> recs = list(mixed_feedback("m", [({"a": 1.0}, 0)] * 40, ["a"], [0, 1], invalid_every=4))
>>> sum(r.reason is None for r in recs), sorted({str(r.reason) for r in recs if r.reason})[:3]
(40, ['infinity', 'missing_field', 'nan'])
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from streaming.schemas import Label, Reason


@dataclass(frozen=True)
class Generated:
    value: bytes
    reason: Reason | None  # None: valid
    event_id: str


def _bad(kind: Reason, model: str, eid: str, x: dict[str, float], y: Label, names: list[str],
         classes: list[Label], max_bytes: int) -> bytes:
    base = {"event_id": eid, "model": model, "features": dict(x), "label": y}
    first = names[0]
    if kind is Reason.NOT_JSON:
        return b'{"event_id": "' + eid.encode() + b'", "label": '
    if kind is Reason.MISSING_FIELD:
        base.pop("label")
    elif kind is Reason.NAN:
        base["features"][first] = float("nan")
    elif kind is Reason.INFINITY:
        base["features"][first] = float("-inf")
    elif kind is Reason.WRONG_TYPE:
        base["features"][first] = "12.5"
    elif kind is Reason.UNKNOWN_CLASS:
        base["label"] = "no-such-class-" + str(classes[0])
    elif kind is Reason.WRONG_VECTOR_LENGTH:
        base["features"] = [x[n] for n in names] + [0.0]
    elif kind is Reason.OVERSIZED:
        base["note"] = "x" * max_bytes
    elif kind is Reason.UNKNOWN_MODEL:
        base["model"] = model + "-other"
    elif kind is Reason.UNKNOWN_FEATURE:
        base["features"]["no_such_feature"] = 1.0
    elif kind is Reason.NOT_OBJECT:
        return json.dumps([eid, y]).encode()
    return json.dumps(base).encode()


KINDS = (Reason.NOT_JSON, Reason.MISSING_FIELD, Reason.NAN, Reason.INFINITY, Reason.WRONG_TYPE,
         Reason.UNKNOWN_CLASS, Reason.WRONG_VECTOR_LENGTH, Reason.OVERSIZED, Reason.UNKNOWN_MODEL,
         Reason.UNKNOWN_FEATURE)


def mixed_feedback(model: str, events: Iterable[tuple[dict[str, float], Label]], feature_names: list[str],
                   classes: list[Label], *, invalid_every: int = 20, prefix: str = "e",
                   max_bytes: int = 65536) -> Iterator[Generated]:
    """Self-contained feedback; every `invalid_every`-th record is invalid, cycling `KINDS`
    (20 → 5% invalid). Invalid records are *extra*: every event of `events` is also sent valid."""
    k = 0
    for i, (x, y) in enumerate(events):
        if invalid_every and i % invalid_every == invalid_every - 1:
            kind = KINDS[k % len(KINDS)]
            k += 1
            eid = f"{prefix}-bad{k}"
            yield Generated(_bad(kind, model, eid, x, y, feature_names, classes, max_bytes), kind, eid)
        eid = f"{prefix}{i}"
        yield Generated(json.dumps({"event_id": eid, "model": model, "features": x, "label": y}).encode(), None, eid)
