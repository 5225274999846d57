"""`/predict`'s answer written as JSON text (`service.predictions.predict_json`) must be, byte
for byte, pydantic-core's encoding of the prediction dicts it replaces — whatever the classes
are called and whatever the numbers are."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import to_json

from service.predictions import InferResult, predict_json, prediction_ids, predictions


class Champ:
    """What a result needs of its champion (see `service.model_holder.Champion`)."""

    def __init__(self, classes: list, model: str = "m", version: int = 7) -> None:
        self.model, self.version, self.classes = model, version, classes
        self.json_classes = list(classes)
        self.class_keys = [str(c) for c in classes]
        self.label_texts = [to_json(c).decode() for c in self.json_classes]


def expected(result: InferResult) -> bytes:
    champ = result.champion
    return to_json({"model": champ.model, "version": champ.version, "predictions": predictions(result)},
                   inf_nan_mode="null")


numbers = st.one_of(st.floats(), st.just(math.nan), st.just(math.inf), st.floats(0, 1))
labels = st.one_of(st.text(max_size=6), st.integers(-10**6, 10**6), st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.lists(labels, min_size=1, max_size=5, unique_by=lambda c: (type(c), c)), st.integers(1, 20), st.data())
def test_classification_answers_are_the_dicts_encoded(classes, n, data):
    if len({str(c) for c in classes}) < len(classes):  # probability keys are the classes as text
        return
    k = len(classes)
    probs = np.array(data.draw(st.lists(numbers, min_size=n * k, max_size=n * k))).reshape(n, k)
    index = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    model = data.draw(st.text(max_size=8))
    result = InferResult(Champ(classes, model=model), probs, prediction_ids(n), index=index)
    assert predict_json(result) == expected(result)


@settings(max_examples=100, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=30))
def test_regression_answers_are_the_dicts_encoded(values):
    result = InferResult(Champ([]), None, prediction_ids(len(values)), values=np.array(values))
    assert predict_json(result) == expected(result)


def test_class_names_that_look_like_json_or_templates():
    classes = ['a"b', "{x}", "c,d", "é", "}{", "\\"]
    probs = np.full((2, len(classes)), 1 / len(classes))
    result = InferResult(Champ(classes), probs, prediction_ids(2), index=np.array([0, 5]))
    assert predict_json(result) == expected(result)
