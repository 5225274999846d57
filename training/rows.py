"""The one row validator: a raw row as a user has it, checked against the model's spec.

The service (``/predict``, OIP, ``/feedback``), the trainer and its fetcher (Kafka events),
bootstrap and replay all call `RowValidator`, so a row means the same thing at every door and
every refusal is worded the same way: which feature, which value, what is accepted. A
`RowError` carries a `RowProblem` that each caller maps to its own vocabulary (an HTTP 422,
a gRPC INVALID_ARGUMENT, a dead-letter reason) without parsing the message.

A valid row comes back as a fresh dict with *every* spec feature, in spec order: numbers as
``float``, categories and text as ``str``, booleans as ``bool``, a tensor as its values in a
flat list of floats (row-major: nested lists of the spec's shape, or the same values flat,
are both accepted), missing values as ``None``. An unseen
category is valid (the encoders give it an "unknown" slot). For a numeric-only spec that is
just a dict of floats, checked with one C-level pass in the usual case.

>>> from training.spec import FeatureKind, FeatureSpec, ModelSpec, TargetSpec, Task
>>> spec = ModelSpec(Task.CLASSIFICATION, TargetSpec("y", (0, 1)), (
...     FeatureSpec("age", optional=True), FeatureSpec("city", FeatureKind.CATEGORICAL)))
>>> v = RowValidator(spec)
>>> v.row({"city": "Lima"})
{'age': None, 'city': 'Lima'}
>>> v.row({"age": "31", "city": "Lima"})
Traceback (most recent call last):
...
training.rows.RowError: feature 'age' is str '31'; a numeric feature takes a finite number (or null: it may be missing)
>>> v.label(2)
Traceback (most recent call last):
...
training.rows.RowError: label 2 (int) is not a class of this model; classes are [0, 1]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from training.spec import FeatureKind, FeatureSpec, Label, ModelSpec, NumericStats, Task, Value


class RowProblem(StrEnum):
    """What was wrong with a row or a label (callers map it to a status or a reason code)."""

    NOT_A_ROW = "not_a_row"
    UNKNOWN_FEATURE = "unknown_feature"
    MISSING_FEATURE = "missing_feature"
    WRONG_TYPE = "wrong_type"
    NAN = "nan"
    INFINITY = "infinity"
    OVERSIZED = "oversized"
    WRONG_VECTOR_LENGTH = "wrong_vector_length"
    WRONG_SHAPE = "wrong_shape"
    UNKNOWN_CLASS = "unknown_class"
    WRONG_LABEL = "wrong_label"


class RowError(ValueError):
    """A row or label that cannot be used; ``feature`` is None for whole-row problems.

    ``detail`` reads after a location: ``f"{where}{detail}"`` with ``where`` such as
    ``"instance 3 "`` (serving) or ``""``."""

    def __init__(self, problem: RowProblem, detail: str, feature: str | None = None) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail
        self.feature = feature


Check = Callable[[Any], Value]


class RowValidator:
    """Checks rows and labels against one `ModelSpec`; build once per spec, call per event.

    Args:
        spec: the model's spec.
        max_features: a row with more keys than this is refused before any other work.
    """

    def __init__(self, spec: ModelSpec, max_features: int = 4096) -> None:
        self.spec = spec
        self.max_features = max_features
        self.names: tuple[str, ...] = spec.feature_names
        self._name_set = frozenset(self.names)
        #: `ModelSpec.numeric_only`, computed once (callers ask per request)
        self.numeric_only: bool = spec.numeric_only
        self._tensor = spec.tensor_input.name if spec.tensor_input is not None else None
        self._checks: tuple[tuple[str, Check], ...] = tuple((f.name, _check_for(f, spec)) for f in spec.features)
        self._required = tuple(f.name for f in spec.features if not f.optional)
        classes = spec.classes
        self._class_keys = frozenset((type(c), c) for c in classes) if classes is not None else None

    # -- rows -------------------------------------------------------------------------------

    def row(self, raw: object) -> dict[str, Value]:
        """A validated row (see the module docstring) from a mapping, or from a vector of
        values in spec order (when the whole input is one tensor feature, a list is that
        tensor); raises `RowError`."""
        if type(raw) is dict:
            if len(raw) > self.max_features:
                raise RowError(RowProblem.OVERSIZED,
                               f"row has {len(raw)} features; at most {self.max_features} are accepted")
            if self.numeric_only and raw.keys() == self._name_set and _all_numbers(raw.values()):
                # the usual numeric event: every feature, finite numbers (one C-level pass)
                return {n: float(raw[n]) for n in self.names}
            return self._mapping(raw)
        if type(raw) is list or type(raw) is tuple:
            if self._tensor is not None:  # the whole input is one tensor: the list is that tensor
                return self._mapping({self._tensor: raw})
            return self.vector(raw)
        if isinstance(raw, Mapping):
            return self.row(dict(raw))
        raise RowError(RowProblem.NOT_A_ROW,
                       f"row is {_kind(raw)}; send an object {{feature: value}} or a list of {len(self.names)} values")

    def vector(self, raw: Sequence[object]) -> dict[str, Value]:
        """A row given as values in spec order (``null`` for a missing one)."""
        names = self.names
        if len(raw) != len(names):
            raise RowError(RowProblem.WRONG_VECTOR_LENGTH,
                           f"row has {len(raw)} values; the model expects {len(names)} ({', '.join(names[:50])})")
        if self.numeric_only and _all_numbers(raw):
            return dict(zip(names, map(float, raw), strict=True))
        return self._mapping(dict(zip(names, raw, strict=True)))

    def _mapping(self, raw: dict[str, object]) -> dict[str, Value]:
        known = self._name_set
        if not raw.keys() <= known:
            unknown = [n for n in raw if n not in known]
            raise RowError(RowProblem.UNKNOWN_FEATURE,
                           f"has unknown feature(s) {unknown[:10]}; the model accepts {list(self.names)[:50]}",
                           unknown[0])
        out: dict[str, Value] = {}
        for name, check in self._checks:
            out[name] = check(raw.get(name))
        return out

    # -- labels -----------------------------------------------------------------------------

    def label(self, y: object) -> Label | float:
        """A label of the model's task: a known class (when the spec fixes them), or a
        finite number for regression."""
        if self.spec.task is Task.REGRESSION:
            if type(y) is not int and type(y) is not float:
                raise RowError(RowProblem.WRONG_LABEL,
                               f"label is {_kind(y)}; a regression model's label is a finite number")
            if not math.isfinite(y):
                raise RowError(RowProblem.NAN if y != y else RowProblem.INFINITY,
                               f"label is {y}; a regression model's label is a finite number")
            return float(y)
        if type(y) not in (str, int, bool):
            raise RowError(RowProblem.WRONG_LABEL,
                           f"label is {_kind(y)}; a classification label is a string, an integer or a boolean")
        keys = self._class_keys
        # (type, value): True is not the class 1, nor "1" the class 1
        if keys is not None and (type(y), y) not in keys:
            raise RowError(RowProblem.UNKNOWN_CLASS,
                           f"label {y!r} ({type(y).__name__}) is not a class of this model; "
                           f"classes are {list(self.spec.classes or ())}")
        return y  # type: ignore[return-value]


def typical_row(spec: ModelSpec) -> dict[str, Value]:
    """A valid raw row of ``spec`` (a warm-up, an example in a message): each numeric
    feature at its bootstrap mean (else 0), each categorical at its most frequent category,
    each boolean false, text empty, a tensor zeros."""
    raw: dict[str, Value] = {}
    for f in spec.features:
        if f.kind is FeatureKind.NUMERIC:
            raw[f.name] = f.stats.mean if isinstance(f.stats, NumericStats) and f.stats.count else 0.0
        elif f.kind is FeatureKind.CATEGORICAL:
            raw[f.name] = f.categories[0] if f.categories else ""
        elif f.kind is FeatureKind.TEXT:
            raw[f.name] = ""
        elif f.kind is FeatureKind.TENSOR:
            raw[f.name] = [0.0] * f.size
        else:
            raw[f.name] = False
    return raw


# -- per-kind checks -----------------------------------------------------------------------------


def _check_for(f: FeatureSpec, spec: ModelSpec) -> Check:
    """The check of one feature's raw value, chosen once per spec (no per-event dispatch)."""
    name, optional = f.name, f.optional
    or_null = " (or null: it may be missing)" if optional else ""

    def missing() -> None:
        if not optional:
            raise RowError(RowProblem.MISSING_FEATURE,
                           f"lacks feature {name!r}, which may not be missing (the spec marks it required)", name)
        return None

    if f.kind is FeatureKind.NUMERIC:
        def numeric(v: object) -> Value:
            t = type(v)
            if t is float:
                if v != v:  # NaN: a missing cell in many tools, but JSON cannot say so; be explicit
                    raise RowError(RowProblem.NAN, f"feature {name!r} is NaN; send null for a missing value"
                                   if optional else f"feature {name!r} is NaN; features must be finite numbers", name)
                if v in (math.inf, -math.inf):
                    raise RowError(RowProblem.INFINITY, f"feature {name!r} is {v}; features must be finite numbers", name)
                return v
            if t is int:
                try:
                    return float(v)
                except OverflowError:
                    raise RowError(RowProblem.INFINITY, f"feature {name!r} is an integer beyond float range", name) from None
            if v is None:
                return missing()
            raise RowError(RowProblem.WRONG_TYPE,
                           f"feature {name!r} is {_kind(v)}; a numeric feature takes a finite number{or_null}", name)
        return numeric

    if f.kind is FeatureKind.CATEGORICAL:
        limit = spec.max_category_length

        def categorical(v: object) -> Value:
            t = type(v)
            if t is str:
                if len(v) > limit:
                    raise RowError(RowProblem.OVERSIZED,
                                   f"feature {name!r} is a string of {len(v)} characters; at most {limit} are accepted", name)
                return v
            if t is int or t is bool:  # integer codes are categories by their text
                return str(v)
            if t is float and v == v and v not in (math.inf, -math.inf):
                # a code read as a number (a CSV cell, a JSON 2000.0): "2000", like the integer
                return str(int(v)) if v.is_integer() else repr(v)
            if v is None:
                return missing()
            raise RowError(RowProblem.WRONG_TYPE,
                           f"feature {name!r} is {_kind(v)}; a categorical feature takes a string{or_null}", name)
        return categorical

    if f.kind is FeatureKind.TEXT:
        text_limit = spec.max_text_length

        def text(v: object) -> Value:
            if type(v) is str:
                if len(v) > text_limit:
                    raise RowError(RowProblem.OVERSIZED, f"feature {name!r} is a text of {len(v)} characters; "
                                   f"at most {text_limit} are accepted", name)
                return v
            if v is None:
                return missing()
            raise RowError(RowProblem.WRONG_TYPE,
                           f"feature {name!r} is {_kind(v)}; a text feature takes a string{or_null}", name)
        return text

    if f.kind is FeatureKind.TENSOR:
        return _tensor_check(f, missing, or_null)

    def boolean(v: object) -> Value:
        if type(v) is bool:
            return v
        if type(v) is int and v in (0, 1):
            return bool(v)
        if v is None:
            return missing()
        raise RowError(RowProblem.WRONG_TYPE,
                       f"feature {name!r} is {_kind(v)}; a boolean feature takes true or false (or 0/1){or_null}", name)
    return boolean


def _tensor_check(f: FeatureSpec, missing: Callable[[], None], or_null: str) -> Check:
    """A tensor's values: nested lists of exactly the spec's shape, or its values flat."""
    name, shape, size = f.name, f.shape, f.size
    accepted = f"nested lists of shape {list(shape)} or {size} numbers"

    def tensor(v: object) -> Value:
        if type(v) is not list:
            if v is None:
                return missing()
            raise RowError(RowProblem.WRONG_TYPE, f"feature {name!r} is {_kind(v)}; a tensor feature takes "
                           f"{accepted}{or_null}", name)
        flat = v if not v or type(v[0]) is not list else _flatten_shaped(v, shape, name)
        if len(flat) != size:
            raise RowError(RowProblem.WRONG_SHAPE, f"feature {name!r} has {len(flat)} values; the model takes "
                           f"{accepted}", name)
        if not _all_numbers(flat):
            bad = next((x for x in flat if type(x) is not int and type(x) is not float), _NOT_FOUND)
            if bad is not _NOT_FOUND:
                raise RowError(RowProblem.WRONG_TYPE, f"feature {name!r} holds {_kind(bad)}; a tensor holds numbers",
                               name)
            raise RowError(RowProblem.NAN, f"feature {name!r} holds NaN or infinity; a tensor holds finite numbers",
                           name)
        return [float(x) for x in flat]
    return tensor


def _flatten_shaped(v: list, shape: tuple[int, ...], name: str) -> list:
    """Nested lists checked against ``shape`` level by level, flattened row-major."""
    level: list = [v]
    for depth, dim in enumerate(shape):
        nxt: list = []
        for part in level:
            if type(part) is not list or len(part) != dim:
                got = f"a list of {len(part)}" if type(part) is list else _kind(part)
                raise RowError(RowProblem.WRONG_SHAPE, f"feature {name!r} has {got} at depth {depth}; the model "
                               f"takes nested lists of shape {list(shape)} (or {math.prod(shape)} numbers flat)", name)
            nxt.extend(part)
        level = nxt
    return level


_NUMBER_TYPES = frozenset((int, float))
_NOT_FOUND = object()


def _all_numbers(values: Any) -> bool:
    """True when every value is an int or float (not a bool) and all are finite: two
    C-level passes. False sends the row to the per-feature checks, which name the culprit."""
    try:
        return _NUMBER_TYPES.issuperset(map(type, values)) and math.isfinite(sum(values))
    except OverflowError:
        return False


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "str", type(None): "null", bool: "a boolean"}
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{names.get(type(value), type(value).__name__)} {text}"
