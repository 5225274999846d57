"""The data plane over a real registry and a real River champion, without a server process."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import numpy as np
import pytest

from service.dataplane import DataPlane
from service.errors import Kind, ServingError
from service.metrics_exposition import build_service_metrics
from service.model_holder import Champion, ModelHolder, build_champion
from service.prediction_log import KafkaEventLog
from service.validation import batch_from_instances
from streaming.schemas import (
    ModelSchema,
    decode_prediction,
    encode_prediction_batch,
    prediction_records,
)
from training.learners.candidates import logistic_regression
from training.reference import reference_histograms
from training.registry import Registry
from training.streams import iter_stream

MODEL = "svc"


def sample(plane: DataPlane, name: str, **labels: str) -> float | None:
    """A metric's value as Prometheus would scrape it (prometheus_client's public reader)."""
    return plane.metrics.registry.get_sample_value(name, labels)


@pytest.fixture(scope="module")
def trained():
    data = list(iter_stream("agrawal", 300, 3))
    learner = logistic_regression()
    for x, y in data:
        learner.learn_one(x, y)
    return learner, [x for x, _ in data]


@pytest.fixture
def run():
    """Run coroutines on one loop per test, as the server does (batchers bind to their loop)."""
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.close()


@pytest.fixture
def plane(tmp_path: Path, trained) -> DataPlane:
    learner, xs = trained
    registry = Registry(tmp_path / "registry", key="test-key")
    info = registry.publish(MODEL, learner, reference=reference_histograms(xs))
    registry.promote(MODEL, info.version, "test")
    metrics = build_service_metrics()

    def build(loaded):
        return build_champion(loaded, metrics, max_batch_size=64, max_latency_ms=10_000, drift_every=10)

    holder = ModelHolder(registry, build, metrics)
    holder.poll_once()
    return DataPlane(holder, metrics, KafkaEventLog("", metrics), max_instances=8, admin_token="tok")


def test_predict_returns_ids_labels_and_probabilities(run, plane: DataPlane, trained):
    learner, xs = trained
    out = run(plane.predict(MODEL, [{"features": xs[0]}, [xs[1][f] for f in learner.n_features_in]]))
    assert out["model"] == MODEL and out["version"] == 1
    first, second = out["predictions"]
    assert first["prediction_id"] != second["prediction_id"]
    expected = learner.predict_proba_one(xs[0])
    assert first["probabilities"] == pytest.approx({str(k): v for k, v in expected.items()})
    assert first["label"] == learner.predict_one(xs[0])
    assert second["label"] == learner.predict_one(xs[1])


@pytest.mark.parametrize(
    ("instances", "kind", "needle"),
    [
        ([], Kind.INVALID, "empty"),
        ("x", Kind.MALFORMED, "must be a list"),
        ([[1.0]], Kind.INVALID, "has 1 values"),
        ([{"features": {"nope": 1.0}}], Kind.INVALID, "unknown feature(s) ['nope']"),
        ([{"x": 1}], Kind.MALFORMED, "keys ['x']"),
        ([[float("inf")] * 9], Kind.INVALID, "inf"),
        ([["1"] * 9], Kind.INVALID, "str '1'"),
        ([[True] * 9], Kind.INVALID, "bool"),
        ([[1.0] * 9] * 9, Kind.TOO_LARGE, "at most 8"),
    ],
)
def test_bad_instances_are_refused_with_the_reason(run, plane: DataPlane, instances, kind, needle):
    with pytest.raises(ServingError) as e:
        run(plane.predict(MODEL, instances))
    assert e.value.kind is kind
    assert needle in e.value.message


def test_unknown_model_is_not_found_and_counted_without_its_name(run, plane: DataPlane):
    with pytest.raises(ServingError) as e:
        run(plane.predict("other", [[1.0]]))
    assert e.value.kind is Kind.NOT_FOUND
    assert sample(plane, "perennial_request_errors_total", model="", transport="http", reason="not_found") == 1


def test_tensor_input_matches_instances(run, plane: DataPlane, trained):
    learner, xs = trained
    rows = np.array([[x[f] for f in learner.n_features_in] for x in xs[:5]])
    result = run(plane.infer_tensor(MODEL, "FP64", [5, 9], rows.ravel()))
    by_instances = run(plane.predict(MODEL, rows.tolist()))
    assert result.labels == [p["label"] for p in by_instances["predictions"]]
    with pytest.raises(ServingError, match="datatype 'INT64'"):
        run(plane.infer_tensor(MODEL, "INT64", [5, 9], rows.ravel()))
    with pytest.raises(ServingError, match=r"shape \[5, 8\]"):
        run(plane.infer_tensor(MODEL, "FP64", [5, 8], rows.ravel()))


def test_a_corrupt_version_is_refused_and_the_old_champion_keeps_serving(plane: DataPlane, trained):
    registry = plane.holder.registry
    info = registry.publish(MODEL, trained[0])
    registry.promote(MODEL, info.version, "about to corrupt")
    artifact = registry.root / MODEL / "versions" / str(info.version) / "artifact.bin"
    artifact.write_bytes(b"garbage")
    plane.holder.poll_once()
    assert plane.holder.get(MODEL).version == 1
    assert sample(plane, "perennial_model_swaps_total", model=MODEL, result="refused") == 1
    assert "checksum" in plane.holder.refusals[-1]["reason"]


def test_hot_swap_serves_the_new_version_and_retires_the_old(plane: DataPlane, trained):
    old = plane.holder.get(MODEL)
    registry = plane.holder.registry
    registry.promote(MODEL, registry.publish(MODEL, trained[0]).version, "swap")
    plane.holder.poll_once()
    assert plane.holder.get(MODEL).version == 2 and old._retired


def test_psi_gauges_follow_shifted_traffic(run, plane: DataPlane, trained):
    learner, xs = trained
    shifted = [{**x, "salary": x["salary"] * 10} for x in xs[:40]]
    run(plane.predict(MODEL, [{"features": x} for x in shifted[:8]]))
    for start in range(8, len(shifted), 8):
        run(plane.predict(MODEL, [{"features": x} for x in shifted[start : start + 8]]))
    assert sample(plane, "perennial_feature_drift_psi", model=MODEL, feature="salary") > 1.0
    assert sample(plane, "perennial_feature_drift_psi", model=MODEL, feature="age") < 0.5


def test_prediction_records_satisfy_the_streaming_schema(run, plane: DataPlane, trained):
    learner, xs = trained
    champ = plane.holder.get(MODEL)
    batch = batch_from_instances([{"features": xs[0]}], champ.validator, 8)
    result = run(plane._infer(champ, batch))
    value = encode_prediction_batch(plane._record(champ, batch, result))  # one record per request
    records = prediction_records(value)

    schema = ModelSchema(MODEL, tuple(champ.features), tuple(champ.classes))
    [decoded] = decode_prediction(value, schema).predictions
    assert decoded.prediction_id == result.prediction_ids[0] and decoded.version == 1
    assert decoded.label == learner.predict_one(xs[0])
    assert records[0]["features"] == {f: float(xs[0][f]) for f in champ.features}


def test_feedback_validation(run, plane: DataPlane):
    with pytest.raises(ServingError, match="unknown model"):
        run(plane.feedback({"model": "x", "prediction_id": "p", "label": 1}))
    with pytest.raises(ServingError, match="prediction_id"):
        run(plane.feedback({"model": MODEL, "label": 1}))
    with pytest.raises(ServingError) as e:
        run(plane.feedback({"model": MODEL, "prediction_id": "p", "label": [1]}))
    assert e.value.kind is Kind.INVALID
    with pytest.raises(ServingError, match="Kafka"):  # valid, but no broker configured here
        run(plane.feedback({"model": MODEL, "prediction_id": "p", "label": 1}))


def test_admin_token_checks(plane: DataPlane):
    with pytest.raises(ServingError) as e:
        plane.check_admin(None)
    assert e.value.kind is Kind.UNAUTHORIZED
    with pytest.raises(ServingError) as e:
        plane.check_admin("Bearer wrong")
    assert e.value.kind is Kind.FORBIDDEN
    plane.check_admin("Bearer tok")


def test_forward_uses_a_learners_row_interface_when_it_has_one(plane: DataPlane, trained):
    learner, xs = trained
    champ = plane.holder.get(MODEL)
    batch = batch_from_instances([{"features": x} for x in xs[:3]], champ.validator, 8)
    by_dicts = champ.forward(batch, observe=False)
    calls = []

    class Rows(type(champ.learner)):  # what a PyTorch learner does: one op on the numeric rows
        def predict_proba_rows(self, r: np.ndarray) -> np.ndarray:
            calls.append(r.shape)
            return by_dicts[: len(r)]

    fast = Champion(MODEL, champ.info, _as(champ.learner, Rows),
                    champ.spec, champ.metrics, champ.drift)
    np.testing.assert_array_equal(fast.forward(batch, observe=False), by_dicts)
    assert calls == [(3, 9)]


def test_the_vectorised_forward_answers_what_predict_proba_one_answers(run, plane: DataPlane, trained):
    """The logistic regression's `predict_proba_rows` (one matrix product per request) against
    its per-instance `predict_proba_one`, at every request size up to the limit."""
    learner, xs = trained
    champ = plane.holder.get(MODEL)
    assert champ._rows_fn is not None
    for n in range(1, 9):
        out = run(plane.predict(MODEL, [{"features": x} for x in xs[10:10 + n]]))
        for x, p in zip(xs[10:10 + n], out["predictions"], strict=True):
            expected = learner.predict_proba_one(x)
            assert p["probabilities"] == pytest.approx({str(k): v for k, v in expected.items()}, rel=0, abs=1e-12)
            assert p["label"] == max(expected, key=expected.get)


def test_the_vectorised_forward_follows_the_specs_feature_order(plane: DataPlane, trained):
    """A spec whose feature order is not the learner's `n_features_in`: the batch's columns are
    put in the learner's order before its fast path sees them."""
    from training.spec import numeric_spec

    learner, xs = trained
    champ = plane.holder.get(MODEL)
    spec = numeric_spec(list(reversed(learner.n_features_in)), learner.classes)
    turned = Champion(MODEL, champ.info, learner, spec, champ.metrics, champ.drift)
    assert turned._row_order is not None
    batch = batch_from_instances([{"features": x} for x in xs[:5]], turned.validator, 8)
    expected = [[learner.predict_proba_one(x)[c] for c in turned.classes] for x in xs[:5]]
    np.testing.assert_allclose(turned.forward(batch, observe=False), expected, rtol=0, atol=1e-12)


def _as(learner, cls):
    clone = copy.copy(learner)
    clone.__class__ = cls
    return clone
