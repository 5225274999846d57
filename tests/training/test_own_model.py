"""A user's own learner by import path: the three kinds a factory may return, the generic
fine-tuner's knobs, the allow-list, and what the registry records and refuses.

The user package is written to a temporary directory put on ``sys.path``, as a user's
installed package would be, never inside the repository.
"""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from training.checks import check_spec, check_stream
from training.learners.allowlist import ALLOWED_ENV, ModuleNotAllowedError
from training.learners.candidates import build_candidates
from training.learners.factories import FactoryError, ImportedRiverLearner
from training.learners.snapshot import dumps, loads
from training.learners.torch_module import TorchModuleLearner
from training.registry import IntegrityError, RefusedModuleError, Registry
from training.spec import Task

USER_MODULE = textwrap.dedent('''
    from river import linear_model, multiclass, optim, preprocessing
    from torch import nn

    from training.learners.candidates import logistic_regression


    def river_pipeline(lr: float = 0.05):
        return preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(
            linear_model.LogisticRegression(optim.SGD(lr)))


    def river_regressor():
        return preprocessing.StandardScaler() | linear_model.LinearRegression()


    def own_learner(spec):
        return logistic_regression(spec)


    def net(n_inputs, n_outputs, hidden: int = 8):
        return nn.Sequential(
            nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Linear(hidden, n_outputs))


    def not_a_model():
        return 42


    from training.learners.base import Learner, PickleSnapshot


    class Majority(PickleSnapshot, Learner):
        name = "majority"

        def __init__(self, spec=None):
            self.spec, self.counts = spec, {}

        def predict_proba_one(self, x):
            total = sum(self.counts.values())
            return {c: n / total for c, n in self.counts.items()} if total else {}

        def learn_one(self, x, y):
            self.counts[y] = self.counts.get(y, 0) + 1

        def params(self):
            return {"spec": self.spec}

        def clone(self):
            return Majority(self.spec)


    def majority(spec):
        return Majority(spec)
''')


@pytest.fixture
def user_pkg(tmp_path, monkeypatch):
    """``acme_i10.models`` on the path and allowed; removed from sys.modules afterwards."""
    pkg = tmp_path / "acme_i10"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(ALLOWED_ENV, "acme_i10")
    yield "acme_i10.models"
    for name in [m for m in sys.modules if m.startswith("acme_i10")]:
        del sys.modules[name]


SPEC = check_spec()
EVENTS = check_stream(SPEC, 300, seed=2)


def trained(learner, events=EVENTS):
    for x, y in events:
        learner.learn_one(x, y)
    return learner


def test_a_factory_returns_a_river_pipeline_a_learner_or_a_network(user_pkg):
    river, own, net = build_candidates(f"{user_pkg}:river_pipeline,{user_pkg}:own_learner,{user_pkg}:net", SPEC)
    assert isinstance(river, ImportedRiverLearner) and river.factory == f"{user_pkg}:river_pipeline"
    assert own.name == "logreg"
    assert isinstance(net, TorchModuleLearner) and net.name == f"{user_pkg}:net"
    for learner in (river, own, net):
        assert set(trained(learner).predict_proba_one(EVENTS[0][0])) == {"a", "b", "c"}


def test_parameters_go_to_the_factory_or_to_the_fine_tuner(user_pkg):
    path = f"{user_pkg}:net"
    net = build_candidates(path, SPEC, **{path: {"hidden": 5, "lr": 0.01, "batch_size": 4}})[0]
    assert net.factory_params == {"hidden": 5}
    assert (net.lr, net.batch_size) == (0.01, 4)
    assert net._net[0].out_features == 5
    with pytest.raises(FactoryError, match=r"does not take parameter\(s\) \['depth'\]"):
        build_candidates(path, SPEC, **{path: {"depth": 3}})


def test_a_river_estimator_of_the_wrong_task_or_a_non_model_is_refused(user_pkg):
    with pytest.raises(FactoryError, match="not a regressor, for a regression model"):
        build_candidates(f"{user_pkg}:river_pipeline", check_spec(Task.REGRESSION))
    with pytest.raises(FactoryError, match="returned int; expected a River estimator"):
        build_candidates(f"{user_pkg}:not_a_model", SPEC)


def test_factories_outside_the_allow_list_or_missing_are_refused(user_pkg, monkeypatch):
    with pytest.raises(FactoryError, match="has no 'nope'"):
        build_candidates(f"{user_pkg}:nope", SPEC)
    with pytest.raises(FactoryError, match="cannot import module 'acme_i10.missing'"):
        build_candidates("acme_i10.missing:net", SPEC)
    monkeypatch.delenv(ALLOWED_ENV)
    with pytest.raises(ModuleNotAllowedError, match="module 'acme_i10.models' of factory .* is not allowed"):
        build_candidates(f"{user_pkg}:net", SPEC)
    monkeypatch.setenv(ALLOWED_ENV, "acme")  # a prefix allows on a dot boundary only
    with pytest.raises(ModuleNotAllowedError):
        build_candidates(f"{user_pkg}:net", SPEC)


def test_frozen_layers_keep_their_weights_and_pretrained_weights_load(user_pkg, tmp_path):
    path = f"{user_pkg}:net"
    pretrained = build_candidates(path, SPEC, **{path: {"seed": 7}})[0]
    weights = tmp_path / "weights.pt"
    torch.save(pretrained._net.state_dict(), weights)
    tuned = build_candidates(path, SPEC, **{path: {"weights": str(weights), "freeze": ["0."], "batch_size": 8}})[0]
    assert torch.equal(tuned._net[0].weight, pretrained._net[0].weight.to(tuned._net[0].weight.device))
    head_before = tuned._net[2].weight.detach().clone()
    trained(tuned)
    assert torch.equal(tuned._net[0].weight.cpu(), pretrained._net[0].weight.cpu())  # frozen
    assert not torch.equal(tuned._net[2].weight.detach(), head_before)  # fine-tuned
    restored = loads(dumps(tuned))  # rebuilt from the factory; the file is not needed again
    weights.unlink()
    assert restored.predict_proba_one(EVENTS[0][0]) == tuned.predict_proba_one(EVENTS[0][0])
    assert restored.weights == str(weights)


def test_the_network_snapshot_loads_with_weights_only(user_pkg):
    net = trained(build_candidates(f"{user_pkg}:net", SPEC)[0])
    import io

    state = torch.load(io.BytesIO(net.to_bytes()), weights_only=True)
    assert state["params"]["factory"] == f"{user_pkg}:net"
    assert "0.weight" in state["network"]


def test_the_registry_records_the_factory_and_refuses_a_module_not_allowed(user_pkg, tmp_path, monkeypatch):
    registry = Registry(tmp_path / "registry", key="k")
    path = f"{user_pkg}:net"
    net = trained(build_candidates(path, SPEC, **{path: {"hidden": 6}})[0])
    river = trained(build_candidates(f"{user_pkg}:river_pipeline", SPEC)[0])
    v_net = registry.publish("m", net)
    v_river = registry.publish("m", river)
    assert v_net.factory == path and v_net.factory_params["hidden"] == 6
    rebuilt = build_candidates(path, SPEC, **{path: v_net.factory_params})[0]  # what the record is for
    assert rebuilt.params() == net.clone().params()
    assert registry.info("m", v_river.version).factory == f"{user_pkg}:river_pipeline"
    assert registry.load("m", v_net.version).learner.predict_proba_one(EVENTS[0][0]) == \
        net.predict_proba_one(EVENTS[0][0])

    monkeypatch.delenv(ALLOWED_ENV)
    for version in (v_net.version, v_river.version):
        with pytest.raises(RefusedModuleError, match="which PERENNIAL_ALLOWED_MODULES does not allow"):
            registry.load("m", version)
    assert issubclass(RefusedModuleError, IntegrityError)


def test_a_version_whose_module_cannot_be_imported_is_refused(user_pkg, tmp_path, monkeypatch):
    registry = Registry(tmp_path / "registry", key="k")
    v = registry.publish("m", trained(build_candidates(f"{user_pkg}:net", SPEC)[0]))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if str(tmp_path) not in p])
    for name in [m for m in sys.modules if m.startswith("acme_i10")]:
        del sys.modules[name]
    with pytest.raises(RefusedModuleError, match="cannot be imported"):
        registry.load("m", v.version)


def test_older_metadata_without_a_factory_still_loads(tmp_path):
    registry = Registry(tmp_path / "registry", key="k")
    v = registry.publish("m", trained(build_candidates("logreg", SPEC)[0]))
    assert v.factory is None and registry.load("m", v.version).learner.name == "logreg"
    from training.registry import VersionInfo

    old = {k: val for k, val in v.to_dict().items() if k not in ("factory", "factory_params")}
    assert VersionInfo.from_dict(old).factory is None


def test_a_candidates_file_names_candidates_with_their_parameters(user_pkg, tmp_path):
    from training.learners.candidates_file import (
        CandidatesFileError,
        build_named,
        load_candidates_file,
    )

    path = tmp_path / "candidates.yaml"
    path.write_text(textwrap.dedent(f'''
        small-net:
          factory: {user_pkg}:net
          params: {{hidden: 4, lr: 0.01, batch_size: 8}}
        wide-net:
          factory: {user_pkg}:net
          params: {{hidden: 32}}
        tree:
          factory: hat
          params: {{grace_period: 50}}
    '''))
    entries = load_candidates_file(path)
    small, wide, tree, logreg = build_named("small-net,wide-net,tree,logreg", SPEC, entries)
    assert [c.name for c in (small, wide, tree, logreg)] == ["small-net", "wide-net", "tree", "logreg"]
    assert (small._net[0].out_features, small.lr, small.batch_size) == (4, 0.01, 8)
    assert wide._net[0].out_features == 32
    assert [c.name for c in build_named(None, SPEC, entries)] == ["small-net", "wide-net", "tree"]
    path.write_text("net: {params: {}}\n")
    with pytest.raises(CandidatesFileError, match="candidate 'net' needs 'factory: module:factory'"):
        load_candidates_file(path)


def test_a_users_own_learner_class_loads_only_from_an_allowed_module(user_pkg, tmp_path, monkeypatch):
    registry = Registry(tmp_path / "registry", key="k")
    v = registry.publish("m", trained(build_candidates(f"{user_pkg}:majority", SPEC)[0]))
    assert v.class_path == f"{user_pkg}:Majority"
    assert set(registry.load("m", v.version).learner.predict_proba_one({})) == {"a", "b", "c"}
    monkeypatch.delenv(ALLOWED_ENV)
    with pytest.raises(RefusedModuleError, match=f"its learner class '{user_pkg}:Majority'"):
        registry.load("m", v.version)
