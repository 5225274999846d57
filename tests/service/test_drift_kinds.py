"""Request-side drift per feature kind: PSI of categorical and boolean features from their
frequencies (unseen categories in their own bucket), the numeric fast path, and the missing
rate of every feature against the reference's."""

from __future__ import annotations

import random

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from service.batch import Batch
from service.drift import DriftMonitor
from streaming.metrics import ServiceMetrics
from training.reference import psi, reference_histograms
from training.rows import RowValidator
from training.spec import numeric_spec
from training.spec_inference import infer_spec

MODEL = "tab"


def training_rows(n: int = 2000, seed: int = 1) -> list[dict]:
    rnd = random.Random(seed)
    return [{"age": None if rnd.random() < 0.1 else rnd.gauss(40, 10),
             "city": rnd.choices(["Oslo", "Rome", "Lima"], weights=[6, 3, 1])[0],
             "vip": rnd.random() < 0.2} for _ in range(n)]


@pytest.fixture(scope="module")
def table():
    rows = training_rows()
    spec = infer_spec(rows, [0, 1] * (len(rows) // 2))
    return spec, reference_histograms(rows, spec=spec), RowValidator(spec)


def monitor(spec, reference, every: int = 100, window: int = 500):
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry)
    return DriftMonitor(MODEL, spec, reference, metrics, window=window, every=every), registry


def serve(mon: DriftMonitor, validator: RowValidator, rows: list[dict], batch: int = 50) -> None:
    for start in range(0, len(rows), batch):
        mon.observe(Batch([validator.row(r) for r in rows[start:start + batch]]))


def gauge(registry, name: str, feature: str) -> float | None:
    return registry.get_sample_value(name, {"model": MODEL, "feature": feature})


def test_the_reference_covers_every_kind_and_the_missing_rate(table):
    spec, reference, _ = table
    ref = reference["features"]
    assert [ref[n]["kind"] for n in spec.feature_names] == ["numeric", "categorical", "boolean"]
    assert ref["city"]["categories"] == list(spec.feature("city").categories) == ["Oslo", "Rome", "Lima"]
    assert len(ref["city"]["fractions"]) == 4 and ref["city"]["fractions"][-1] == 0.0  # the "other" bucket
    assert sum(ref["city"]["fractions"]) == pytest.approx(1.0)
    assert ref["vip"]["fractions"][1] == pytest.approx(0.2, abs=0.03)
    assert ref["age"]["missing"] == pytest.approx(spec.feature("age").missing_rate) == pytest.approx(0.1, abs=0.02)
    assert ref["city"]["missing"] == ref["vip"]["missing"] == 0.0


def test_traffic_like_training_is_stable(table):
    spec, reference, validator = table
    mon, registry = monitor(spec, reference)
    serve(mon, validator, training_rows(500, seed=2))
    for feature in ("age", "city", "vip"):
        assert gauge(registry, "perennial_feature_drift_psi", feature) < 0.05, feature


def test_a_shifted_categorical_distribution_raises_psi(table):
    spec, reference, validator = table
    mon, registry = monitor(spec, reference)
    rows = training_rows(500, seed=3)
    for i, row in enumerate(rows):  # Lima, 10% in training, becomes 70% of the traffic
        if i % 10 < 7:
            row["city"] = "Lima"
    serve(mon, validator, rows)
    assert gauge(registry, "perennial_feature_drift_psi", "city") > 0.25
    assert gauge(registry, "perennial_feature_drift_psi", "age") < 0.05  # the other features did not move
    assert mon.snapshot()["city"] == pytest.approx(psi(reference["features"]["city"], [r["city"] for r in rows]))


def test_an_unseen_category_counts_in_its_own_bucket(table):
    spec, reference, validator = table
    mon, registry = monitor(spec, reference)
    rows = training_rows(500, seed=4)
    for i, row in enumerate(rows):  # a third of the traffic from a city training never saw
        if i % 3 == 0:
            row["city"] = "Nairobi"
    serve(mon, validator, rows)
    value = gauge(registry, "perennial_feature_drift_psi", "city")
    assert value > 0.25
    # the same traffic with the new city mapped onto a known one would hardly move PSI: the
    # unseen category is what counts, not noise
    assert value == pytest.approx(psi(reference["features"]["city"], [r["city"] for r in rows]))
    assert psi(reference["features"]["city"], ["Oslo" if r["city"] == "Nairobi" else r["city"] for r in rows]) \
        < value / 2


def test_a_boolean_shift_raises_psi(table):
    spec, reference, validator = table
    mon, registry = monitor(spec, reference)
    rows = [{**r, "vip": True} for r in training_rows(500, seed=5)]
    serve(mon, validator, rows)
    assert gauge(registry, "perennial_feature_drift_psi", "vip") > 1.0


def test_missing_rate_per_feature_beside_the_reference_rate(table):
    spec, reference, validator = table
    mon, registry = monitor(spec, reference, every=100, window=400)
    assert gauge(registry, "perennial_feature_reference_missing_ratio", "age") == reference["features"]["age"]["missing"]
    assert gauge(registry, "perennial_feature_reference_missing_ratio", "city") == 0.0
    assert gauge(registry, "perennial_feature_missing_ratio", "age") is None  # nothing served yet
    rows = training_rows(400, seed=6)
    for i, row in enumerate(rows):  # half the rows arrive without age (absent key or null)
        if i % 2 == 0:
            if i % 4 == 0:
                del row["age"]
            else:
                row["age"] = None
    serve(mon, validator, rows, batch=50)  # published at 400 rows: the whole window
    assert gauge(registry, "perennial_feature_missing_ratio", "age") == pytest.approx(
        sum(r.get("age") is None for r in rows) / len(rows))
    assert gauge(registry, "perennial_feature_missing_ratio", "city") == 0.0
    # PSI of age is over the present values only: fewer of them, same distribution
    assert gauge(registry, "perennial_feature_drift_psi", "age") < 0.1
    assert mon.missing_ratios()["age"] > 0.5


def test_gauges_are_published_every_n_rows_over_the_window(table):
    spec, reference, validator = table
    mon, registry = monitor(spec, reference, every=100, window=200)
    rows = training_rows(100, seed=7)
    serve(mon, validator, rows[:99], batch=99)
    assert gauge(registry, "perennial_feature_drift_psi", "city") is None
    serve(mon, validator, rows[99:])  # the 100th row
    assert gauge(registry, "perennial_feature_drift_psi", "city") < 0.25  # 100 rows like training
    serve(mon, validator, [{**r, "city": "Lima"} for r in training_rows(200, seed=8)], batch=100)
    # the window now holds only the last 200 rows, every one of them Lima
    lima_only = psi(reference["features"]["city"], ["Lima"] * 200)
    assert gauge(registry, "perennial_feature_drift_psi", "city") == pytest.approx(lima_only)
    assert gauge(registry, "perennial_feature_missing_ratio", "city") == 0.0


def test_numeric_only_specs_take_the_array_fast_path():
    rnd = np.random.default_rng(0)
    train = rnd.normal(size=(2000, 2))
    spec = numeric_spec(["a", "b"], [0, 1])
    reference = reference_histograms([{"a": a, "b": b} for a, b in train.tolist()], spec=spec)
    mon, registry = monitor(spec, reference, every=100, window=1000)
    served = np.column_stack([rnd.normal(size=1000), rnd.normal(loc=3.0, size=1000)])
    for start in range(0, 1000, 100):
        chunk = served[start:start + 100]
        mon.observe(Batch(rows=[], numeric=chunk))  # the array is all the monitor reads
    assert gauge(registry, "perennial_feature_drift_psi", "a") < 0.05
    assert gauge(registry, "perennial_feature_drift_psi", "b") == pytest.approx(
        psi(reference["features"]["b"], served[:, 1]))
    assert gauge(registry, "perennial_feature_drift_psi", "b") > 1.0
    assert gauge(registry, "perennial_feature_missing_ratio", "a") == 0.0
    assert gauge(registry, "perennial_feature_reference_missing_ratio", "a") == 0.0


def test_references_written_before_kinds_still_compare_numeric_features():
    old = {"features": {"a": {"edges": [0.0], "fractions": [0.5, 0.5]}}}  # no kind, no missing
    spec = numeric_spec(["a"], [0, 1])
    mon, registry = monitor(spec, old, every=10)
    mon.observe(Batch(rows=[], numeric=np.full((10, 1), 5.0)))
    assert gauge(registry, "perennial_feature_drift_psi", "a") == pytest.approx(psi(old["features"]["a"], [5.0] * 10))
    assert gauge(registry, "perennial_feature_reference_missing_ratio", "a") is None  # nothing to compare with


def test_a_reference_of_another_kind_is_not_compared(table):
    spec, _, validator = table
    numeric_city = {"features": {"city": {"kind": "numeric", "edges": [0.0], "fractions": [0.5, 0.5]}}}
    mon, registry = monitor(spec, numeric_city, every=10)
    serve(mon, validator, training_rows(10, seed=9), batch=10)
    assert gauge(registry, "perennial_feature_drift_psi", "city") is None
    assert gauge(registry, "perennial_feature_missing_ratio", "city") == 0.0


def test_categories_the_spec_does_not_keep_share_the_other_bucket_with_unseen_ones():
    rows = training_rows()
    spec = infer_spec(rows, [0, 1] * (len(rows) // 2), max_categories=2)  # keeps Oslo and Rome
    ref = reference_histograms(rows, spec=spec)["features"]["city"]
    assert ref["categories"] == ["Oslo", "Rome"]
    assert ref["fractions"][-1] == pytest.approx(sum(r["city"] == "Lima" for r in rows) / len(rows))
    # to the monitor, Lima (trimmed from the spec) and Nairobi (never seen) are the same bucket
    assert psi(ref, ["Lima"] * 10 + ["Oslo"] * 90) == pytest.approx(psi(ref, ["Nairobi"] * 10 + ["Oslo"] * 90))


@pytest.mark.parametrize("window", [257, 1000])
def test_counts_kept_up_to_date_give_what_the_window_recomputed_gives(table, window):
    """The monitor counts only the rows that entered since its last refresh (less those they
    replaced); after every batch — small, large, wrapping round the ring, larger than the
    window — PSI and missing rates must be what the window's rows give from scratch."""
    spec, reference, validator = table
    mon, _ = monitor(spec, reference, every=37, window=window)
    rnd = random.Random(11)
    served: list[dict] = []
    for step in range(40):
        rows = training_rows(rnd.choice([1, 3, 50, 120, 400, 1500]), seed=100 + step)
        for r in rows[::7]:
            r["city"] = rnd.choice(["Nairobi", "Lima"])  # unseen and known (age is missing in 10 %)
        rows = [validator.row(r) for r in rows]
        mon.observe(Batch(rows))
        served = (served + rows)[-window:]
        expected_psi = {f: psi(reference["features"][f], [r[f] for r in served]) for f in ("age", "city", "vip")}
        assert mon.snapshot() == pytest.approx(expected_psi, rel=1e-9, abs=1e-12), step
        missing = {f: sum(r[f] is None for r in served) / len(served) for f in ("age", "city", "vip")}
        assert mon.missing_ratios() == pytest.approx(missing, rel=0, abs=1e-15), step


def test_refreshes_are_at_most_one_per_interval_and_flush_publishes_one_held_back(table):
    spec, reference, validator = table
    registry = CollectorRegistry()
    now = [100.0]
    mon = DriftMonitor(MODEL, spec, reference, ServiceMetrics(registry), window=500, every=100,
                       min_interval_s=1.0, clock=lambda: now[0])
    serve(mon, validator, training_rows(100, seed=12), batch=100)  # the first refresh is at once
    first = gauge(registry, "perennial_feature_drift_psi", "city")
    assert first is not None
    lima = [{**r, "city": "Lima"} for r in training_rows(400, seed=13)]
    serve(mon, validator, lima, batch=100)  # 400 more rows within the same second: held back
    assert gauge(registry, "perennial_feature_drift_psi", "city") == first
    mon.flush()  # still within the interval
    assert gauge(registry, "perennial_feature_drift_psi", "city") == first
    now[0] += 1.0
    mon.flush()  # what the model holder's watcher does every second
    window = [validator.row(r) for r in training_rows(100, seed=12) + lima]
    assert gauge(registry, "perennial_feature_drift_psi", "city") == pytest.approx(
        psi(reference["features"]["city"], [r["city"] for r in window]))
