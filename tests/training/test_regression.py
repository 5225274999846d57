"""Regression as a task: learners, prequential metrics, the paired test, drift and the loop."""

from __future__ import annotations

import copy
import math
import random

import pytest

from training.drift import DriftConfig
from training.evaluation import RegressionMetrics
from training.learners.candidates import DEFAULT_CANDIDATES, build_candidates
from training.learners.snapshot import dumps, loads
from training.promotion import (
    PairedLosses,
    PromotionPolicy,
    decide_promotion,
    decide_rollback,
    wilcoxon_z,
)
from training.publishers import InMemoryPublisher
from training.rows import RowValidator
from training.spec import Task, numeric_spec
from training.spec_inference import infer_spec
from training.streams import iter_stream, stream_info
from training.system import LearningSystem, LoopConfig

from .toy_learners import ConstantLearner, ConstantRegressor

REGRESSORS = ["linear", "linear-river", "hat", "arf", "mlp"]
SMALL_MLP = {"hidden_layers": (16,), "batch_size": 16, "device": "cpu"}


def table(n: int, seed: int):
    """Raw rows with a numeric, an optional numeric, a categorical and a boolean column, and
    a numeric target that depends on all of them."""
    rng = random.Random(seed)
    rows, ys = [], []
    for _ in range(n):
        a = rng.random()
        b = None if rng.random() < 0.2 else rng.gauss(0, 1)
        city = rng.choice(["oslo", "rome", "lima"])
        vip = rng.random() < 0.3
        rows.append({"a": a, "b": b, "city": city, "vip": vip})
        ys.append(10 * a + (b or 0.0) + {"oslo": 0.0, "rome": 5.0, "lima": -5.0}[city] + 3 * vip
                  + rng.gauss(0, 0.1))
    return rows, ys


ROWS, YS = table(800, seed=1)
SPEC = infer_spec(ROWS[:400], YS[:400], target="price")
PROBE = [dict(r) for r in table(50, seed=2)[0]] + [{"a": 0.5, "city": "paris", "vip": False}]  # unseen, absent


def test_spec_of_a_numeric_target_is_regression():
    assert SPEC.task is Task.REGRESSION and SPEC.classes is None


@pytest.fixture(params=REGRESSORS)
def trained(request):
    learner = build_candidates(request.param, SPEC, mlp=SMALL_MLP)[0]
    assert learner.task is Task.REGRESSION and learner.classes == []
    assert learner.predict_one(PROBE[0]) is None  # nothing learned yet
    validator = RowValidator(SPEC)
    for x, y in zip(ROWS, YS, strict=True):
        learner.learn_one(validator.row(x), validator.label(y))
    return learner


def test_regressors_learn_raw_rows_and_predict_numbers(trained):
    validator = RowValidator(SPEC)
    preds = [trained.predict_one(validator.row(x)) for x in PROBE]
    assert all(isinstance(p, float) and math.isfinite(p) for p in preds)
    assert trained.n_features_in == list(SPEC.feature_names)
    with pytest.raises(TypeError, match="regressor"):
        trained.predict_proba_one(validator.row(PROBE[0]))


def test_regressors_beat_the_mean_on_held_out_rows(trained):
    validator = RowValidator(SPEC)
    rows, ys = table(300, seed=3)
    mean = sum(YS) / len(YS)
    mae = sum(abs(trained.predict_one(validator.row(x)) - y) for x, y in zip(rows, ys, strict=True)) / len(ys)
    baseline = sum(abs(mean - y) for y in ys) / len(ys)
    assert mae < 0.8 * baseline, (trained.name, mae, baseline)


def test_regressor_snapshot_restores_identical_predictions_and_learning(trained):
    validator = RowValidator(SPEC)
    restored = loads(dumps(trained))  # the MLP's loads with torch.load(weights_only=True)
    probe = [validator.row(x) for x in PROBE]
    assert [trained.predict_one(x) for x in probe] == [restored.predict_one(x) for x in probe]
    rows, ys = table(100, seed=4)
    for x, y in zip(rows, ys, strict=True):
        trained.learn_one(validator.row(x), y)
        restored.learn_one(validator.row(x), y)
    assert [trained.predict_one(x) for x in probe] == [restored.predict_one(x) for x in probe]


def test_regressor_clone_is_untrained_and_input_not_mutated(trained):
    x = RowValidator(SPEC).row(PROBE[0])
    before = copy.deepcopy(x)
    twin = trained.clone()
    assert twin.predict_one(x) is None and twin.name == trained.name
    trained.predict_one(x)
    trained.learn_one(x, 1.0)
    assert x == before


def test_candidate_names_dispatch_on_the_task():
    assert DEFAULT_CANDIDATES[Task.REGRESSION] == ("linear", "hat", "arf")
    regressors = build_candidates("", SPEC)
    assert [(c.name, c.task) for c in regressors] == [(n, Task.REGRESSION) for n in ("linear", "hat", "arf")]
    classifiers = build_candidates("hat,arf")
    assert all(c.task is Task.CLASSIFICATION for c in classifiers)
    with pytest.raises(ValueError, match="'logreg' does not do regression; regression candidates are arf, hat, linear"):
        build_candidates("logreg", SPEC)
    with pytest.raises(ValueError, match="'linear' does not do classification"):
        build_candidates("linear")


# -- prequential metrics ------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_regression_metrics_match_a_direct_computation(offset):
    rng = random.Random(5)
    window = 50
    m = RegressionMetrics(window=window, history=80)
    ys, preds = [], []
    for i in range(1234):
        y = offset + rng.gauss(0, 3) + (5 if i > 600 else 0)
        p = None if i == 0 else offset + rng.gauss(0, 3)
        m.update(y, p)
        ys.append(y)
        preds.append(p if p is not None else 0.0 if i == 0 else None)
    preds[0] = 0.0  # the first prediction is scored as the mean so far: 0 before any target

    def direct(ys, ps):
        errs = [y - p for y, p in zip(ys, ps, strict=True)]
        mean = sum(ys) / len(ys)
        sst = sum((y - mean) ** 2 for y in ys)
        sse = sum(e * e for e in errs)
        return sum(map(abs, errs)) / len(errs), math.sqrt(sse / len(errs)), 1 - sse / sst

    mae, rmse, r2 = direct(ys[1:], preds[1:])  # the first event's error is |y| (offset-sized): skip it
    s = m.summary()
    assert s["events"] == 1234
    w_mae, w_rmse, w_r2 = direct(ys[-window:], preds[-window:])
    assert (s["window_mae"], s["window_rmse"], s["window_r2"]) == pytest.approx((w_mae, w_rmse, w_r2), rel=1e-6)
    if offset == 0.0:
        assert (s["mae"], s["rmse"]) == pytest.approx(direct(ys, preds)[:2], rel=1e-9)
    assert len(m.abs_errors) == 80
    assert list(m.abs_errors)[-1] == pytest.approx(abs(ys[-1] - preds[-1]))
    assert mae > 0 and rmse > 0 and r2 < 1


# -- the paired test ----------------------------------------------------------------------------


def test_wilcoxon_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(7)
    for shift in (-0.3, 0.0, 0.2):
        d = [round(rng.gauss(shift, 1), 3) for _ in range(400)] + [0.0] * 5
        expected = stats.wilcoxon(d, zero_method="wilcox", correction=True, method="approx", alternative="less")
        z = wilcoxon_z(d)
        assert 0.5 * math.erfc(-z / math.sqrt(2)) == pytest.approx(expected.pvalue, rel=1e-6)


POLICY = PromotionPolicy(min_events=500, window=1000, alpha=0.001, relative_margin=0.05, guard_events=3000,
                         cooldown=100)


def paired(champion_scale: float, challenger_scale: float, n: int = 1000, seed: int = 0) -> PairedLosses:
    rng = random.Random(seed)
    noise = [abs(rng.gauss(0, 1)) for _ in range(n)]
    return PairedLosses.from_losses([champion_scale * (e + rng.random() * 0.2) for e in noise],
                                    [challenger_scale * (e + rng.random() * 0.2) for e in noise])


def test_clearly_lower_errors_are_promoted_with_a_readable_reason():
    decision = decide_promotion(paired(2.4, 1.9), 2000, POLICY)
    assert decision.act
    assert decision.reason.startswith("challenger better: MAE ")
    assert "on 1000 paired events" in decision.reason and "Wilcoxon z=" in decision.reason
    assert decision.gain == pytest.approx(1 - 1.9 / 2.4, abs=0.02)


def test_small_or_insignificant_gains_are_not_promoted():
    small = decide_promotion(paired(2.0, 1.94), 2000, POLICY)  # 3 %: below the 5 % margin
    assert not small.act and "below margin 5.0%" in small.reason
    rng = random.Random(3)  # 10 % lower on average, but on a handful of noisy events
    a = [abs(rng.gauss(0, 3)) for _ in range(500)]
    b = [abs(rng.gauss(0, 2.7)) for _ in range(500)]
    noisy = decide_promotion(PairedLosses.from_losses(a, b), 2000, POLICY)
    assert not noisy.act
    worse = decide_promotion(paired(2.0, 2.5), 2000, POLICY)
    assert not worse.act and worse.gain < 0
    early = decide_promotion(paired(2.4, 1.9), 100, POLICY)
    assert not early.act and "has seen 100 of 500" in early.reason


def test_regression_rollback_when_the_previous_champion_is_clearly_better():
    undo = decide_rollback(paired(2.5, 2.0), 1500, POLICY)  # new champion 2.5, previous 2.0
    assert undo.act and "new champion worse than the one it replaced: new champion MAE" in undo.reason
    assert "vs previous" in undo.reason
    holds = decide_rollback(paired(2.0, 2.02), 1500, POLICY)
    assert not holds.act and holds.reason.startswith("new champion holds")


# -- drift on the absolute error ----------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e4])
def test_drift_on_a_rising_absolute_error_at_any_scale(scale):
    rng = random.Random(11)
    rising = DriftConfig(min_events=200).build()
    errors = [scale * abs(rng.gauss(0, 1 if i < 4000 else 2)) for i in range(8000)]
    fired = [rising.update_loss(e) for e in errors]
    assert not any(fired[:4000]) and any(fired[4000:4600])
    falling = DriftConfig(min_events=200).build()
    assert not any(falling.update_loss(scale * abs(rng.gauss(0, 2 if i < 4000 else 1))) for i in range(8000))


# -- the loop -----------------------------------------------------------------------------------


def noisy_targets(phases, seed=0):
    """Events whose target is ``level`` + N(0, 1) per phase: [(n, level), ...]."""
    rng = random.Random(seed)
    for n, level in phases:
        for _ in range(n):
            yield {"f": rng.random()}, level + rng.gauss(0, 1)


def test_regression_loop_promotes_the_lower_error_then_rolls_back():
    low, high = ConstantRegressor(0.0, name="low"), ConstantRegressor(3.0, name="high")
    publisher = InMemoryPublisher()
    version = publisher.publish(low, parent=None, metrics={}, note="bootstrap")
    publisher.promote(version, "bootstrap")
    config = LoopConfig(policy=POLICY, check_every=50, refresh_every=0, spawn_on_drift=False)
    system = LearningSystem("m", low, [high], config, publisher, version)
    assert system.task is Task.REGRESSION
    events = []
    for x, y in noisy_targets([(1500, 0.0), (1200, 3.0), (2500, 0.0)]):
        result = system.process_one(x, y)
        assert isinstance(result.prediction, float) and result.loss == abs(y - result.prediction)
        events += [e for e in result.events if e.kind != "drift"]
    assert [e.kind for e in events] == ["promotion", "rollback"], [e.reason for e in events]
    promotion, rollback = events
    assert 1500 < promotion.at < 2700 and promotion.learner == "high"
    assert "challenger better: MAE" in promotion.reason and "Wilcoxon" in promotion.reason
    assert rollback.at > 2700 and rollback.learner == "low" and "worse than the one it replaced" in rollback.reason
    assert system.champion is low and publisher.champion == system.champion_version
    stats = {s.learner_id: s for s in system.learner_stats()}
    assert stats["low"].task is Task.REGRESSION and stats["low"].window_mae < stats["high"].window_mae
    assert {"mae", "rmse", "r2", "window_mae"} <= set(system.served.summary())


def test_equal_regressors_never_flap():
    a, b = ConstantRegressor(1.0, name="a"), ConstantRegressor(1.05, name="b")
    system = LearningSystem("m", a, [b], LoopConfig(policy=POLICY, check_every=10, refresh_every=0),
                            InMemoryPublisher(), 1)
    for x, y in noisy_targets([(5000, 1.0)]):
        assert not [e for e in system.process_one(x, y).events if e.kind in ("promotion", "rollback")]


def test_a_model_has_one_task():
    with pytest.raises(ValueError, match="does classification, but this model's champion does regression"):
        LearningSystem("m", ConstantRegressor(0.0), [ConstantLearner(1, 0)])


def test_regression_system_checkpoint_resumes_exactly():
    spec = numeric_spec([f"x{k}" for k in range(10)], task=Task.REGRESSION)
    learners = build_candidates("linear,hat", spec)
    config = LoopConfig(drift=DriftConfig(min_events=200), refresh_every=0)
    system = LearningSystem("m", learners[0], learners[1:], config)
    events = list(iter_stream("friedman-drift", 3000, seed=3))
    for x, y in events[:2000]:
        system.process_one(x, y)
    again = LearningSystem.from_bytes(system.to_bytes())
    for x, y in events[2000:]:
        assert system.process_one(x, y).prediction == again.process_one(x, y).prediction
    assert system.served.summary() == again.served.summary()


def test_regression_streams_are_registered():
    assert stream_info("friedman-drift").task is Task.REGRESSION and stream_info("friedman-drift").n_phases == 3
    assert stream_info("friedman").task is Task.REGRESSION
    x, y = next(iter_stream("friedman-drift", 10))
    assert sorted(x) == [f"x{k}" for k in range(10)] and isinstance(y, float)
