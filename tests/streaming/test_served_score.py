"""Live accuracy per served version and label delay, from labels joined to prediction records."""

import pytest
from prometheus_client import CollectorRegistry

from streaming.join import JoinStore
from streaming.metrics import TrainerMetrics
from streaming.served_score import ServedScore


def setup(**kwargs):
    registry = CollectorRegistry()
    return registry, ServedScore(TrainerMetrics(registry), "m", **kwargs), JoinStore(grace_s=60)


def test_accuracy_per_served_version_and_label_delay():
    registry, score, join = setup(min_events=2)
    # v1 answered 1 three times; the truth was 1, 1, 0. v2 answered 0 twice, truth 0, 0.
    served = [("a", 1, 1, 1), ("b", 1, 1, 1), ("c", 1, 1, 0), ("d", 2, 0, 0), ("e", 2, 0, 0)]
    for pid, version, answer, _ in served:
        join.add_prediction(pid, {"x": 1.0}, now=100.0, served=[version, answer, 100.0])
    for pid, _, _, truth in served:
        score.observe(join.add_label(f"ev-{pid}", pid, truth, now=102.5))
    acc = {v: registry.get_sample_value("perennial_served_accuracy", {"model": "m", "version": v}) for v in "12"}
    assert acc == {"1": 2 / 3, "2": 1.0}
    assert registry.get_sample_value("perennial_label_delay_seconds_count", {"model": "m"}) == 5
    assert registry.get_sample_value("perennial_label_delay_seconds_sum", {"model": "m"}) == 12.5


def test_label_before_its_prediction_is_scored_when_the_prediction_arrives():
    registry, score, join = setup(min_events=1)
    assert join.add_label("ev", "p", "cat", now=10.0) is None
    (joined,) = join.add_prediction("p", {"x": 1.0}, now=11.0, served=[7, "dog", 9.0])
    score.observe(joined)
    assert registry.get_sample_value("perennial_served_accuracy", {"model": "m", "version": "7"}) == 0.0
    assert registry.get_sample_value("perennial_label_delay_seconds_sum", {"model": "m"}) == 1.0


def test_version_series_are_bounded_and_too_few_labels_publish_nothing():
    registry, score, join = setup(min_events=1, keep_versions=2)
    for v in range(1, 5):
        join.add_prediction(f"p{v}", {"x": 1.0}, 0.0, served=[v, 1, 0.0])
        score.observe(join.add_label(f"e{v}", f"p{v}", 1, 1.0))
    live = {v for v in "1234" if registry.get_sample_value("perennial_served_accuracy", {"model": "m", "version": v}) is not None}
    assert live == {"3", "4"}
    registry2, score2, join2 = setup(min_events=5)
    join2.add_prediction("p", {"x": 1.0}, 0.0, served=[1, 1, 0.0])
    score2.observe(join2.add_label("e", "p", 1, 1.0))
    assert registry2.get_sample_value("perennial_served_accuracy", {"model": "m", "version": "1"}) is None


def test_checkpoints_written_before_served_metadata_still_restore():
    join = JoinStore()
    join.restore({"predictions": [["p", {"x": 1.0}, 5.0]], "pending": []})
    joined = join.add_label("e", "p", 1, 6.0)
    assert joined.features == {"x": 1.0} and joined.served is None


def test_window_slides():
    registry, score, join = setup(min_events=1, window=3)
    for i, (answer, truth) in enumerate([(1, 0), (1, 1), (1, 1), (1, 1)]):
        join.add_prediction(f"p{i}", {"x": 1.0}, 0.0, served=[1, answer, 0.0])
        score.observe(join.add_label(f"e{i}", f"p{i}", truth, 1.0))
    # the first (wrong) answer has left the 3-event window
    assert registry.get_sample_value("perennial_served_accuracy", {"model": "m", "version": "1"}) == 1.0


def test_regression_scores_the_served_value_by_its_absolute_error():
    registry = CollectorRegistry()
    score, join = ServedScore(TrainerMetrics(registry), "m", min_events=2, window=3, task="regression"), JoinStore()
    # v1 answered 10.0, 12.5, 7.0, 3.0 for truths 11.0, 10.0, 7.0, 3.5; v2 answered 1.0 for 4.0
    served = [("a", 1, 10.0, 11.0), ("b", 1, 12.5, 10.0), ("c", 1, 7.0, 7), ("d", 1, 3.0, 3.5), ("e", 2, 1.0, 4.0)]
    for pid, version, value, _ in served:
        join.add_prediction(pid, {"x": 1.0}, now=0.0, served=[version, value, 0.0])
    mae = []
    for pid, _, _, truth in served:
        score.observe(join.add_label(f"ev-{pid}", pid, truth, now=1.0))
        mae.append(registry.get_sample_value("perennial_served_mae", {"model": "m", "version": "1"}))
    # none before min_events; then the mean absolute error over the last 3 (window slides)
    assert mae[:4] == [None, 1.75, pytest.approx(3.5 / 3), pytest.approx(3.0 / 3)]
    assert registry.get_sample_value("perennial_served_mae", {"model": "m", "version": "2"}) is None  # 1 < min
    assert registry.get_sample_value("perennial_served_accuracy", {"model": "m", "version": "1"}) is None


def test_regression_skips_records_without_a_numeric_served_value():
    registry = CollectorRegistry()
    score, join = ServedScore(TrainerMetrics(registry), "m", min_events=1, task="regression"), JoinStore()
    join.add_prediction("p", {"x": 1.0}, 0.0, served=[1, "cat", 0.0])
    join.add_prediction("q", {"x": 1.0}, 0.0, served=[1, 2.0, 0.0])
    score.observe(join.add_label("e1", "p", 1.0, 1.0))
    score.observe(join.add_label("e2", "q", 2.5, 1.0))
    assert registry.get_sample_value("perennial_served_mae", {"model": "m", "version": "1"}) == 0.5


def test_the_window_sum_stays_exact_over_a_long_stream():
    registry = CollectorRegistry()
    score, join = ServedScore(TrainerMetrics(registry), "m", min_events=1, window=7, task="regression"), JoinStore()
    errors = [(i * 0.1) % 1.3 for i in range(1000)]
    for i, e in enumerate(errors):
        join.add_prediction(f"p{i}", {"x": 1.0}, 0.0, served=[1, 0.1 + e, 0.0])
        score.observe(join.add_label(f"e{i}", f"p{i}", 0.1, 1.0))
    expected = sum(abs((0.1 + e) - 0.1) for e in errors[-7:]) / 7
    assert registry.get_sample_value("perennial_served_mae", {"model": "m", "version": "1"}) == pytest.approx(expected)
