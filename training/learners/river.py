"""River classifiers behind Perennial's learner protocol.

River already speaks ``predict_proba_one / learn_one`` and ``clone()``; this adapter adds
what River leaves to the caller: input checks (NaN refused with a clear error), a stable
family name for metrics, and a snapshot format (pickle, signed by the registry).

Built with a model spec, the estimator becomes a River pipeline ``SpecEncoder | model``:
the encoder (a River transformer, so a clone carries it) turns the spec's raw rows into what
the model reads — one-hot with an unknown slot for linear models, or categories kept as
strings for River's trees, which split on nominal values themselves; missing values imputed
with a missing indicator (see `training.encoding`).
"""

from __future__ import annotations

from typing import Any

from river import base as river_base
from river import compose

from training.encoding import Encoding, RowEncoder
from training.learners.base import Features, Label, Learner, PickleSnapshot, check_features
from training.spec import ModelSpec, Task


class SpecEncoder(river_base.Transformer):
    """`training.encoding.RowEncoder` as the first step of a River pipeline.

    >>> from training.spec import numeric_spec
    >>> SpecEncoder(numeric_spec(["a"])).transform_one({"a": 1.0})
    {'a': 1.0}
    """

    def __init__(self, spec: ModelSpec, style: str = Encoding.DENSE.value, text: bool = False) -> None:
        self.spec = spec
        self.style = style
        self.text = text
        self._encoder = RowEncoder(spec, Encoding(style), text=text)

    def transform_one(self, x: dict) -> dict:
        return self._encoder.encode(x)


class RiverLearner(PickleSnapshot, Learner):
    """Wrap any River classifier or regressor, or a pipeline ending in one.

    ``reads_text``: whether the estimator reads text features itself (a user's pipeline
    with a text transformer); the built-in ones do not, so a spec with text is refused.

    A regressor (the model, or a pipeline's last step, is a River ``base.Regressor``) answers `predict_one` with a float (None before it has learned),
    has no class probabilities and no `classes`; its `task` is regression.

    >>> from river import linear_model, preprocessing
    >>> learner = RiverLearner(preprocessing.StandardScaler() | linear_model.LogisticRegression(), name="logreg")
    >>> learner.predict_proba_one({"a": 1.0})
    {}
    >>> learner.learn_one({"a": 1.0}, True); learner.learn_one({"a": -1.0}, False)
    >>> sorted(learner.predict_proba_one({"a": 1.0}))
    [False, True]
    >>> learner.clone().predict_proba_one({"a": 1.0})
    {}
    """

    reads_text = False

    def __init__(self, estimator: river_base.Classifier, name: str, spec: ModelSpec | None = None,
                 encoding: Encoding | str = Encoding.DENSE) -> None:
        """``estimator``: the River model *without* the encoder; with a ``spec`` the encoder
        is put in front of it here (so `params` and `clone` keep the two apart)."""
        self.estimator = estimator
        self.name = name
        self.spec = spec
        self.encoding = Encoding(encoding)
        # the model as it runs: encoder | estimator (the estimator alone without a spec,
        # and for a numeric-only spec, whose rows need no encoding)
        self._model = estimator if spec is None or spec.numeric_only else (
            SpecEncoder(spec, self.encoding.value, text=self.reads_text) | estimator)
        self._check = spec is None or spec.numeric_only  # raw rows are validated upstream
        self._regressor = _is_regressor(estimator)
        task = Task.REGRESSION if self._regressor else Task.CLASSIFICATION
        if spec is not None and spec.task is not task:
            raise ValueError(f"{name}: the estimator {type(estimator).__name__} is a "
                             f"{'regressor' if self._regressor else 'classifier'}, but the model's "
                             f"task is {spec.task.value}")
        if spec is not None and spec.classes:
            self._seen: set[Label] = set(spec.classes)
        else:
            self._seen = set()
        self._learned = False
        self._features: set[str] = set()

    def params(self) -> dict[str, Any]:
        return {"estimator": self.estimator.clone(), "name": self.name, "spec": self.spec,
                "encoding": self.encoding}

    def clone(self) -> RiverLearner:
        return RiverLearner(**self.params())

    @property
    def task(self) -> Task:
        return Task.REGRESSION if self._regressor else Task.CLASSIFICATION

    def predict_one(self, x: Features) -> Label | float | None:
        if not self._regressor:
            return super().predict_one(x)
        if self._check:
            check_features(x)
        if not self._learned:
            return None
        return float(self._model.predict_one(x))

    def predict_proba_one(self, x: Features) -> dict[Label, float]:
        if self._regressor:
            return super().predict_proba_one(x)  # raises: a regressor has no probabilities
        if self._check:
            check_features(x)
        if not self._learned:
            return {}
        proba = self._model.predict_proba_one(x)
        if len(proba) < len(self._seen):
            # Some River models only report classes that reached a leaf; fill the rest with 0
            # so callers always see every known class.
            proba = {c: proba.get(c, 0.0) for c in self._seen}
        return proba

    def learn_one(self, x: Features, y: Label) -> None:
        if self._check:
            check_features(x)
        if not self._regressor:
            self._seen.add(y)
        self._learned = True
        if self.spec is None and len(self._features) < len(x):
            self._features.update(x)
        self._model.learn_one(x, y)

    @property
    def classes(self) -> list[Label]:
        return sorted(self._seen, key=str)

    @property
    def n_features_in(self) -> list[str]:
        return list(self.spec.feature_names) if self.spec is not None else sorted(self._features)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # snapshots from before the model spec: the estimator ran alone
        state.setdefault("spec", None)
        state.setdefault("encoding", Encoding.DENSE)
        state.setdefault("_model", state["estimator"])
        state.setdefault("_check", True)
        state.setdefault("_learned", bool(state.get("_seen")))
        state.setdefault("_regressor", False)
        self.__dict__.update(state)


def _is_regressor(model: Any) -> bool:
    while isinstance(model, compose.Pipeline):
        model = list(model.steps.values())[-1]
    return isinstance(model, river_base.Regressor)
