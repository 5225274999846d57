"""The trainer's learner gauges follow each learner's task: accuracy/F1 or MAE/RMSE/R²."""

from prometheus_client import CollectorRegistry

from streaming.metrics import TrainerMetrics
from streaming.trainer_metrics import BoundTrainerMetrics
from training.loop_types import LearnerStats
from training.spec import Task


def test_regression_learners_export_error_gauges_and_series_of_gone_learners_are_removed():
    registry = CollectorRegistry()
    bound = BoundTrainerMetrics(TrainerMetrics(registry), "house")
    reg = LearnerStats("hat", "hat", "champion", 0.0, 0.0, 0.0, 500, Task.REGRESSION, 1.5, 2.0, 0.8, 1.6)
    cls = LearnerStats("logreg", "logreg", "challenger", 0.9, 0.85, 0.88, 500)
    bound.learner_stats([reg, cls])
    labels = {"model": "house", "learner": "hat", "role": "champion"}
    assert registry.get_sample_value("perennial_online_mae", labels) == 1.5
    assert registry.get_sample_value("perennial_online_rmse", labels) == 2.0
    assert registry.get_sample_value("perennial_online_r2", labels) == 0.8
    assert registry.get_sample_value("perennial_online_accuracy", labels) is None  # not for a regressor
    assert registry.get_sample_value(
        "perennial_online_accuracy", {"model": "house", "learner": "logreg", "role": "challenger"}) == 0.9
    bound.learner_stats([cls])  # the regressor retired
    assert registry.get_sample_value("perennial_online_mae", labels) is None
