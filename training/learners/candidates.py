"""Default candidate learners: the models bootstrap trains and the trainer runs side by side.

Each factory returns a fresh, untrained learner; hyperparameters are explicit arguments so a
setting or a benchmark can change them. A factory that declares a ``spec`` parameter gets
the model's `training.spec.ModelSpec` (and ``n_inputs`` / ``n_outputs``: the dense encoded
width and the number of classes, or 1 for regression, when it declares those), so every
learner of a model encodes the spec's raw rows itself. The three River defaults span the usual trade-off:
a linear model (fast, stable), a Hoeffding Adaptive Tree (non-linear, adapts to drift by
itself) and a small Adaptive Random Forest (most accurate, slowest).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from river import forest, linear_model, multiclass, optim, preprocessing, tree

from training.encoding import Encoding, RowEncoder
from training.learners.base import Learner
from training.learners.linear import LinearLearner
from training.learners.river import RiverLearner
from training.spec import ModelSpec, Task


def logistic_regression(spec: ModelSpec | None = None, lr: float = 0.005, l2: float = 0.0,
                        power_t: float = 0.0) -> Learner:
    """Standardised softmax logistic regression in plain Python (`training.learners.linear`):
    any labels, any number of classes, about twice as fast per event as River's pipeline
    and as accurate on the drifting streams (``lr=0.005`` on a two-class softmax is the step
    of River's one-vs-rest model at ``SGD(0.01)``; see benchmarks/README.md)."""
    return LinearLearner(lr=lr, l2=l2, power_t=power_t, name="logreg", spec=spec)


def river_logistic_regression(spec: ModelSpec | None = None, lr: float = 0.01, l2: float = 0.0) -> Learner:
    """River's standardised logistic regression, one-vs-rest so any labels work (River's
    binary model alone answers with booleans). Kept as a reference and for River pipelines."""
    model = preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(
        linear_model.LogisticRegression(optimizer=optim.SGD(lr), l2=l2)
    )
    return RiverLearner(model, name="logreg-river", spec=spec, encoding=Encoding.DENSE)


def hoeffding_adaptive_tree(spec: ModelSpec | None = None, grace_period: int = 100, delta: float = 1e-5,
                            seed: int = 0) -> Learner:
    """River's Hoeffding Adaptive Tree; categorical features split natively (nominal)."""
    model = tree.HoeffdingAdaptiveTreeClassifier(
        grace_period=grace_period, delta=delta, seed=seed, leaf_prediction="nba"
    )
    return RiverLearner(model, name="hat", spec=spec, encoding=Encoding.NATIVE)


def adaptive_random_forest(spec: ModelSpec | None = None, n_models: int = 5, seed: int = 0) -> Learner:
    """A small Adaptive Random Forest of Hoeffding trees (nominal splits on categories)."""
    model = forest.ARFClassifier(n_models=n_models, seed=seed, leaf_prediction="nba")
    return RiverLearner(model, name="arf", spec=spec, encoding=Encoding.NATIVE)


def mlp(spec: ModelSpec | None = None, **params) -> Learner:
    from training.learners.torch_mlp import TorchMLPLearner  # torch is heavy; import on demand

    return TorchMLPLearner(spec=spec, **params)


#: Name → factory, used by settings and the CLI (``--candidates logreg,hat,arf``).
CANDIDATES: dict[str, Callable[..., Learner]] = {
    "logreg": logistic_regression,
    "logreg-river": river_logistic_regression,
    "hat": hoeffding_adaptive_tree,
    "arf": adaptive_random_forest,
    "mlp": mlp,
}

DEFAULT_TABULAR = ("logreg", "hat", "arf")


def call_factory(factory: Callable[..., Learner], spec: ModelSpec | None, params: dict[str, Any]) -> Learner:
    """Call a factory with ``params`` plus whichever of ``spec``, ``n_inputs``, ``n_outputs``
    it declares (and the caller did not set)."""
    try:
        declared = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: pass only what was asked
        declared = {}
    extra: dict[str, Any] = {}
    if spec is not None:
        if "spec" in declared:
            extra["spec"] = spec
        if "n_inputs" in declared:
            extra["n_inputs"] = RowEncoder(spec, Encoding.DENSE).width
        if "n_outputs" in declared:
            extra["n_outputs"] = len(spec.classes or ()) if spec.task is Task.CLASSIFICATION else 1
    return factory(**{**extra, **params})


def build_candidates(names: str | list[str] | tuple[str, ...], spec: ModelSpec | None = None,
                     **overrides) -> list[Learner]:
    """Build learners by name for a model's ``spec`` (None: numeric rows only); ``overrides``
    maps a name to its keyword arguments. A name with a colon is an import path
    ``module:factory`` (`training.learners.factories`).

    >>> [c.name for c in build_candidates("logreg,hat")]
    ['logreg', 'hat']
    >>> build_candidates("svm")
    Traceback (most recent call last):
    ...
    ValueError: unknown candidate 'svm'; choose from arf, hat, logreg, logreg-river, mlp or an import path module:factory
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    learners = []
    for name in names:
        factory = CANDIDATES.get(name)
        if factory is None and ":" in name:  # a user's factory, by import path (allow-listed)
            from training.learners.factories import build_from_path

            learners.append(build_from_path(name, spec, overrides.get(name, {})))
            continue
        if factory is None:
            raise ValueError(f"unknown candidate {name!r}; choose from {', '.join(sorted(CANDIDATES))} "
                             "or an import path module:factory")
        learners.append(call_factory(factory, spec, overrides.get(name, {})))
    return learners
