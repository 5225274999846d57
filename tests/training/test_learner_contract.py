"""The learner contract every candidate passes: the same checks `perennial check` runs
(`training.checks`), plus the protocol's refusals. One suite for all learners — built-in
River and plain-Python models, the PyTorch MLP, and a user's network through the generic
fine-tuner — instead of a copy per learner.
"""

import copy
import pickle

import pytest

from training.checks import CHECKS, check_spec, run_checks
from training.learners.base import InvalidFeaturesError
from training.learners.candidates import build_candidates
from training.learners.snapshot import Snapshot, SnapshotError, dumps, loads
from training.spec import Task
from training.streams import iter_stream

EVENTS = list(iter_stream("agrawal", 600, seed=3))
PROBE = [x for x, _ in list(iter_stream("agrawal", 700, seed=9))[-100:]]

CONTRACT_LEARNERS = ["logreg", "logreg-river", "hat", "arf", "mlp", "training.learners.torch_module_examples:small_net"]


@pytest.fixture(scope="module", params=CONTRACT_LEARNERS)
def contract(request):
    """Every check's result for one learner (run once per learner, asserted per check)."""
    name = request.param
    results = list(run_checks(lambda spec: build_candidates(name, spec)[0], Task.CLASSIFICATION, n_events=400))
    return name, {r.name: r for r in results}


@pytest.mark.parametrize("check", CHECKS)
def test_every_candidate_keeps_the_contract(contract, check):
    name, results = contract
    result = results[check]
    assert result.passed, f"{name}: {check}: {result.detail}"


def test_the_check_spec_has_every_kind_of_raw_value():
    kinds = {f.kind.value for f in check_spec().features}
    assert kinds == {"numeric", "categorical", "boolean"}
    assert any(f.optional for f in check_spec().features)


@pytest.fixture(params=["logreg", "logreg-river", "hat", "arf"])
def trained(request):
    learner = build_candidates(request.param)[0]
    for x, y in EVENTS:
        learner.learn_one(x, y)
    return learner


def test_missing_and_new_features_do_not_crash(trained):
    x = dict(PROBE[0])
    x.pop("salary")
    x["brand_new_feature"] = 3.0
    proba = trained.predict_proba_one(x)
    assert set(proba) <= {0, 1} and proba
    trained.learn_one(x, 1)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), "12", None, [1.0]])
def test_bad_values_refused_with_clear_error(trained, bad):
    x = dict(PROBE[0], salary=bad)
    with pytest.raises(InvalidFeaturesError, match="salary"):
        trained.predict_proba_one(x)
    with pytest.raises(InvalidFeaturesError, match="salary"):
        trained.learn_one(x, 1)


def test_input_is_not_mutated(trained):
    x = dict(PROBE[0])
    before = copy.deepcopy(x)
    trained.predict_proba_one(x)
    trained.learn_one(x, 0)
    assert x == before


def test_pickle_round_trip(trained):
    again = pickle.loads(pickle.dumps(trained))
    assert again.predict_proba_one(PROBE[1]) == trained.predict_proba_one(PROBE[1])
    restored = loads(dumps(trained))
    assert [trained.predict_proba_one(x) for x in PROBE] == [restored.predict_proba_one(x) for x in PROBE]


def test_snapshot_refuses_foreign_classes():
    with pytest.raises(ValueError, match="module 'os' of snapshot class 'os:system' is not allowed"):
        loads(Snapshot("pickle", "os:system", b""))
    with pytest.raises(SnapshotError, match="is not a Learner"):
        loads(Snapshot("pickle", "training.system:LearningSystem", b""))


def test_unknown_candidate_name():
    with pytest.raises(ValueError, match="unknown candidate 'svm'"):
        build_candidates("svm")
