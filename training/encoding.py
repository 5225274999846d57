"""How a learner turns a validated raw row (see `training.rows`) into what its model reads.

Learners own their encoding, built from the model's spec, never from the first row they see:
so every learner of a model accepts exactly the spec's inputs, a category first seen in
production lands in a known slot, and a promotion never changes what a client sends.

Two styles:

* `Encoding.DENSE` — every value a float, in a fixed layout known from the spec: numeric
  features as themselves (a missing one imputed with bootstrap's mean, plus a
  ``name__missing`` 0/1 indicator when the feature is optional); categorical features
  one-hot over the categories bootstrap saw plus ``name=__unknown__`` (an unseen category)
  and, when optional, ``name__missing``; booleans as 0/1 (plus the indicator). For linear
  models and networks.
* `Encoding.NATIVE` — for River's trees, which split on nominal values themselves:
  categorical values stay strings (a missing one becomes ``"__missing__"``), numeric ones
  are imputed with an indicator, booleans become 0/1.

In both styles a ``tensor`` feature becomes one column per value, ``name[i]`` in row-major
order (zeros plus the ``name__missing`` indicator when an optional tensor is missing), and
a ``text`` feature stays the string (``""`` when missing): only a model that reads text — a
user's River pipeline with a text transformer such as ``feature_extraction.TFIDF(on=name)``
— may be given a spec with text, so an encoder built for a model that reads numbers
(``text=False``, the built-in learners) refuses such a spec with a `SpecError` naming the
feature.

A numeric-only spec (every feature numeric and required) encodes to the row itself — no
copy — which keeps the demo's numeric path as fast as before the spec existed.

>>> from training.spec import FeatureKind, FeatureSpec, ModelSpec, TargetSpec, Task, CategoryStats
>>> spec = ModelSpec(Task.CLASSIFICATION, TargetSpec("y", (0, 1)), (
...     FeatureSpec("age", optional=True),
...     FeatureSpec("city", FeatureKind.CATEGORICAL, stats=CategoryStats(3, 0, (("Oslo", 2), ("Rome", 1))))))
>>> enc = RowEncoder(spec)
>>> enc.columns
('age', 'age__missing', 'city=Oslo', 'city=Rome', 'city=__unknown__')
>>> enc.encode({"age": None, "city": "Lima"})
{'age': 0.0, 'age__missing': 1.0, 'city=Oslo': 0.0, 'city=Rome': 0.0, 'city=__unknown__': 1.0}
>>> RowEncoder(spec, Encoding.NATIVE).encode({"age": 40.0, "city": "Rome"})
{'age': 40.0, 'age__missing': 0.0, 'city': 'Rome'}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum

from training.spec import FeatureKind, FeatureSpec, ModelSpec, NumericStats, SpecError, Value

UNKNOWN = "__unknown__"
MISSING = "__missing__"


class Encoding(StrEnum):
    DENSE = "dense"
    NATIVE = "native"


Part = Callable[[Mapping[str, Value], dict], None]


class RowEncoder:
    """Encodes validated rows of one spec; see the module docstring. Pickles with its learner.

    ``text``: whether the model behind reads text (strings); False refuses a spec with text."""

    def __init__(self, spec: ModelSpec, style: Encoding = Encoding.DENSE, text: bool = False) -> None:
        if not text and spec.text_features:
            raise SpecError(
                f"text feature(s) {list(spec.text_features)[:10]}: this learner reads numbers, categories and "
                "booleans only; give text to a River pipeline with a text transformer (e.g. "
                "feature_extraction.TFIDF(on=...)) as a candidate by import path, or declare the column "
                "categorical (--categorical) if its values are a few labels")
        self.spec = spec
        self.style = style
        self.identity = spec.numeric_only
        columns: list[str] = []
        for f in spec.features:
            columns.extend(_columns(f, style))
        #: output names, in output order (the dense layout networks size their input from)
        self.columns: tuple[str, ...] = tuple(columns)

    @property
    def width(self) -> int:
        return len(self.columns)

    def encode(self, row: Mapping[str, Value]) -> dict:
        """The encoded row (the row itself for a numeric-only spec)."""
        if self.identity:
            return row  # type: ignore[return-value]
        out: dict = {}
        for part in self._parts():
            part(row, out)
        return out

    def vector(self, row: Mapping[str, Value]) -> list[float]:
        """Dense values in `columns` order (for networks)."""
        if self.identity:
            return [row[n] for n in self.spec.feature_names]  # type: ignore[misc]
        return list(self.encode(row).values())

    # Parts are closures over the spec; they are rebuilt lazily (and not pickled) so a
    # snapshot holds only the spec and the style.
    def _parts(self) -> tuple[Part, ...]:
        parts = self.__dict__.get("_cached_parts")
        if parts is None:
            parts = tuple(_part(f, self.style) for f in self.spec.features)
            self.__dict__["_cached_parts"] = parts
        return parts

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_cached_parts", None)
        return state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RowEncoder) and (self.spec, self.style) == (other.spec, other.style)

    def __hash__(self) -> int:
        return hash((self.style, self.columns))


def _columns(f: FeatureSpec, style: Encoding) -> list[str]:
    indicator = [f"{f.name}__missing"] if f.optional else []
    if f.kind is FeatureKind.TENSOR:
        return [f"{f.name}[{i}]" for i in range(f.size)] + indicator
    if f.kind is FeatureKind.TEXT:
        return [f.name]
    if f.kind is FeatureKind.CATEGORICAL:
        if style is Encoding.NATIVE:
            return [f.name]
        return [f"{f.name}={c}" for c in f.categories] + [f"{f.name}={UNKNOWN}"] + indicator
    return [f.name] + indicator


def _part(f: FeatureSpec, style: Encoding) -> Part:
    name, optional = f.name, f.optional
    indicator = f"{name}__missing"
    if f.kind is FeatureKind.NUMERIC:
        fill = f.stats.mean if isinstance(f.stats, NumericStats) and f.stats.count else 0.0

        def numeric(row: Mapping[str, Value], out: dict) -> None:
            v = row.get(name)
            if optional:
                out[name] = fill if v is None else v
                out[indicator] = 1.0 if v is None else 0.0
            else:
                out[name] = v
        return numeric
    if f.kind is FeatureKind.TENSOR:
        names = [f"{name}[{i}]" for i in range(f.size)]
        zeros = [0.0] * f.size

        def tensor(row: Mapping[str, Value], out: dict) -> None:
            v = row.get(name)
            out.update(zip(names, zeros if v is None else v, strict=True))  # type: ignore[arg-type]
            if optional:
                out[indicator] = 1.0 if v is None else 0.0
        return tensor
    if f.kind is FeatureKind.TEXT:
        def text(row: Mapping[str, Value], out: dict) -> None:
            v = row.get(name)
            out[name] = "" if v is None else v
        return text
    if f.kind is FeatureKind.BOOLEAN:
        def boolean(row: Mapping[str, Value], out: dict) -> None:
            v = row.get(name)
            out[name] = 1.0 if v else 0.0
            if optional:
                out[indicator] = 1.0 if v is None else 0.0
        return boolean
    if style is Encoding.NATIVE:
        def nominal(row: Mapping[str, Value], out: dict) -> None:
            v = row.get(name)
            out[name] = MISSING if v is None else v
        return nominal
    slots = {c: f"{name}={c}" for c in f.categories}
    zeros = dict.fromkeys([*slots.values(), f"{name}={UNKNOWN}"], 0.0)
    unknown = f"{name}={UNKNOWN}"

    def one_hot(row: Mapping[str, Value], out: dict) -> None:
        v = row.get(name)
        out.update(zeros)
        if v is None:  # only an optional feature gets here (the validator refuses the rest)
            out[indicator] = 1.0
            return
        out[slots.get(v, unknown)] = 1.0  # type: ignore[arg-type]
        if optional:
            out[indicator] = 0.0
    return one_hot
