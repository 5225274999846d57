"""Contract checks every learner must pass (River's ``checks`` idea, for our protocol).

Every tabular candidate runs it; the PyTorch learner runs the same contract (and its own
extras) in ``test_torch_learner.py``, the plain-Python logistic regression its extras in
``test_linear_learner.py``.
"""

import copy
import pickle

import pytest

from training.learners.base import InvalidFeaturesError
from training.learners.candidates import build_candidates
from training.learners.snapshot import Snapshot, SnapshotError, dumps, loads
from training.streams import iter_stream

EVENTS = list(iter_stream("agrawal", 600, seed=3))
PROBE = [x for x, _ in list(iter_stream("agrawal", 700, seed=9))[-100:]]


@pytest.fixture(params=["logreg", "logreg-river", "hat", "arf"])
def trained(request):
    learner = build_candidates(request.param)[0]
    for x, y in EVENTS:
        learner.learn_one(x, y)
    return learner


def test_snapshot_restore_gives_identical_predictions_and_learning(trained):
    restored = loads(dumps(trained))
    assert [trained.predict_proba_one(x) for x in PROBE] == [restored.predict_proba_one(x) for x in PROBE]
    more = list(iter_stream("agrawal", 200, seed=5))
    for x, y in more:
        trained.learn_one(x, y)
        restored.learn_one(x, y)
    assert [trained.predict_one(x) for x in PROBE] == [restored.predict_one(x) for x in PROBE]


def test_clone_is_untrained_with_same_hyperparameters(trained):
    twin = trained.clone()
    assert twin.predict_proba_one(PROBE[0]) == {}
    assert twin.name == trained.name
    assert repr(twin.params()) == repr(trained.params())
    assert trained.predict_proba_one(PROBE[0])  # the original is untouched


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


def test_snapshot_refuses_foreign_classes():
    with pytest.raises(SnapshotError, match="not a Perennial learner"):
        loads(Snapshot("pickle", "os:system", b""))
    with pytest.raises(SnapshotError, match="is not a Learner"):
        loads(Snapshot("pickle", "training.system:LearningSystem", b""))


def test_unknown_candidate_name():
    with pytest.raises(ValueError, match="unknown candidate 'svm'"):
        build_candidates("svm")
