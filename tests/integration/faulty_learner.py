"""A real River-protocol estimator with a bug that only live traffic finds: it passes the
service's warm-up (a row of zeros) and raises on any other row, so each request the version
serves is an internal error. Put inside a trained `RiverLearner` (a Perennial learner class,
as snapshots require); the server process imports it from the repository root."""

from __future__ import annotations


class FailsOnLiveTraffic:
    def __init__(self, labels: list) -> None:
        self.labels = list(labels)

    def predict_proba_one(self, x: dict) -> dict:
        if any(v != 0 for v in x.values()):
            raise RuntimeError("bug: this version cannot score real rows")
        return {c: 1 / len(self.labels) for c in self.labels}

    def learn_one(self, x: dict, y: object) -> None:
        pass

    def clone(self) -> FailsOnLiveTraffic:
        return FailsOnLiveTraffic(self.labels)


def faulty_version_of(learner):  # noqa: ANN001, ANN201
    """A `RiverLearner` like ``learner`` (same spec, classes and features) with the faulty estimator."""
    from training.learners.river import RiverLearner

    broken = RiverLearner(**{**learner.params(), "estimator": FailsOnLiveTraffic(learner.classes)})
    zeros = dict.fromkeys(learner.n_features_in, 0.0)
    for c in learner.classes:  # the estimator learns nothing; the wrapper learns classes and features
        broken.learn_one(zeros, c)
    return broken
