"""The one protocol every learner speaks, River pipeline or PyTorch network.

Why a protocol of our own rather than River's base class: the trainer, the evaluator, the
registry and the service must treat a River pipeline and a PyTorch network the same way —
predict before learning, clone an untrained twin, snapshot to bytes and back. River's
`Classifier` gives the first two; the snapshot format differs per family (signed pickle for
River, a `weights_only`-loadable archive for PyTorch), so it is part of this protocol.

A learner of a model built from a `training.spec.ModelSpec` takes the spec's raw rows (numbers,
strings, booleans, None for missing, as `training.rows.RowValidator` returns them) and owns
their encoding (`training.encoding`); a learner without a spec takes numeric
``dict[str, float]`` rows. Labels are ``str``, ``int`` or ``bool`` for classification and
``float`` for regression.

Optional capabilities are named `typing.Protocol`s (`RowsPredictor`, `OfflineFitter`,
`DeviceSnapshot`), checked once where a learner is loaded, not looked up by ``hasattr``.
"""

from __future__ import annotations

import abc
import math
import pickle
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from training.spec import ModelSpec, Task

if TYPE_CHECKING:
    import numpy as np

Label = str | int | bool
Features = Mapping[str, Any]


class InvalidFeaturesError(ValueError):
    """Raised when an input cannot be learned from or predicted on (NaN, infinity, non-number).

    The message names the feature and the value so a caller can act on it.
    """


def check_features(x: Features) -> None:
    """Refuse non-finite or non-numeric feature values with a clear error.

    Called on every event by every learner, so the common case is one ``sum``: it raises
    for non-numbers and is NaN or infinite when any value is. Only a failing event pays for
    the loop that names the culprit.

    >>> check_features({"a": 1.0, "b": 2})
    >>> check_features({"a": float("nan")})
    Traceback (most recent call last):
    ...
    training.learners.base.InvalidFeaturesError: feature 'a' is nan; features must be finite numbers
    >>> check_features({"a": "3"})
    Traceback (most recent call last):
    ...
    training.learners.base.InvalidFeaturesError: feature 'a' is str '3'; features must be finite numbers
    """
    try:
        if math.isfinite(sum(x.values())):
            return
    except (TypeError, OverflowError):
        pass
    for name, value in x.items():
        if not isinstance(value, int | float):
            raise InvalidFeaturesError(
                f"feature {name!r} is {type(value).__name__} {value!r}; features must be finite numbers"
            )
        if not math.isfinite(value):
            raise InvalidFeaturesError(
                f"feature {name!r} is {value!r}; features must be finite numbers"
            )
    # finite values whose sum overflows (e.g. 1e308 + 1e308) are fine


class Learner(abc.ABC):
    """An incremental classifier: predict first, then learn (test-then-train).

    Subclasses keep hyperparameters exactly as constructor arguments (see `params`) and
    learned state elsewhere, so `clone()` yields an untrained twin.
    """

    #: Snapshot format tag stored by the registry: "pickle" (HMAC-signed before loading)
    #: or "torch" (loaded with ``torch.load(weights_only=True)``).
    snapshot_format: ClassVar[str] = "pickle"

    #: Short family name used in metrics labels and reports ("logreg", "hat", "arf", "mlp").
    name: str

    #: The model's spec when the learner was built from one (its rows are the spec's raw
    #: rows); None for a learner of numeric rows only.
    spec: ModelSpec | None = None

    @property
    def task(self) -> Task:
        """Classification unless the learner's spec says regression (regressors override)."""
        return self.spec.task if self.spec is not None else Task.CLASSIFICATION

    def predict_proba_one(self, x: Features) -> dict[Label, float]:
        """Class probabilities for one event; empty dict before the first `learn_one`.
        Classifiers implement it; a regressor implements `predict_one` instead."""
        raise TypeError(f"{type(self).__name__} is a regressor: it has no class probabilities")

    @abc.abstractmethod
    def learn_one(self, x: Features, y: Label) -> None:
        """Update on one labeled event."""

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """Constructor arguments, enough to rebuild an untrained twin."""

    @abc.abstractmethod
    def clone(self) -> Learner:
        """A fresh, untrained learner with the same hyperparameters."""

    @abc.abstractmethod
    def to_bytes(self) -> bytes:
        """Serialize learned state and hyperparameters (see `snapshot_format`)."""

    @classmethod
    @abc.abstractmethod
    def from_bytes(cls, data: bytes) -> Learner:
        """Inverse of `to_bytes`. Callers verify integrity/signature before calling."""

    # -- derived helpers; subclasses may override with faster batch forms --------------------

    def predict_one(self, x: Features) -> Label | float | None:
        """The predicted class (classifiers) or value (regressors override this); None
        before the first `learn_one`."""
        proba = self.predict_proba_one(x)
        if not proba:
            return None
        return max(proba, key=proba.__getitem__)

    def predict_proba_many(self, xs: Sequence[Features]) -> list[dict[Label, float]]:
        """Batch form used by serving; the default loops over `predict_proba_one`."""
        return [self.predict_proba_one(x) for x in xs]

    def predict_many(self, xs: Sequence[Features]) -> list[Label | float | None]:
        """Batch form of `predict_one` (regressors' serving path)."""
        return [self.predict_one(x) for x in xs]

    def learn_many(self, xs: Sequence[Features], ys: Sequence[Label]) -> None:
        """Batch form used by offline training; the default loops over `learn_one`."""
        for x, y in zip(xs, ys, strict=True):
            self.learn_one(x, y)

    @property
    def classes(self) -> list[Label]:
        """Labels seen so far (or fixed at construction)."""
        return []

    @property
    def n_features_in(self) -> list[str]:
        """Raw feature names the learner accepts: its spec's, else those it has seen."""
        return list(self.spec.feature_names) if self.spec is not None else []

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


class PickleSnapshot:
    """`to_bytes` / `from_bytes` as a pickle of the whole learner, for learners whose state is
    plain Python or River objects. Mix in before `Learner`. The registry verifies the
    artifact's HMAC before `from_bytes` runs; a snapshot of another class is refused."""

    snapshot_format: ClassVar[str] = "pickle"

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> Any:
        obj = pickle.loads(data)  # noqa: S301 - the registry verifies the HMAC before this call
        if not isinstance(obj, cls):
            raise TypeError(f"snapshot holds {type(obj).__name__}, expected {cls.__name__}")
        return obj


# -- optional capabilities, named -------------------------------------------------------------


@runtime_checkable
class RowsPredictor(Protocol):
    """Serving's fast path: numeric ``[n, n_features]`` rows (spec feature order) in,
    ``[n, n_classes]`` probabilities in `Learner.classes` order out, one vectorised call."""

    def predict_proba_rows(self, rows: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class OfflineFitter(Protocol):
    """Bootstrap trains it in epochs with early stopping instead of one online pass."""

    def fit_offline(self, X_train: Sequence[Features], y_train: Sequence[Any], X_val: Sequence[Features],
                    y_val: Sequence[Any], *, max_epochs: int = 50, patience: int = 5) -> dict[str, Any]: ...


@runtime_checkable
class DeviceSnapshot(Protocol):
    """A snapshot that can be restored onto a chosen device (``"cpu"``, ``"cuda"``)."""

    @classmethod
    def from_bytes(cls, data: bytes, *, device: str | None = None) -> Learner: ...
