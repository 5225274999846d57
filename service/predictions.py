"""A request's predictions: ids, the data plane's result, and ``/predict``'s answer.

``/predict`` answers ``{model, version, predictions: [...]}``, each prediction
``{prediction_id, label, probabilities}`` (probabilities keyed by class as a string) or, for a
regressor, ``{prediction_id, value}``. `predictions` builds those dicts (what
`service.dataplane.DataPlane.predict` returns); `predict_json` writes the same answer as JSON
bytes without them — for 64 instances building 64 prediction dicts (and 64 probability dicts)
and then encoding them cost about twice what formatting the encoded numbers into a template
does. The bytes are exactly pydantic-core's ``to_json`` of the dicts (a test holds them to
that): the numbers, labels and class names are encoded by ``to_json`` once per request (or per
class), only the punctuation around them is Python's.

>>> import numpy as np
>>> class Champ:  # what a result needs of its champion
...     model, version, class_keys, json_classes, label_texts = "m", 3, ["no", "yes"], ["no", "yes"], ['"no"', '"yes"']
>>> result = InferResult(Champ(), np.array([[0.25, 0.75]]), ["f00-0"], index=np.array([1]))
>>> predict_json(result)
b'{"model":"m","version":3,"predictions":[{"prediction_id":"f00-0","label":"yes","probabilities":{"no":0.25,"yes":0.75}}]}'
>>> predict_json(result) == to_json({"model": "m", "version": 3, "predictions": predictions(result)})
True
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic_core import to_json

if TYPE_CHECKING:
    from service.model_holder import Champion


@dataclass
class InferResult:
    """Outputs of one request: the champion that answered and one row per instance —
    probabilities and labels (classification) or values (regression)."""

    champion: Champion
    probabilities: np.ndarray | None  # [n, n_classes], columns in champion.classes order
    prediction_ids: list[str]
    values: np.ndarray | None = None  # [n] (regression)
    index: np.ndarray | None = None  # [n] column of each label in champion.classes (classification)
    _json: list | None = field(default=None, repr=False)

    @property
    def labels(self) -> list:
        """The class of each row, as the champion holds it."""
        classes = self.champion.classes
        return [classes[i] for i in self.index.tolist()] if self.index is not None else []

    def json_labels(self) -> list:
        """`labels` as plain JSON values (numpy scalars converted once per class, not per row;
        the list is made once per request, for the response and the prediction record)."""
        if self._json is None:
            classes = self.champion.json_classes
            self._json = [classes[i] for i in self.index.tolist()] if self.index is not None else []
        return self._json


def prediction_ids(n: int) -> list[str]:
    """``n`` unique prediction ids for one request: a random base (128 bits, from the OS) and
    the instance's index, ``<32 hex>-<i>``; one random draw per request instead of a uuid4
    per instance. /feedback takes them as any other id (`service.feedback_rules`)."""
    base = _random_base()
    if n > len(_SUFFIXES):
        _SUFFIXES.extend(f"-{i}" for i in range(len(_SUFFIXES), n))
    return [base + suffix for suffix in _SUFFIXES[:n]]


_SUFFIXES: list[str] = [f"-{i}" for i in range(1024)]
_ENTROPY = {"bytes": b"", "at": 0}
_ENTROPY_LOCK = threading.Lock()


def _random_base() -> str:
    """32 hex digits of the OS's CSPRNG (ids must be unguessable: untrusted feedback is taken
    only for ids this process issued), read 4 KiB at a time: one ``getrandom`` per 256
    requests instead of one per request (~1 µs each, more under load in py-spy)."""
    with _ENTROPY_LOCK:
        at = _ENTROPY["at"]
        if at + 16 > len(_ENTROPY["bytes"]):
            _ENTROPY["bytes"], at = os.urandom(4096), 0
        _ENTROPY["at"] = at + 16
        return _ENTROPY["bytes"][at:at + 16].hex()


def json_value(value: Any) -> Any:
    """Labels are str, int or bool; numpy scalars become plain Python values for JSON."""
    return value.item() if hasattr(value, "item") else value


def predictions(result: InferResult) -> list[dict]:
    """``/predict``'s predictions as dicts. Dict displays in one list comprehension: a
    per-row ``dict(zip(...))`` cost about as much again (measured)."""
    ids = result.prediction_ids
    if result.values is not None:
        return [{"prediction_id": pid, "value": v} for pid, v in zip(ids, result.values.tolist(), strict=True)]
    keys = result.champion.class_keys
    rows = result.probabilities.tolist()
    labels = result.json_labels()
    if len(keys) == 2:
        k0, k1 = keys
        return [{"prediction_id": pid, "label": label, "probabilities": {k0: p0, k1: p1}}
                for pid, label, (p0, p1) in zip(ids, labels, rows, strict=True)]
    return [{"prediction_id": pid, "label": label, "probabilities": dict(zip(keys, p))}  # noqa: B905 - one per class
            for pid, label, p in zip(ids, labels, rows, strict=True)]


def predict_json(result: InferResult) -> bytes:
    """``/predict``'s whole answer as JSON bytes, equal to ``to_json`` of its dicts (see the
    module docstring); a non-finite number is null, as ``FastJSONResponse`` writes it."""
    champ = result.champion
    ids = result.prediction_ids  # '<32 hex>-<i>': nothing in them needs escaping
    head, keys = _champion_texts(champ)
    if result.values is not None:
        values = _numbers(result.values.ravel().tolist())
        body = ",".join([f'{{"prediction_id":"{i}","value":{v}}}' for i, v in zip(ids, values, strict=True)])
        return (head + body + "]}").encode()
    texts = champ.label_texts
    labels = [texts[i] for i in result.index.tolist()]
    k = len(keys)
    numbers = _numbers(result.probabilities.ravel().tolist())
    if k == 2:  # an f-string per row: the fastest formatting Python has (measured)
        k0, k1 = keys
        body = ",".join([f'{{"prediction_id":"{i}","label":{label},"probabilities":{{{k0}:{p0},{k1}:{p1}}}}}'
                         for i, label, p0, p1 in zip(ids, labels, numbers[0::2], numbers[1::2], strict=True)])
    else:
        template = ('{"prediction_id":"%s","label":%s,"probabilities":{'
                    + ",".join(f"{key.replace('%', '%%')}:%s" for key in keys) + "}}")
        body = ",".join(map(template.__mod__, zip(ids, labels, *(numbers[j::k] for j in range(k)), strict=True)))
    return (head + body + "]}").encode()


def _champion_texts(champ: Champion) -> tuple[str, list[str]]:
    """What every answer of ``champ`` starts with, and its classes as probability keys, as
    JSON text (made on its first answer, kept on the champion)."""
    texts = getattr(champ, "_answer_texts", None)
    if texts is None:
        head = f'{{"model":{_text(champ.model)},"version":{_text(champ.version)},"predictions":['
        texts = champ._answer_texts = (head, [_text(key) for key in champ.class_keys])
    return texts


def _text(value: Any) -> str:
    return to_json(value, inf_nan_mode="null").decode()


def _numbers(values: list[float]) -> list[str]:
    """Each number as ``to_json`` writes it, from one ``to_json`` call (numbers hold no comma)."""
    return to_json(values, inf_nan_mode="null").decode()[1:-1].split(",") if values else []
