"""`training.checks`: each broken property of a learner is reported, and only that one."""

import pytest

from tests.training import toy_learners
from training.checks import CHECKS, run_checks
from training.spec import Task


def failures(make, task=Task.CLASSIFICATION):
    results = list(run_checks(make, task, n_events=200))
    assert [r.name for r in results] == list(CHECKS)
    return {r.name: r.detail for r in results if not r.passed}


def test_a_correct_learner_passes_every_check():
    assert failures(toy_learners.counting) == {}


@pytest.mark.parametrize(("make", "broken"), [
    (toy_learners.peeking, "predicting does not change the model"),
    (toy_learners.sticky_clone, "a clone is untrained"),
    (toy_learners.forgetful_snapshot, "a snapshot round-trip predicts identically"),
])
def test_each_broken_property_fails_alone_with_what_was_seen(make, broken):
    failed = failures(make)
    assert list(failed) == [broken]
    assert "differ on probe row" in failed[broken]


def test_a_crashing_learner_fails_with_the_exception():
    class Crashing(toy_learners.CountingLearner):
        def learn_one(self, x, y):
            raise RuntimeError("boom")

    failed = failures(lambda spec: Crashing(spec))
    assert "raised RuntimeError: boom" in failed["accepts raw rows"]


def test_regression_checks_a_regressor():
    from training.learners.candidates import build_candidates

    failed = failures(lambda spec: build_candidates(
        "training.learners.torch_module_examples:small_net", spec)[0], Task.REGRESSION)
    assert failed == {}
