"""The River pipeline Perennial imports as ``acme_tables.models:loan_pipeline``.

What the pipeline receives. Perennial wraps a River estimator returned by a factory in its
River learner, which puts the model spec's encoder in front of it
(`training.learners.river.SpecEncoder`): the pipeline never sees a raw row. With the
candidate parameter ``encoding: native`` (the one ``candidates.yaml`` sets) a row arrives
as River's trees and encoders like it:

- a categorical column as its string — a missing one as ``"__missing__"``, a category the
  table never had as itself;
- a numeric column as a float — a missing one imputed with the bootstrap mean, plus a
  ``<name>__missing`` 0/1 column for a column that has gaps;
- a boolean as 0.0 or 1.0.

(With the default ``encoding: dense`` categories would arrive one-hot already.) So this
pipeline does its own preprocessing the River way: numbers standardised, strings one-hot
(``"__missing__"`` is just one more category), then one logistic regression per class.

    PERENNIAL_ALLOWED_MODULES=acme_tables PYTHONPATH=examples/river_pipeline \\
        .venv/bin/perennial check acme_tables.models:loan_pipeline --params '{"encoding": "native"}'
"""

from __future__ import annotations

import numbers

from river import compose, linear_model, multiclass, optim, preprocessing


def loan_pipeline(lr: float = 0.05, l2: float = 0.0):  # noqa: ANN201 - a River pipeline
    """Numbers scaled, strings one-hot, one-vs-rest logistic regression (any labels)."""
    numeric = compose.SelectType(numbers.Number) | preprocessing.StandardScaler()
    categorical = compose.SelectType(str) | preprocessing.OneHotEncoder()
    return (numeric + categorical) | multiclass.OneVsRestClassifier(
        linear_model.LogisticRegression(optimizer=optim.SGD(lr), l2=l2))
