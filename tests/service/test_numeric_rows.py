"""The per-request check of numeric instances (`service.numeric_rows`) must accept exactly what
the per-instance validator accepts, with the same rows, and leave every refusal to it (so the
messages stay as specific as they were): compared here on generated requests, valid and not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import validation
from service.errors import ServingError
from service.numeric_rows import numeric_batch
from training.rows import RowValidator
from training.spec import numeric_spec

NAMES = ["a", "b", "c"]
VALIDATOR = RowValidator(numeric_spec(NAMES))

numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-2**60, 2**60))
odd_values = st.one_of(st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.booleans(), st.none(),
                       st.text(max_size=3), st.just(10**400), st.lists(st.integers(), max_size=2))


@st.composite
def values(draw):
    return draw(odd_values) if draw(st.integers(0, 59)) == 0 else draw(numbers)  # mostly valid requests


@st.composite
def instance(draw, keys: list[str]):
    if draw(st.integers(0, 9)) == 0:  # a list of values in feature order (sometimes the wrong length)
        return [draw(values()) for _ in range(draw(st.sampled_from([3] * 10 + [2, 4])))]
    features = {k: draw(values()) for k in keys}
    if draw(st.integers(0, 59)) == 0:
        features.pop(draw(st.sampled_from(keys)))
    if draw(st.integers(0, 59)) == 0:
        features["zz"] = 1.0
    return {"features": features} if draw(st.integers(0, 59)) else {"features": features, "extra": 1}


@st.composite
def requests(draw):
    keys = draw(st.permutations(NAMES)) if draw(st.booleans()) else NAMES
    if draw(st.integers(0, 9)) == 0:  # the keys of each instance in an order of its own
        return draw(st.lists(st.permutations(NAMES).flatmap(instance), min_size=1, max_size=12))
    return draw(st.lists(instance(keys), min_size=1, max_size=12))


def per_instance(instances: list, monkeypatch: pytest.MonkeyPatch):
    """What `batch_from_instances` answers without the fast path: the batch, or the refusal."""
    with monkeypatch.context() as m:
        m.setattr(validation, "numeric_batch", lambda *_: None)
        try:
            return validation.batch_from_instances(instances, VALIDATOR, 64)
        except ServingError as e:
            return e


@settings(max_examples=150, deadline=None)  # 400 took 11 s of test-fast
@given(requests())
def test_the_fast_path_agrees_with_the_per_instance_validator(instances):
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected = per_instance(instances, monkeypatch)
    fast = numeric_batch(instances, VALIDATOR)
    if isinstance(expected, ServingError):
        assert fast is None  # a refusal is always the validator's own
        with pytest.raises(ServingError) as e:
            validation.batch_from_instances(instances, VALIDATOR, 64)
        assert (e.value.kind, e.value.message) == (expected.kind, expected.message)
        return
    if fast is not None:
        assert fast.rows == expected.rows
        assert all(type(v) is float for row in fast.rows for v in row.values())
        np.testing.assert_array_equal(fast.numeric, expected.numeric)
    got = validation.batch_from_instances(instances, VALIDATOR, 64)
    assert got.rows == expected.rows


def test_uniform_requests_take_the_fast_path():
    floats = [{"features": {"a": 1.0, "b": 2.5, "c": -3.0}} for _ in range(4)]
    batch = numeric_batch(floats, VALIDATOR)
    assert batch.rows[0] is floats[0]["features"]  # already what the validator would return
    ints = numeric_batch([{"features": {"a": 1, "b": 2.5, "c": 3}}] * 4, VALIDATOR)
    assert ints.rows[0] == {"a": 1.0, "b": 2.5, "c": 3.0} and type(ints.rows[0]["a"]) is float
    assert numeric_batch([[1, 2, 3], [4.0, 5, 6]] * 2, VALIDATOR).numeric.tolist() == [[1, 2, 3], [4, 5, 6]] * 2
    # valid, but left to the validator: mixed forms, another key order, fewer instances than pays
    assert numeric_batch([[1, 2, 3], {"features": {"a": 1, "b": 2, "c": 3}}] * 2, VALIDATOR) is None
    assert numeric_batch([{"features": {"c": 3, "b": 2, "a": 1}}] * 4, VALIDATOR) is None
    assert numeric_batch(floats[:3], VALIDATOR) is None
