"""A user's own learner, by import path: ``module:factory`` wherever a candidate name goes.

Why a factory and not a pickled object: a factory is code the operator installed and
allowed, so a registry version names it (``factory`` and ``params`` in its metadata) and a
process rebuilds the learner from it; only learned *state* travels in the artifact.

A factory is called with no arguments, or with whichever of ``spec``, ``n_inputs`` and
``n_outputs`` it declares (`training.learners.candidates.call_factory`), plus the keyword
parameters of the candidate that it declares. It returns one of:

- a River estimator or pipeline — wrapped in `ImportedRiverLearner` (the spec's encoder in
  front; classifier or regressor, as the task says);
- a `Learner` of this project's protocol — used as it is;
- a ``torch.nn.Module`` — wrapped in `training.learners.torch_module.TorchModuleLearner`,
  the generic online fine-tuner (parameters it takes: see ``TUNER_PARAMS`` there).

Imports are allowed only from the project's own package (``training``) and the prefixes
listed in ``PERENNIAL_ALLOWED_MODULES`` (comma separated, e.g. ``acme,models.team``): a
tampered metadata file or flag cannot make a process import arbitrary code.

>>> is_allowed("training.learners.candidates"), is_allowed("os")
(True, False)
>>> build_from_path("os:system", None)
Traceback (most recent call last):
...
training.learners.allowlist.ModuleNotAllowedError: module 'os' of factory 'os:system' is not allowed: PERENNIAL_ALLOWED_MODULES allows training only; add the module's package to it (comma-separated prefixes)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from training.encoding import Encoding
from training.learners.allowlist import (  # noqa: F401 - re-exported: one place to look
    ALLOWED_ENV,
    ModuleNotAllowedError,
    allowed_prefixes,
    is_allowed,
    require_allowed,
)
from training.learners.base import Learner
from training.learners.river import RiverLearner
from training.learners.snapshot import SnapshotError
from training.spec import ModelSpec, Task

#: Candidate parameters the River wrapper takes (the rest go to the factory).
RIVER_WRAPPER_PARAMS = frozenset({"encoding", "name"})
#: Candidate parameters the network fine-tuner takes (`training.learners.torch_module`);
#: here so that resolving a River factory does not import torch.
TUNER_PARAMS = frozenset({"optimizer", "lr", "batch_size", "epochs_per_batch", "replay_size", "replay_ratio",
                          "freeze", "weights", "standardize", "device", "seed", "name"})


class FactoryError(SnapshotError):
    """A factory path cannot be used: malformed, not allowed, not importable, or it returned
    something that is not a learner. The message says which and what is accepted."""


class FactoryImportError(FactoryError):
    """The factory's module cannot be imported, or has no such attribute."""


def split_path(path: str) -> tuple[str, str]:
    """``"pkg.mod:factory"`` → ``("pkg.mod", "factory")``; refuses anything else."""
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr or any(not part.isidentifier() for part in module.split(".") + attr.split(".")):
        raise FactoryError(f"invalid factory path {path!r}: write module:factory, e.g. acme.models:tree")
    return module, attr


def import_factory(path: str, extra_allowed: Iterable[str] = ()) -> Callable[..., Any]:
    """The callable named by ``path``, imported only from an allowed module."""
    module_name, attr = split_path(path)
    require_allowed(module_name, f"factory {path!r}", extra_allowed)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise FactoryImportError(f"cannot import module {module_name!r} of factory {path!r}: {e}") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise FactoryImportError(f"module {module_name!r} has no {attr!r} (factory {path!r})") from None
    if not callable(obj):
        raise FactoryError(f"factory {path!r} is a {type(obj).__name__}, not a callable")
    return obj


def build_from_path(path: str, spec: ModelSpec | None, params: dict[str, Any] | None = None, *,
                    name: str | None = None, extra_allowed: Iterable[str] = ()) -> Learner:
    """Build the learner a factory path names, for a model's ``spec`` (see module docstring).

    ``params`` are the candidate's keyword parameters: those the factory declares go to it,
    the rest to the wrapper (the fine-tuner's ``lr``, ``batch_size``, ...). ``name`` (default
    the path) labels the learner in metrics and reports.
    """
    from training.learners.candidates import call_factory

    params = dict(params or {})
    factory = import_factory(path, extra_allowed)
    to_factory, to_wrapper = split_params(factory, params)
    obj = call_factory(factory, spec, to_factory)
    name = str(to_wrapper.pop("name", None) or name or path)
    if isinstance(obj, Learner):
        if to_wrapper:
            raise FactoryError(f"factory {path!r} does not take parameter(s) {sorted(to_wrapper)}")
        return obj
    if _is_torch_module(obj):
        from training.learners.torch_module import TorchModuleLearner

        unknown = sorted(set(to_wrapper) - TUNER_PARAMS)
        if unknown:
            raise FactoryError(f"factory {path!r} does not take parameter(s) {unknown}, and the fine-tuner "
                               f"takes only {', '.join(sorted(TUNER_PARAMS))}")
        if spec is None:
            raise FactoryError(f"factory {path!r} returned a torch.nn.Module, which needs the model's spec")
        # the fine-tuner calls the factory again under its own seed, so two seeded runs agree
        return TorchModuleLearner(path, spec, factory_params=to_factory, name=name, **to_wrapper)
    if _is_river_estimator(obj):
        unknown = sorted(set(to_wrapper) - RIVER_WRAPPER_PARAMS)
        if unknown:
            raise FactoryError(f"factory {path!r} does not take parameter(s) {unknown}")
        _check_river_task(obj, spec, path)
        return ImportedRiverLearner(obj, name=name, spec=spec, encoding=to_wrapper.get("encoding", Encoding.DENSE),
                                    factory=path, factory_params=to_factory)
    raise FactoryError(
        f"factory {path!r} returned {type(obj).__name__}; expected a River estimator or pipeline, "
        "a training.learners.base.Learner, or a torch.nn.Module"
    )


def split_params(factory: Callable[..., Any], params: dict[str, Any]) -> tuple[dict, dict]:
    """Parameters the factory declares (all but the wrappers' own when it takes ``**kwargs``),
    and the rest."""
    try:
        declared = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        declared = {}
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in declared.values())
    wrapper_keys = TUNER_PARAMS | RIVER_WRAPPER_PARAMS
    ours = {k: v for k, v in params.items() if k in declared or (var_kw and k not in wrapper_keys)}
    return ours, {k: v for k, v in params.items() if k not in ours}


class ImportedRiverLearner(RiverLearner):
    """A user's River estimator behind the protocol; remembers its factory so the registry
    records it (and refuses the version where that module is not allowed). A user's
    pipeline may read text: text features reach it as strings."""

    reads_text = True

    def __init__(self, estimator: Any, name: str, spec: ModelSpec | None = None,
                 encoding: Encoding | str = Encoding.DENSE, factory: str = "",
                 factory_params: dict[str, Any] | None = None) -> None:
        super().__init__(estimator, name=name, spec=spec, encoding=encoding)
        self.factory = factory
        self.factory_params = dict(factory_params or {})

    def params(self) -> dict[str, Any]:
        return {**super().params(), "factory": self.factory, "factory_params": dict(self.factory_params)}

    def clone(self) -> ImportedRiverLearner:
        return ImportedRiverLearner(**self.params())

    def candidate_params(self) -> dict[str, Any]:
        """What `build_from_path` takes to rebuild this learner untrained."""
        return {**self.factory_params, "encoding": self.encoding.value, "name": self.name}


def factory_of(learner: Learner) -> tuple[str | None, dict[str, Any] | None]:
    """The factory path a learner was built from and the candidate parameters that rebuild
    it with `build_from_path` (the factory's and the wrapper's), when it knows them."""
    factory = getattr(learner, "factory", None)
    if not isinstance(factory, str) or not factory:
        return None, None
    candidate_params = getattr(learner, "candidate_params", None)
    if callable(candidate_params):
        return factory, dict(candidate_params())
    return factory, dict(getattr(learner, "factory_params", None) or {})


def _is_torch_module(obj: object) -> bool:
    import sys

    torch = sys.modules.get("torch")  # a factory that returns a Module has imported torch
    return torch is not None and isinstance(obj, torch.nn.Module)


def _is_river_estimator(obj: object) -> bool:
    from river import base as river_base

    return isinstance(obj, river_base.Estimator)


def _river_final(estimator: Any) -> Any:
    """A pipeline's last step (what predicts); the estimator itself otherwise."""
    from river import compose

    while isinstance(estimator, compose.Pipeline):
        estimator = list(estimator.steps.values())[-1]
    return estimator


def _check_river_task(estimator: Any, spec: ModelSpec | None, path: str) -> None:
    from river import base as river_base

    final = _river_final(estimator)
    task = spec.task if spec is not None else Task.CLASSIFICATION
    if task is Task.CLASSIFICATION and not isinstance(final, river_base.Classifier):
        kind = "a regressor" if isinstance(final, river_base.Regressor) else "not a classifier"
        raise FactoryError(f"factory {path!r} returned {type(estimator).__name__} ending in "
                           f"{type(final).__name__}, {kind}, for a classification model")
    if task is Task.REGRESSION and not isinstance(final, river_base.Regressor):
        raise FactoryError(f"factory {path!r} returned {type(estimator).__name__} ending in "
                           f"{type(final).__name__}, not a regressor, for a regression model")
