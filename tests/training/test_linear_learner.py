"""What is particular to the plain-Python logistic regression (the ``logreg`` candidate): softmax
over any labels, online standardisation, determinism, and accuracy no worse than River's
pipeline on the drifting streams. The shared learner contract is in ``test_learner_contract.py``."""

import math

import numpy as np
import pytest

from training.learners.base import InvalidFeaturesError
from training.learners.linear import LinearLearner
from training.spec import (
    CategoryStats,
    FeatureKind,
    FeatureSpec,
    ModelSpec,
    TargetSpec,
    Task,
    numeric_spec,
)
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


# -- predict_proba_rows: serving's vectorised path must answer what predict_proba_one answers --


def _rows(learner: LinearLearner, xs: list[dict]) -> np.ndarray:
    return np.array([[x[f] for f in learner.n_features_in] for x in xs], dtype=np.float64)


def _one_by_one(learner: LinearLearner, xs: list[dict]) -> np.ndarray:
    return np.array([[learner.predict_proba_one(x)[c] for c in learner.classes] for x in xs])


@pytest.mark.parametrize("with_spec", [True, False], ids=["spec", "no-spec"])
@pytest.mark.parametrize("size", [1, 2, 3, 64, 100])
def test_rows_give_predict_proba_one_probabilities(trained, with_spec, size):
    learner = trained
    if with_spec:  # the layout is the spec's (what bootstrap builds); without, first-seen order
        spec = numeric_spec(sorted(EVENTS[0][0]), [0, 1])
        learner = LinearLearner(spec=spec)
        for x, y in EVENTS:
            learner.learn_one(x, y)
    xs = PROBE[:size]
    np.testing.assert_allclose(learner.predict_proba_rows(_rows(learner, xs)), _one_by_one(learner, xs),
                               rtol=0, atol=1e-12)


def test_rows_of_many_classes_come_in_classes_order():
    """Softmax over classes seen in an order unlike `classes` (sorted by text), mixed types."""
    import random

    rng, learner = random.Random(1), LinearLearner(lr=0.05)
    for _ in range(2000):
        x = {"a": rng.gauss(0, 1), "b": rng.gauss(0, 3), "c": rng.random()}
        learner.learn_one(x, ["zeta", "beta", "x", 10][(x["a"] > 0) + (x["b"] > 1) + (x["c"] > 0.9)])
    xs = [{"c": rng.random(), "a": rng.gauss(0, 1), "b": rng.gauss(0, 3)} for _ in range(50)]
    assert learner.classes == [10, "beta", "x", "zeta"]
    out = learner.predict_proba_rows(_rows(learner, xs))
    np.testing.assert_allclose(out, _one_by_one(learner, xs), rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)


def test_rows_follow_learning_and_refuse_what_predict_proba_one_refuses():
    learner = LinearLearner()
    assert learner.predict_proba_rows(np.zeros((3, 0))).shape == (3, 0)  # nothing learned yet
    for x, y in EVENTS[:50]:
        learner.learn_one(x, y)
    before = learner.predict_proba_rows(_rows(learner, PROBE[:8]))
    for x, y in EVENTS[50:]:  # the arrays behind the fast path are rebuilt after learning
        learner.learn_one(x, y)
    after = learner.predict_proba_rows(_rows(learner, PROBE[:8]))
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, _one_by_one(learner, PROBE[:8]), rtol=0, atol=1e-12)
    restored = LinearLearner.from_bytes(learner.to_bytes())  # the cached arrays are not pickled
    assert "_plan" not in restored.__dict__
    np.testing.assert_allclose(restored.predict_proba_rows(_rows(learner, PROBE[:8])), after, rtol=0, atol=0)
    bad = _rows(learner, PROBE[:8])
    bad[3, 2] = np.inf
    with pytest.raises(InvalidFeaturesError):
        learner.predict_proba_rows(bad)
    with pytest.raises(ValueError, match="columns"):
        learner.predict_proba_rows(bad[:, :3])


def test_rows_are_refused_for_a_spec_with_categories():
    spec = ModelSpec(Task.CLASSIFICATION, TargetSpec("y", (0, 1)),
                     (FeatureSpec("a"), FeatureSpec("c", FeatureKind.CATEGORICAL, stats=CategoryStats(2, 0, (("x", 1), ("y", 1))))))
    with pytest.raises(TypeError, match="numeric rows"):
        LinearLearner(spec=spec).predict_proba_rows(np.zeros((1, 2)))
