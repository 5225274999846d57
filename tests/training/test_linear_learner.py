"""What is particular to the plain-Python logistic regression (the ``logreg`` candidate): softmax
over any labels, online standardisation, determinism, and accuracy no worse than River's
pipeline on the drifting streams. The shared learner contract is in ``test_learner_contract.py``."""

import math

import pytest

from training.learners.linear import LinearLearner
from training.streams import iter_stream

EVENTS = list(iter_stream("agrawal", 600, seed=3))
PROBE = [x for x, _ in list(iter_stream("agrawal", 700, seed=9))[-100:]]


@pytest.fixture(params=[{}, {"lr": 0.05, "l2": 1e-3, "power_t": 0.25}])
def trained(request):
    learner = LinearLearner(**request.param)
    for x, y in EVENTS:
        learner.learn_one(x, y)
    return learner


def test_reordered_features_give_the_same_answer(trained):
    x = PROBE[0]
    backwards = dict(reversed(list(x.items())))
    assert trained.predict_proba_one(backwards) == pytest.approx(trained.predict_proba_one(x), abs=1e-12)


def test_predicting_first_does_not_change_what_is_learned():
    """learn_one reuses the forward pass of a prediction of the same event; the result must
    be bit-for-bit what learning without that prediction gives (and an event changed in place
    between the two calls must not reuse the stale pass)."""
    a, b = LinearLearner(), LinearLearner()
    for i, (x, y) in enumerate(EVENTS):
        a.predict_proba_one(x)
        if i % 7 == 0:
            x = dict(x)
            a.predict_proba_one(x)
            x["salary"] += 1.0  # mutated after the prediction
        a.learn_one(x, y)
        b.learn_one(x, y)
    assert [a.predict_proba_one(x) for x in PROBE] == [b.predict_proba_one(x) for x in PROBE]
    assert a.to_bytes() == b.to_bytes()


def test_deterministic():
    def run():
        learner = LinearLearner(power_t=0.5, l2=1e-4)
        for x, y in EVENTS:
            learner.predict_proba_one(x)
            learner.learn_one(x, y)
        return learner.to_bytes()

    assert run() == run()


def test_any_labels_and_class_counts():
    learner = LinearLearner(lr=0.1)
    centres = {"red": (0.0, 0.0), "green": (5.0, 0.0), "blue": (0.0, 5.0), 7: (5.0, 5.0)}
    for i in range(2000):
        label = list(centres)[i % 4]
        cx, cy = centres[label]
        learner.learn_one({"u": cx + (i % 3) * 0.1, "v": cy - (i % 5) * 0.1}, label)
    proba = learner.predict_proba_one({"u": 5.0, "v": 0.0})
    assert set(proba) == {"red", "green", "blue", 7}
    assert math.isclose(sum(proba.values()), 1.0)
    assert max(proba, key=proba.get) == "green"
    assert [learner.predict_one({"u": cx, "v": cy}) for cx, cy in centres.values()] == list(centres)
    assert learner.classes == sorted(centres, key=str)


def test_single_class_and_constant_features():
    learner = LinearLearner()
    for _ in range(10):
        learner.learn_one({"a": 1.0, "b": 2.0}, "only")
    assert learner.predict_proba_one({"a": 1.0, "b": 2.0}) == {"only": 1.0}
    # a feature constant so far standardises to 0 (no division by a zero deviation)
    assert learner.predict_proba_one({"a": 1e9, "b": -1e9}) == {"only": 1.0}
    learner.learn_one({"a": 1e9, "b": 2.0}, "other")
    proba = learner.predict_proba_one({"a": 1e300, "b": 2.0})  # extreme scores do not overflow
    assert all(0.0 <= p <= 1.0 for p in proba.values()) and math.isclose(sum(proba.values()), 1.0)


@pytest.mark.parametrize("bad", [{"lr": 0.0}, {"lr": -1.0}, {"l2": -0.1}, {"power_t": float("nan")}])
def test_bad_hyperparameters_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        LinearLearner(**bad)


@pytest.mark.slow  # 20k-event prequential runs of both implementations: `make test` runs it
@pytest.mark.parametrize("stream", ["agrawal-drift", "sea-drift"])
def test_prequential_accuracy_matches_river(stream):
    """The River pipeline it replaces (StandardScaler | OneVsRest(LogisticRegression(SGD 0.01)))
    is the bar: at least as accurate, within sampling noise, on both drifting streams."""
    from river import linear_model, multiclass, optim, preprocessing

    from training.learners.river import RiverLearner

    river = RiverLearner(preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(
        linear_model.LogisticRegression(optimizer=optim.SGD(0.01))), name="logreg")
    ours = LinearLearner()
    events = list(iter_stream(stream, 20000, seed=1))
    right = {"river": 0, "ours": 0}
    for x, y in events:
        right["river"] += river.predict_one(x) == y
        right["ours"] += ours.predict_one(x) == y
        river.learn_one(x, y)
        ours.learn_one(x, y)
    assert right["ours"] >= right["river"] - 0.002 * len(events), right


def test_registered_as_a_candidate():
    from training.learners.candidates import build_candidates

    learner, = build_candidates("logreg", logreg={"lr": 0.01})
    assert isinstance(learner, LinearLearner) and learner.params()["lr"] == 0.01 and learner.name == "logreg"
