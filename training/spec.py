"""The model spec: what one model predicts and what a row of its input may hold.

Every model has exactly one spec, written by bootstrap and stored with every registry
version; the champion and every challenger share it. Everything that touches a row reads it:
the one validator (`training.rows`), the learners' encoders (`training.encoding`), the
service's OIP metadata and drift reference, the dashboards' task-aware panels. Because the
spec, not a learner, decides what a client sends, a promotion can never change the input a
model accepts.

A row is a mapping from feature name to a raw value as the user has it: a number for a
``numeric`` feature, a string for a ``categorical`` one, a boolean for a ``boolean`` one,
free text (a string) for a ``text`` one, numbers of a fixed shape (nested lists, e.g. an
image ``[C][H][W]``, or the same values flat) for a ``tensor`` one, and ``None`` (or an
absent key) for a missing value where the feature is ``optional``.

Text and tensors are the inputs of a user's own model (a River pipeline with a text
transformer, a ``torch.nn.Module``): the built-in learners read numbers, categories and
booleans only, and say so when given a spec with text.

>>> from training.spec_inference import infer_spec
>>> spec = infer_spec(
...     [{"age": 31, "city": "Oslo", "vip": True}, {"age": None, "city": "Rome", "vip": False}],
...     [1, 0], target="churn")
>>> spec.task, [(f.name, f.kind.value, f.optional) for f in spec.features]
(<Task.CLASSIFICATION: 'classification'>, [('age', 'numeric', True), ('city', 'categorical', False), ('vip', 'boolean', False)])
>>> spec.classes
(0, 1)
>>> ModelSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

Label = str | int | bool
#: A raw feature value: a number, a category or text (string), a boolean, a tensor's values
#: (flat, row-major, after validation), or None for missing.
Value = float | int | str | bool | list[float] | None


class Task(StrEnum):
    """What the model predicts: a class (with probabilities) or a number."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class FeatureKind(StrEnum):
    """How a feature's values are read and encoded."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    #: free text, kept as a string for a model that reads text (BYTES in OIP)
    TEXT = "text"
    #: numbers of a fixed per-row shape, e.g. an image [1, 8, 8] (FP32 in OIP)
    TENSOR = "tensor"


#: Categories kept per feature in the spec (the most frequent); the rest share the encoders'
#: "unknown" slot, like a category first seen in production.
MAX_CATEGORIES = 50
#: A numeric target with more distinct values than this (or any fractional value) is inferred
#: to be a regression target.
MAX_CLASSES_INFERRED = 20


class SpecError(ValueError):
    """A spec that cannot be built or read; the message says which field and why."""


@dataclass(frozen=True)
class NumericStats:
    """What bootstrap saw of a numeric feature (or a regression target)."""

    count: int
    missing: int = 0
    min: float = 0.0
    max: float = 0.0
    mean: float = 0.0
    std: float = 0.0

    @classmethod
    def of(cls, values: Sequence[float], missing: int = 0) -> NumericStats:
        if not values:
            return cls(0, missing)
        n = len(values)
        mean = math.fsum(values) / n
        var = math.fsum((v - mean) ** 2 for v in values) / n
        return cls(n, missing, float(min(values)), float(max(values)), mean, math.sqrt(var))


@dataclass(frozen=True)
class CategoryStats:
    """Category frequencies bootstrap saw (most frequent first, at most `MAX_CATEGORIES`);
    ``other`` counts the values of the categories left out."""

    count: int
    missing: int = 0
    frequencies: tuple[tuple[str, int], ...] = ()
    other: int = 0

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.frequencies)


@dataclass(frozen=True)
class FeatureSpec:
    """One input column: its name, kind, whether it may be missing, what bootstrap saw;
    ``shape`` is a tensor feature's per-row shape (e.g. ``(1, 8, 8)``), empty otherwise.

    >>> FeatureSpec("image", FeatureKind.TENSOR, shape=(1, 8, 8)).size
    64
    """

    name: str
    kind: FeatureKind = FeatureKind.NUMERIC
    optional: bool = False
    stats: NumericStats | CategoryStats | None = None
    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind is FeatureKind.TENSOR:
            if not self.shape or not all(type(d) is int and d > 0 for d in self.shape):
                raise SpecError(f"tensor feature {self.name!r} needs a shape of positive integers "
                                f"(e.g. [1, 8, 8]); got {list(self.shape)}")
        elif self.shape:
            raise SpecError(f"feature {self.name!r} is {self.kind.value}; only a tensor feature has a shape")

    @property
    def size(self) -> int:
        """Values per row: the product of a tensor's shape, 1 for every other kind."""
        return math.prod(self.shape) if self.shape else 1

    @property
    def categories(self) -> tuple[str, ...]:
        """Known categories of a categorical feature (empty otherwise)."""
        return self.stats.categories if isinstance(self.stats, CategoryStats) else ()

    @property
    def missing_rate(self) -> float:
        s = self.stats
        return s.missing / (s.count + s.missing) if s is not None and s.count + s.missing else 0.0


@dataclass(frozen=True)
class TargetSpec:
    """The predicted column: classes for classification (None = not fixed), stats for regression."""

    name: str = "label"
    classes: tuple[Label, ...] | None = None
    stats: NumericStats | None = None


@dataclass(frozen=True)
class ModelSpec:
    """Task, target and features of one model; see the module docstring."""

    task: Task
    target: TargetSpec
    features: tuple[FeatureSpec, ...]
    #: longest accepted categorical value, in characters (a longer one is refused as oversized)
    max_category_length: int = 256
    #: longest accepted text value, in characters
    max_text_length: int = 100_000
    _index: dict[str, FeatureSpec] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_text_length < 1:
            raise SpecError(f"max_text_length must be a positive integer; got {self.max_text_length!r}")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise SpecError(f"feature names must be unique; repeated: {dupes}")
        if not names:
            raise SpecError("a model needs at least one feature")
        if self.target.name in names:
            raise SpecError(f"target {self.target.name!r} is also listed as a feature")
        self._index.update((f.name, f) for f in self.features)

    # -- views ------------------------------------------------------------------------------

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def classes(self) -> tuple[Label, ...] | None:
        return self.target.classes

    @property
    def is_classification(self) -> bool:
        return self.task is Task.CLASSIFICATION

    @property
    def numeric_only(self) -> bool:
        """Every feature numeric and required: rows are plain vectors (the fast paths, and
        the single-tensor form of the Open Inference Protocol)."""
        return all(f.kind is FeatureKind.NUMERIC and not f.optional for f in self.features)

    @property
    def text_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.kind is FeatureKind.TEXT)

    @property
    def tensor_input(self) -> FeatureSpec | None:
        """The feature when the whole input is one tensor (a network then gets the batch as
        ``[n, *shape]``); None otherwise."""
        f = self.features[0]
        return f if len(self.features) == 1 and f.kind is FeatureKind.TENSOR else None

    def feature(self, name: str) -> FeatureSpec:
        try:
            return self._index[name]
        except KeyError:
            raise SpecError(f"no feature {name!r}; features are {list(self.feature_names)[:50]}") from None

    def with_classes(self, classes: Iterable[Label]) -> ModelSpec:
        return replace(self, target=replace(self.target, classes=tuple(classes)))

    def describe(self) -> str:
        """A human-readable summary (bootstrap prints it)."""
        lines = [f"task {self.task.value}, target {self.target.name!r}"
                 + (f", classes {list(self.classes)}" if self.classes is not None else "")]
        for f in self.features:
            opt = ", may be missing" if f.optional else ""
            s = f.stats
            if isinstance(s, NumericStats) and s.count:
                seen = f"range {s.min:g}..{s.max:g}, mean {s.mean:.4g}"
            elif f.kind is FeatureKind.TENSOR:
                seen = f"shape {list(f.shape)}"
            elif isinstance(s, CategoryStats):
                top = ", ".join(f"{c} ({k})" for c, k in s.frequencies[:4])
                more = len(s.frequencies) - 4
                seen = f"{len(s.frequencies)} categories: {top}" + (f", +{more} more" if more > 0 else "")
            else:
                seen = ""
            missing = f", {f.missing_rate:.1%} missing" if f.missing_rate else ""
            lines.append(f"  {f.name:<24} {f.kind.value:<12} {seen}{missing}{opt}")
        return "\n".join(lines)

    # -- persistence ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        def stats(s: NumericStats | CategoryStats | None) -> dict | None:
            if s is None:
                return None
            d = dict(s.__dict__)
            if isinstance(s, CategoryStats):
                d["frequencies"] = [list(p) for p in s.frequencies]
            return d

        return {
            "task": self.task.value,
            "target": {"name": self.target.name,
                       "classes": list(self.target.classes) if self.target.classes is not None else None,
                       "stats": stats(self.target.stats)},
            "features": [
                {"name": f.name, "kind": f.kind.value, "optional": f.optional, "stats": stats(f.stats)}
                | ({"shape": list(f.shape)} if f.shape else {})
                for f in self.features
            ],
            "max_category_length": self.max_category_length,
            "max_text_length": self.max_text_length,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Inverse of `to_dict`; also reads a hand-written spec file, where only ``task``,
        ``target`` (a name or a mapping) and ``features`` (names with ``kind``, ``optional``
        and, for a tensor, ``shape``) are needed."""
        if not isinstance(data, Mapping):
            raise SpecError(f"a spec is a mapping with task, target and features; got {type(data).__name__}")
        task = _enum(Task, data.get("task", "classification"), "task")
        target_raw = data.get("target", "label")
        if isinstance(target_raw, str):
            target_raw = {"name": target_raw}
        if not isinstance(target_raw, Mapping) or not isinstance(target_raw.get("name", "label"), str):
            raise SpecError(f"target must be a column name or {{name, classes}}; got {target_raw!r}")
        classes = target_raw.get("classes")
        if classes is not None and (not isinstance(classes, list) or not all(_is_label(c) for c in classes)):
            raise SpecError(f"target classes must be a list of strings, integers or booleans; got {classes!r}")
        target = TargetSpec(target_raw.get("name", "label"), tuple(classes) if classes is not None else None,
                            _numeric_stats(target_raw.get("stats")))
        raw_features = data.get("features")
        if not isinstance(raw_features, list) or not raw_features:
            raise SpecError("features must be a non-empty list of {name, kind, optional}")
        features = []
        for i, f in enumerate(raw_features):
            if isinstance(f, str):
                f = {"name": f}
            if not isinstance(f, Mapping) or not isinstance(f.get("name"), str) or not f["name"]:
                raise SpecError(f"features[{i}] must have a non-empty string 'name'; got {f!r}")
            kind = _enum(FeatureKind, f.get("kind", "numeric"), f"features[{i}].kind")
            optional = f.get("optional", False)
            if not isinstance(optional, bool):
                raise SpecError(f"features[{i}].optional must be true or false; got {optional!r}")
            raw_stats = f.get("stats")
            stats = _category_stats(raw_stats) if kind is FeatureKind.CATEGORICAL else (
                _numeric_stats(raw_stats) if kind is FeatureKind.NUMERIC else None)
            shape = f.get("shape", [])
            if not isinstance(shape, list | tuple) or not all(type(d) is int for d in shape):
                raise SpecError(f"features[{i}].shape must be a list of integers; got {shape!r}")
            features.append(FeatureSpec(f["name"], kind, optional, stats, tuple(shape)))
        lengths = []
        for key, default in (("max_category_length", 256), ("max_text_length", 100_000)):
            length = data.get(key, default)
            if type(length) is not int or length < 1:
                raise SpecError(f"{key} must be a positive integer; got {length!r}")
            lengths.append(length)
        return cls(task, target, tuple(features), *lengths)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def load(cls, path: str | Path) -> ModelSpec:
        """Read a spec file: YAML (``.yaml``/``.yml``) or JSON."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise SpecError(f"cannot read spec file {path}: {e.strerror or e}") from None
        try:
            if path.suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as e:  # noqa: BLE001 - YAML and JSON raise different types
            raise SpecError(f"spec file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {e}") from None
        return cls.from_dict(data)


def numeric_spec(names: Sequence[str], classes: Sequence[Label] | None = None,
                 task: Task = Task.CLASSIFICATION, target: str = "label") -> ModelSpec:
    """A spec of required numeric features only (what older registry versions implied).

    >>> numeric_spec(["a", "b"], [0, 1]).numeric_only
    True
    """
    return ModelSpec(task, TargetSpec(target, tuple(classes) if classes is not None else None),
                     tuple(FeatureSpec(n) for n in names))


def _is_number(v: object) -> bool:
    return type(v) is int or type(v) is float


def _is_label(v: object) -> bool:
    return type(v) in (str, int, bool)


def _enum(cls: type[StrEnum], value: object, where: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        raise SpecError(f"{where} must be one of {[m.value for m in cls]}; got {value!r}") from None


def _numeric_stats(raw: object) -> NumericStats | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SpecError(f"numeric stats must be a mapping; got {raw!r}")
    try:
        return NumericStats(**raw)
    except TypeError as e:
        raise SpecError(f"numeric stats: {e}") from None


def _category_stats(raw: object) -> CategoryStats | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SpecError(f"category stats must be a mapping; got {raw!r}")
    try:
        freqs = tuple((str(c), int(k)) for c, k in raw.get("frequencies", ()))
        return CategoryStats(int(raw.get("count", 0)), int(raw.get("missing", 0)), freqs, int(raw.get("other", 0)))
    except (TypeError, ValueError) as e:
        raise SpecError(f"category stats: {e}") from None
