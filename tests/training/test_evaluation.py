import math

import pytest
from sklearn import metrics as skm

from training.drift import DriftConfig
from training.evaluation import PrequentialMetrics


def test_cumulative_metrics_match_scikit_learn():
    y_true = [0, 1, 2, 2, 1, 0, 0, 2, 1, 1]
    y_pred = [0, 2, 2, 2, 1, 0, 1, 2, 0, 1]
    m = PrequentialMetrics(window=3)
    for t, p in zip(y_true, y_pred, strict=True):
        m.update(t, p, {p: 0.8, t: 0.2} if t != p else {p: 0.8})
    assert m.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m.f1_macro == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert m.total.precision() == pytest.approx(skm.precision_score(y_true, y_pred, average="macro"))
    assert m.total.recall() == pytest.approx(skm.recall_score(y_true, y_pred, average="macro"))
    # window = last 3 events only
    assert m.window_accuracy == pytest.approx(skm.accuracy_score(y_true[-3:], y_pred[-3:]))
    assert m.window_f1 == pytest.approx(skm.f1_score(y_true[-3:], y_pred[-3:], average="macro"))


def test_log_loss_and_untrained_learner():
    m = PrequentialMetrics(window=10)
    m.update(1, 1, {1: 0.9, 0: 0.1})
    m.update(1, None, {})  # untrained: scored as a coin flip
    assert m.total.log_loss() == pytest.approx((-math.log(0.9) - math.log(0.5)) / 2)
    assert m.accuracy == 0.5


def test_correct_bits_keep_history():
    m = PrequentialMetrics(window=2, history=5)
    for i in range(7):
        m.update(1, i % 2, None)
    assert list(m.correct_bits) == [False, True, False, True, False]


def test_bad_window_refused():
    with pytest.raises(ValueError, match="window"):
        PrequentialMetrics(window=0)


def test_drift_detector_ignores_warmup_and_rejects_unknown():
    d = DriftConfig(min_events=10_000).build()
    assert not any(d.update(i > 500) for i in range(1000))
    with pytest.raises(ValueError, match="unknown drift detector"):
        DriftConfig(method="magic").build()
