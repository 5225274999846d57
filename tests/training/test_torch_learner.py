"""TorchMLPLearner and the digits-rotate stream, through their public interfaces."""

from __future__ import annotations

import io
import math
import pickle
import random

import numpy as np
import pytest
import torch

from training.learners import snapshot
from training.learners.base import InvalidFeaturesError
from training.learners.torch_mlp import TorchMLPLearner
from training.learners.torch_parts import build_network, grow_head
from training.streams.digits import (
    FEATURES,
    augment_image,
    digits_phase_dataset,
    digits_rotate,
    phase_of_event,
)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny networks run faster on one thread, and the CI machine's cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SMALL = {"hidden_layers": (16,), "lr": 0.01, "batch_size": 8, "replay_size": 40, "device": "cpu"}


def blobs(n: int, seed: int = 0) -> list[tuple[dict[str, float], str]]:
    """Three well-separated Gaussian blobs in two dimensions, plus a noise feature."""
    rng = random.Random(seed)
    centres = {"a": (-3.0, 0.0), "b": (3.0, 0.0), "c": (0.0, 4.0)}
    events = []
    for _ in range(n):
        label = rng.choice("abc")
        cx, cy = centres[label]
        x = {"x": cx + rng.gauss(0, 1), "y": cy + rng.gauss(0, 1), "noise": rng.gauss(0, 1)}
        events.append((x, label))
    return events


def trained(events, **params) -> TorchMLPLearner:
    learner = TorchMLPLearner(**{**SMALL, **params})
    for x, y in events:
        learner.learn_one(x, y)
    return learner


PROBES = [x for x, _ in blobs(20, seed=99)]


def predictions(learner: TorchMLPLearner) -> list[dict]:
    return learner.predict_proba_many(PROBES)


# -- the protocol ---------------------------------------------------------------------------


def test_predicts_nothing_before_learning():
    learner = TorchMLPLearner(device="cpu")
    assert learner.predict_proba_one({"x": 1.0}) == {}
    assert learner.predict_one({"x": 1.0}) is None
    assert learner.predict_proba_many([{"x": 1.0}, {"x": 2.0}]) == [{}, {}]


def test_probabilities_are_floats_over_known_classes_summing_to_one():
    learner = trained(blobs(30))
    for proba in predictions(learner):
        assert set(proba) == {"a", "b", "c"}
        assert all(type(p) is float for p in proba.values())
        assert math.fsum(proba.values()) == pytest.approx(1.0, abs=1e-9)


def test_batch_prediction_matches_one_at_a_time():
    learner = trained(blobs(30))
    batch = learner.predict_proba_many(PROBES)
    for x, proba in zip(PROBES, batch, strict=True):
        assert learner.predict_proba_one(x) == pytest.approx(proba, abs=1e-6)


def test_rows_fast_path_matches_dicts():
    learner = trained(blobs(30))
    rows = np.array([[x[f] for f in learner.n_features_in] for x in PROBES])
    rows[0, 1] = np.nan  # NaN is a missing feature, as in a dict without it
    expected = learner.predict_proba_many(
        [{f: x[f] for f in learner.n_features_in if f != "x" or i} for i, x in enumerate(PROBES)]
    )
    out = learner.predict_proba_rows(rows)
    assert out.shape == (len(PROBES), 3)
    assert out == pytest.approx(np.array([[p[c] for c in learner.classes] for p in expected]))
    with pytest.raises(ValueError, match="expected 3"):
        learner.predict_proba_rows(rows[:, :2])


def test_learns_a_separable_problem():
    learner = trained(blobs(600), hidden_layers=(32,))
    test = blobs(300, seed=1)
    accuracy = sum(learner.predict_one(x) == y for x, y in test) / len(test)
    assert accuracy > 0.9


def test_clone_is_untrained_with_equal_params():
    learner = trained(blobs(30), dropout=0.1, activation="tanh", classes=("a", "b", "c"))
    twin = learner.clone()
    assert twin.params() == learner.params()
    assert twin.predict_proba_one(PROBES[0]) == {}
    assert twin.n_features_in == []
    assert repr(twin) == repr(learner)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"activation": "swish"}, "activation='swish'"),
        ({"optimizer": "rmsprop"}, "optimizer='rmsprop'"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"classes": ("a", "a")}, "classes="),
    ],
)
def test_bad_hyperparameters_are_refused_clearly(params, message):
    with pytest.raises(ValueError, match=message):
        TorchMLPLearner(**params)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "leaky_relu"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_every_activation_and_optimizer_learns_without_error(activation, optimizer):
    learner = trained(blobs(20), activation=activation, optimizer=optimizer, batch_norm=True)
    assert set(learner.predict_proba_one(PROBES[0])) == {"a", "b", "c"}


def test_batch_norm_copes_with_single_row_batches():
    learner = trained(blobs(5), batch_norm=True, batch_size=1, replay_size=0)
    assert learner.predict_one(PROBES[0]) in {"a", "b", "c"}


# -- features -------------------------------------------------------------------------------


def test_feature_names_are_fixed_sorted_on_first_example():
    learner = trained(blobs(10))
    assert learner.n_features_in == ["noise", "x", "y"]


def test_missing_feature_counts_as_its_running_mean():
    events = blobs(40)
    learner = trained(events)
    mean_noise = sum(x["noise"] for x, _ in events) / len(events)
    x = {"x": 1.0, "y": 2.0}
    assert learner.predict_proba_one(x) == pytest.approx(
        learner.predict_proba_one({**x, "noise": mean_noise}), abs=1e-6
    )
    learner.learn_one({"x": -3.0}, "a")  # missing features at learn time do not crash either


def test_featureless_events_do_not_build_the_network():
    learner = TorchMLPLearner(**SMALL)
    learner.learn_one({}, "a")
    assert learner.predict_proba_one({"x": 1.0}) == {}
    learner.learn_one({"x": 1.0}, "b")
    assert learner.n_features_in == ["x"]
    assert set(learner.predict_proba_one({"x": 1.0})) == {"a", "b"}


def test_unseen_features_are_ignored():
    learner = trained(blobs(20))
    x = PROBES[0]
    assert learner.predict_proba_one({**x, "brand_new": 5.0}) == learner.predict_proba_one(x)
    learner.learn_one({**x, "brand_new": 5.0}, "a")
    assert learner.n_features_in == ["noise", "x", "y"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "3", None])
def test_non_finite_or_non_numeric_features_are_refused(bad):
    learner = trained(blobs(20))
    before = predictions(learner)
    x = {"x": 1.0, "y": bad, "noise": 0.0}
    with pytest.raises(InvalidFeaturesError, match="feature 'y'"):
        learner.predict_proba_one(x)
    with pytest.raises(InvalidFeaturesError, match="feature 'y'"):
        learner.learn_one(x, "a")
    with pytest.raises(InvalidFeaturesError):  # a batch with one bad row is refused whole
        learner.learn_many([PROBES[0]] * 20 + [x], ["a"] * 21)
    assert predictions(learner) == before


def test_learn_does_not_mutate_inputs():
    x = {"x": 1.0, "y": 2.0}
    learner = TorchMLPLearner(**SMALL)
    learner.learn_one(x, "a")
    learner.predict_proba_one(x)
    assert x == {"x": 1.0, "y": 2.0}


# -- classes --------------------------------------------------------------------------------


def test_output_layer_grows_when_a_new_label_arrives():
    events = [e for e in blobs(60) if e[1] != "c"]
    learner = trained(events)
    assert sorted(learner.classes) == ["a", "b"]
    learner.learn_many(*zip(*[e for e in blobs(60, seed=2) if e[1] == "c"], strict=True))
    assert learner.classes[2] == "c"  # classes are kept in order of arrival
    assert set(learner.predict_proba_one(PROBES[0])) == {"a", "b", "c"}
    for x, y in blobs(200, seed=3):
        learner.learn_one(x, y)
    assert learner.predict_one({"x": 0.0, "y": 4.0, "noise": 0.0}) == "c"


def test_grow_head_keeps_old_rows_and_pads_optimizer_state():
    net = build_network(3, (4,), 2, activation="relu", dropout=0.0, batch_norm=False)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    net(torch.randn(5, 3)).sum().backward()
    opt.step()
    old_weight = net[-1].weight.detach().clone()
    grow_head(net, 3, opt)
    assert net[-1].weight.shape == (3, 4)
    assert torch.equal(net[-1].weight[:2].detach(), old_weight)
    moments = opt.state[net[-1].weight]["exp_avg"]
    assert moments.shape == (3, 4) and torch.count_nonzero(moments[2]) == 0
    net(torch.randn(5, 3)).sum().backward()
    opt.step()  # the optimizer steps the new head without complaint


def test_fixed_classes_are_known_from_the_start_and_others_refused():
    learner = TorchMLPLearner(**SMALL, classes=("a", "b", "c"))
    assert learner.classes == ["a", "b", "c"]
    learner.learn_one({"x": 1.0}, "a")
    assert set(learner.predict_proba_one({"x": 1.0})) == {"a", "b", "c"}
    with pytest.raises(ValueError, match="label 'z' is not one of the fixed classes"):
        learner.learn_one({"x": 1.0}, "z")


# -- determinism and snapshots ---------------------------------------------------------------


STATEFUL = {"dropout": 0.2, "replay_ratio": 1.5}  # exercise every random draw


def test_same_events_same_seed_give_identical_predictions():
    events = blobs(75)
    assert predictions(trained(events, **STATEFUL)) == predictions(trained(events, **STATEFUL))
    assert predictions(trained(events, **STATEFUL, seed=1)) != predictions(
        trained(events, **STATEFUL)
    )


def test_snapshot_restores_predictions_and_continued_learning():
    first, later = blobs(75), blobs(75, seed=5)  # 75 is no multiple of 8: the buffer is part full
    learner = trained(first, **STATEFUL)
    restored = TorchMLPLearner.from_bytes(learner.to_bytes())
    assert restored.params() == learner.params()
    assert restored.classes == learner.classes
    assert predictions(restored) == predictions(learner)
    for x, y in later:
        learner.learn_one(x, y)
        restored.learn_one(x, y)
    assert predictions(restored) == predictions(learner)


def test_snapshot_of_untrained_learner_round_trips():
    learner = TorchMLPLearner(**SMALL)
    restored = TorchMLPLearner.from_bytes(learner.to_bytes())
    assert restored.predict_proba_one({"x": 1.0}) == {}
    assert restored.params() == learner.params()


def test_snapshot_loads_with_weights_only():
    data = trained(blobs(30), classes=("a", "b", "c")).to_bytes()
    state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    assert state["classes"] == ["a", "b", "c"]
    assert state["features"] == ["noise", "x", "y"]


def test_snapshot_module_round_trip():
    learner = trained(blobs(30))
    snap = snapshot.dumps(learner)
    assert snap.format == "torch"
    assert predictions(snapshot.loads(snap)) == predictions(learner)


def test_pickle_round_trip():
    learner = trained(blobs(75), **STATEFUL)
    twin = pickle.loads(pickle.dumps(learner))
    assert isinstance(twin, TorchMLPLearner)
    assert predictions(twin) == predictions(learner)
    x, y = PROBES[0], "a"
    for _ in range(16):
        learner.learn_one(x, y)
        twin.learn_one(x, y)
    assert predictions(twin) == predictions(learner)
    assert pickle.loads(pickle.dumps(TorchMLPLearner())).predict_proba_one({"x": 1.0}) == {}


# -- offline training ------------------------------------------------------------------------


def test_fit_offline_stops_early_and_restores_the_best_weights():
    train, val = blobs(300), blobs(100, seed=1)
    learner = TorchMLPLearner(**SMALL)
    history = learner.fit_offline(
        [x for x, _ in train],
        [y for _, y in train],
        [x for x, _ in val],
        [y for _, y in val],
        max_epochs=8,
        patience=2,
    )
    assert history["epochs"] == len(history["train_loss"]) == len(history["val_loss"]) <= 8
    assert history["best_val_loss"] == min(history["val_loss"])
    assert history["val_loss"][history["best_epoch"]] == history["best_val_loss"]
    probas = learner.predict_proba_many([x for x, _ in val])
    log_loss = -sum(math.log(p[y]) for p, (_, y) in zip(probas, val, strict=True)) / len(val)
    assert log_loss == pytest.approx(history["best_val_loss"], rel=1e-4)
    assert history["val_accuracy"][history["best_epoch"]] > 0.9


# -- a GPU, where there is one ----------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_learner_snapshot_restores_on_cpu():
    learner = trained(blobs(75), **{**STATEFUL, "device": "cuda"})
    restored = TorchMLPLearner.from_bytes(learner.to_bytes(), device="cpu")
    for a, b in zip(predictions(learner), predictions(restored), strict=True):
        assert a == pytest.approx(b, abs=1e-5)


# -- the digits-rotate stream ---------------------------------------------------------------


def test_digits_stream_yields_64_finite_pixels_and_digit_labels():
    events = list(digits_rotate(n_events=40, seed=0))
    assert len(events) == 40
    for x, y in events:
        assert list(x) == list(FEATURES)
        assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in x.values())
        assert type(y) is int and 0 <= y <= 9


def test_digits_stream_is_deterministic_per_seed():
    assert list(digits_rotate(n_events=20, seed=3)) == list(digits_rotate(n_events=20, seed=3))
    assert list(digits_rotate(n_events=20, seed=3)) != list(digits_rotate(n_events=20, seed=4))


def test_digits_phases_split_the_stream_evenly():
    assert [phase_of_event(i, 100, 4) for i in (0, 24, 25, 99)] == [0, 0, 1, 3]


def test_held_out_phase_data_is_deterministic_and_rotated():
    xs, ys = digits_phase_dataset(0, n=10)
    assert (xs, ys) == digits_phase_dataset(0, n=10)
    rotated, labels = digits_phase_dataset(3, n=10)
    assert labels == ys and rotated != xs


def test_augment_image_keeps_shape_and_range():
    img = np.zeros((8, 8))
    img[2:6, 3:5] = 1.0
    out = augment_image(img, np.random.default_rng(0), angle=30.0)
    assert out.shape == (8, 8) and out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, img)
