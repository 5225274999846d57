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

from training.encoding import Encoding, RowEncoder
from training.learners.base import Features, Label, Learner, PickleSnapshot, check_features
from training.spec import ModelSpec


class SpecEncoder(river_base.Transformer):
    """`training.encoding.RowEncoder` as the first step of a River pipeline.

    >>> from training.spec import numeric_spec
    >>> SpecEncoder(numeric_spec(["a"])).transform_one({"a": 1.0})
    {'a': 1.0}
    """

    def __init__(self, spec: ModelSpec, style: str = Encoding.DENSE.value) -> None:
        self.spec = spec
        self.style = style
        self._encoder = RowEncoder(spec, Encoding(style))

    def transform_one(self, x: dict) -> dict:
        return self._encoder.encode(x)


class RiverLearner(PickleSnapshot, Learner):
    """Wrap any River classifier or pipeline.

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
            SpecEncoder(spec, self.encoding.value) | estimator)
        self._check = spec is None or spec.numeric_only  # raw rows are validated upstream
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

    def predict_proba_one(self, x: Features) -> dict[Label, float]:
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
        self.__dict__.update(state)
