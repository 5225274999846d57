"""Default candidate learners: the models bootstrap trains and the trainer runs side by side.

Each factory returns a fresh, untrained learner; hyperparameters are explicit arguments so a
setting or a benchmark can change them. A factory that declares a ``spec`` parameter gets
the model's `training.spec.ModelSpec` (and ``n_inputs`` / ``n_outputs``: the dense encoded
width and the number of classes, or 1 for regression, when it declares those), so every
learner of a model encodes the spec's raw rows itself. The three defaults of each task span
the usual trade-off: a linear model (fast, stable), a Hoeffding Adaptive Tree (non-linear,
adapts to drift by itself) and a small Adaptive Random Forest (most accurate, slowest).

A name means the same family for either task where that makes sense: ``hat``, ``arf`` and
``mlp`` build a classifier or a regressor from the spec's task; ``logreg`` is for
classification only and ``linear`` for regression only (see `TASKS`, `DEFAULT_CANDIDATES`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from river import forest, linear_model, multiclass, optim, preprocessing, tree

from training.encoding import Encoding, RowEncoder
from training.learners.base import Learner
from training.learners.linear import LinearLearner
from training.learners.linear_regression import LinearRegressor
from training.learners.river import RiverLearner
from training.spec import ModelSpec, Task


def logistic_regression(spec: ModelSpec | None = None, lr: float = 0.005, l2: float = 0.0,
                        power_t: float = 0.0) -> Learner:
    """Standardised softmax logistic regression in plain Python (`training.learners.linear`):
    any labels, any number of classes, about twice as fast per event as River's pipeline
    and as accurate on the drifting streams (``lr=0.005`` on a two-class softmax is the step
    of River's one-vs-rest model at ``SGD(0.01)``; see benchmarks/README.md)."""
    return LinearLearner(lr=lr, l2=l2, power_t=power_t, name="logreg", spec=_classification(spec, "logreg"))


def river_logistic_regression(spec: ModelSpec | None = None, lr: float = 0.01, l2: float = 0.0) -> Learner:
    """River's standardised logistic regression, one-vs-rest so any labels work (River's
    binary model alone answers with booleans). Kept as a reference and for River pipelines."""
    model = preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(
        linear_model.LogisticRegression(optimizer=optim.SGD(lr), l2=l2)
    )
    return RiverLearner(model, name="logreg-river", spec=_classification(spec, "logreg-river"),
                        encoding=Encoding.DENSE)


def linear_regression(spec: ModelSpec | None = None, lr: float = 0.01, l2: float = 0.0,
                      power_t: float = 0.0) -> Learner:
    """Standardised online linear regression in plain Python (`training.learners.linear_regression`):
    inputs and target standardised online, SGD on the squared error."""
    return LinearRegressor(lr=lr, l2=l2, power_t=power_t, name="linear", spec=_regression(spec, "linear"))


def river_linear_regression(spec: ModelSpec | None = None, lr: float = 0.01, l2: float = 0.0) -> Learner:
    """River's ``StandardScaler | LinearRegression``; a reference for the plain-Python one."""
    model = preprocessing.StandardScaler() | linear_model.LinearRegression(optimizer=optim.SGD(lr), l2=l2)
    return RiverLearner(model, name="linear-river", spec=_regression(spec, "linear-river"),
                        encoding=Encoding.DENSE)


def hoeffding_adaptive_tree(spec: ModelSpec | None = None, grace_period: int = 100, delta: float = 1e-5,
                            seed: int = 0) -> Learner:
    """River's Hoeffding Adaptive Tree. Classifier: categorical features split natively
    (nominal). Regressor: linear models in the leaves where they beat the mean, so the
    input is the dense encoding (River's leaf models take numbers only)."""
    if _is_regression(spec):
        model = tree.HoeffdingAdaptiveTreeRegressor(grace_period=grace_period, delta=delta, seed=seed)
        return RiverLearner(model, name="hat", spec=spec, encoding=Encoding.DENSE)
    model = tree.HoeffdingAdaptiveTreeClassifier(
        grace_period=grace_period, delta=delta, seed=seed, leaf_prediction="nba"
    )
    return RiverLearner(model, name="hat", spec=spec, encoding=Encoding.NATIVE)


def adaptive_random_forest(spec: ModelSpec | None = None, n_models: int = 5, seed: int = 0) -> Learner:
    """A small Adaptive Random Forest of Hoeffding trees (classifier: nominal splits on
    categories; regressor: adaptive leaf models on the dense encoding)."""
    if _is_regression(spec):
        model = forest.ARFRegressor(n_models=n_models, seed=seed)
        return RiverLearner(model, name="arf", spec=spec, encoding=Encoding.DENSE)
    model = forest.ARFClassifier(n_models=n_models, seed=seed, leaf_prediction="nba")
    return RiverLearner(model, name="arf", spec=spec, encoding=Encoding.NATIVE)


def mlp(spec: ModelSpec | None = None, **params) -> Learner:
    """The PyTorch MLP: a classifier, or a regressor (MSE on the standardised target) for a
    regression spec."""
    from training.learners.torch_mlp import TorchMLPLearner, TorchMLPRegressor  # torch is heavy

    if _is_regression(spec):
        return TorchMLPRegressor(spec=spec, **params)
    return TorchMLPLearner(spec=spec, **params)


def _is_regression(spec: ModelSpec | None) -> bool:
    return spec is not None and spec.task is Task.REGRESSION


def _classification(spec: ModelSpec | None, name: str) -> ModelSpec | None:
    if _is_regression(spec):
        raise ValueError(_wrong_task(name, Task.REGRESSION))
    return spec


def _regression(spec: ModelSpec | None, name: str) -> ModelSpec | None:
    if spec is not None and spec.task is not Task.REGRESSION:
        raise ValueError(_wrong_task(name, spec.task))
    return spec


#: Name → factory, used by settings and the CLI (``--candidates logreg,hat,arf``).
CANDIDATES: dict[str, Callable[..., Learner]] = {
    "logreg": logistic_regression,
    "logreg-river": river_logistic_regression,
    "linear": linear_regression,
    "linear-river": river_linear_regression,
    "hat": hoeffding_adaptive_tree,
    "arf": adaptive_random_forest,
    "mlp": mlp,
}

_BOTH = (Task.CLASSIFICATION, Task.REGRESSION)
#: The tasks each built-in candidate serves.
TASKS: dict[str, tuple[Task, ...]] = {
    "logreg": (Task.CLASSIFICATION,), "logreg-river": (Task.CLASSIFICATION,),
    "linear": (Task.REGRESSION,), "linear-river": (Task.REGRESSION,),
    "hat": _BOTH, "arf": _BOTH, "mlp": _BOTH,
}

#: What bootstrap, replay and the trainer train when no candidates are named.
DEFAULT_CANDIDATES: dict[Task, tuple[str, ...]] = {
    Task.CLASSIFICATION: ("logreg", "hat", "arf"),
    Task.REGRESSION: ("linear", "hat", "arf"),
}

DEFAULT_TABULAR = DEFAULT_CANDIDATES[Task.CLASSIFICATION]


def candidates_for(task: Task) -> list[str]:
    """Built-in candidate names that serve ``task``.

    >>> candidates_for(Task.REGRESSION)
    ['arf', 'hat', 'linear', 'linear-river', 'mlp']
    """
    return sorted(name for name, tasks in TASKS.items() if task in tasks)


def _wrong_task(name: str, task: Task) -> str:
    return (f"candidate {name!r} does not do {task.value}; {task.value} candidates are "
            f"{', '.join(candidates_for(task))}")


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
    """Build learners by name for a model's ``spec`` (None: numeric rows, classification);
    ``overrides`` maps a name to its keyword arguments. No names: the spec's task's
    `DEFAULT_CANDIDATES`. A name of another task is refused, naming the right ones. A name
    with a colon is an import path ``module:factory`` (`training.learners.factories`).

    >>> [c.name for c in build_candidates("logreg,hat")]
    ['logreg', 'hat']
    >>> from training.spec import numeric_spec
    >>> regression = numeric_spec(["a"], task=Task.REGRESSION)
    >>> [(c.name, c.task.value) for c in build_candidates("", regression)]
    [('linear', 'regression'), ('hat', 'regression'), ('arf', 'regression')]
    >>> build_candidates("logreg", regression)
    Traceback (most recent call last):
    ...
    ValueError: candidate 'logreg' does not do regression; regression candidates are arf, hat, linear, linear-river, mlp
    >>> build_candidates("svm")
    Traceback (most recent call last):
    ...
    ValueError: unknown candidate 'svm'; choose from arf, hat, linear, linear-river, logreg, logreg-river, mlp or an import path module:factory
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    task = spec.task if spec is not None else Task.CLASSIFICATION
    learners = []
    for name in names or DEFAULT_CANDIDATES[task]:
        factory = CANDIDATES.get(name)
        if factory is None and ":" in name:  # a user's factory, by import path (allow-listed)
            from training.learners.factories import build_from_path

            learners.append(build_from_path(name, spec, overrides.get(name, {})))
            continue
        if factory is None:
            raise ValueError(f"unknown candidate {name!r}; choose from {', '.join(sorted(CANDIDATES))} "
                             "or an import path module:factory")
        if task not in TASKS[name]:
            raise ValueError(_wrong_task(name, task))
        learners.append(call_factory(factory, spec, overrides.get(name, {})))
    return learners
