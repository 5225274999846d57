"""Serving a model of a real table: categorical strings, booleans, missing cells, regression.

The data plane over a real registry and real learners built from a mixed spec, without a
server process (tests/integration/test_serving_tables.py runs the same through the server).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from service.batch import Batch
from service.batching import AdaptiveBatcher
from service.dataplane import DataPlane
from service.errors import Kind, ServingError
from service.metrics_exposition import build_service_metrics
from service.model_holder import ModelHolder, build_champion
from service.oip import tensors
from service.prediction_log import KafkaEventLog
from service.validation import TensorInput
from streaming.schemas import encode_prediction_batch, prediction_records
from tests.tables import table
from training.learners.base import Learner, PickleSnapshot
from training.learners.candidates import build_candidates
from training.registry import LoadedVersion, Registry
from training.rows import RowValidator
from training.spec import ModelSpec, Task, numeric_spec
from training.spec_inference import infer_spec

MODEL = "tab"


@pytest.fixture(scope="module")
def data():
    rows, labels, targets = table(400, 7)
    spec = infer_spec(rows, labels, target="buy")
    return rows, labels, targets, spec


@pytest.fixture
def run():
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.close()


def trained(name: str, spec: ModelSpec, rows: list[dict], labels: list) -> Learner:
    validator = RowValidator(spec)
    learner = build_candidates(name, spec)[0]
    for row, y in zip(rows, labels, strict=True):
        learner.learn_one(validator.row(row), y)
    return learner


def make_plane(registry: Registry, build=None, max_batch_size: int = 64) -> DataPlane:
    metrics = build_service_metrics()

    def default(loaded):
        return build_champion(loaded, metrics, max_batch_size=max_batch_size, max_latency_ms=10_000)

    holder = ModelHolder(registry, build or default, metrics)
    holder.poll_once()
    return DataPlane(holder, metrics, KafkaEventLog("", metrics), max_instances=16)


@pytest.fixture
def plane(tmp_path: Path, data) -> DataPlane:
    rows, labels, _, spec = data
    registry = Registry(tmp_path / "registry", key="test-key")
    info = registry.publish(MODEL, trained("logreg", spec, rows, labels))
    registry.promote(MODEL, info.version, "test")
    return make_plane(registry)


RAW = [
    {"features": {"income": 61.5, "city": "Rome", "vip": True, "age": 33, "channel": "web"}},
    {"features": {"income": 40, "city": "Oslo", "vip": False, "age": None, "channel": None}},  # nulls
    {"features": {"income": 55.0, "city": "Lima", "vip": False}},  # absent optional features
    {"features": {"income": 70.0, "city": "Reykjavik", "vip": True, "age": 50, "channel": "fax"}},  # unseen
]


def test_spec_rows_are_answered_like_the_learner_answers_them(run, plane: DataPlane, data):
    spec = data[3]
    champ = plane.holder.get(MODEL)
    out = run(plane.predict(MODEL, RAW + [_vector(spec, RAW[0])]))  # objects, and a list in spec order
    assert len(out["predictions"]) == 5
    validator = RowValidator(spec)
    for raw, p in zip(RAW + [RAW[0]], out["predictions"], strict=True):
        expected = champ.learner.predict_proba_one(validator.row(raw["features"]))
        assert p["probabilities"] == pytest.approx({str(k): v for k, v in expected.items()})
        assert p["label"] == max(expected, key=expected.get)


def _vector(spec: ModelSpec, instance: dict) -> list:
    return [instance["features"].get(name) for name in spec.feature_names]


@pytest.mark.parametrize(
    ("features", "needle"),
    [
        ({"income": "61", "city": "Rome", "vip": True}, "feature 'income' is str '61'; a numeric feature takes a finite number"),
        ({"income": 1.0, "city": "Rome", "vip": True, "colour": "red"}, "unknown feature(s) ['colour']"),
        ({"income": 1.0, "city": "x" * 300, "vip": True}, "feature 'city' is a string of 300 characters; at most 256"),
        ({"income": 1.0, "city": ["Rome"], "vip": True}, "a categorical feature takes a string"),
        ({"income": 1.0, "city": "Rome", "vip": "yes"}, "a boolean feature takes true or false"),
        ({"city": "Rome", "vip": True}, "lacks feature 'income'"),
        ({"income": None, "city": "Rome", "vip": True}, "lacks feature 'income'"),
    ],
)
def test_bad_rows_are_refused_with_the_feature_and_the_reason(run, plane: DataPlane, features, needle):
    with pytest.raises(ServingError) as e:
        run(plane.predict(MODEL, [RAW[0], {"features": features}]))
    assert e.value.kind is Kind.INVALID
    assert e.value.message.startswith("instance 1 ") and needle in e.value.message


def test_prediction_log_records_carry_the_raw_rows(run, plane: DataPlane, data):
    champ = plane.holder.get(MODEL)
    batch = Batch([champ.validator.row(r["features"]) for r in RAW])
    result = run(plane._infer(champ, batch))
    records = prediction_records(encode_prediction_batch(plane._record(champ, batch, result)))
    assert [r["features"]["city"] for r in records] == ["Rome", "Oslo", "Lima", "Reykjavik"]
    assert records[1]["features"]["age"] is None and records[2]["features"]["age"] is None
    assert records[1]["features"]["channel"] is None and records[3]["features"]["channel"] == "fax"
    assert json.loads(json.dumps(records))[0]["output"]["label"] in ("yes", "no")


def _columns(spec: ModelSpec, instances: list[dict]) -> tuple[list[TensorInput], dict]:
    """Per-feature OIP inputs as the metadata lists them, built the way a JSON client would:
    NaN for a missing number, the `missing` parameter for the rest."""
    inputs, missing = [], {}
    meta = {t["name"]: t for t in tensors.model_inputs(spec)}
    for name, t in meta.items():
        values = [i["features"].get(name) for i in instances]
        gaps = [k for k, v in enumerate(values) if v is None]
        if t["datatype"] == "FP64":
            data = [float("nan") if v is None else float(v) for v in values]
        elif t["datatype"] == "BYTES":
            data = ["" if v is None else v for v in values]
            if gaps:
                missing[name] = gaps
        else:
            data = [bool(v) for v in values]
            if gaps:
                missing[name] = gaps
        inputs.append(TensorInput(name, t["datatype"], [len(values), 1], data))
    return inputs, missing


def test_oip_per_feature_inputs_match_predict(run, plane: DataPlane, data):
    spec = data[3]
    by_predict = run(plane.predict(MODEL, RAW))
    inputs, missing = _columns(spec, RAW)
    result = run(plane.infer_inputs(MODEL, inputs, json.dumps(missing)))
    assert result.labels == [p["label"] for p in by_predict["predictions"]]
    np.testing.assert_allclose(result.probabilities,
                               [list(p["probabilities"].values()) for p in by_predict["predictions"]])
    # plain JSON: null for a missing value, no parameter needed
    nulls = [TensorInput(n, t.datatype, t.shape, [r["features"].get(n) for r in RAW]) for n, t in
             ((t.name, t) for t in inputs)]
    assert run(plane.infer_inputs(MODEL, nulls)).labels == result.labels
    # a missing categorical marked in the parameter (its placeholder value is ignored)
    gap = [{"features": {**RAW[0]["features"], "city": None}}]
    with pytest.raises(ServingError, match="lacks feature 'city'"):
        run(plane.infer_inputs(MODEL, *_as_json(_columns(spec, gap))))
    # an optional feature's input may be left out: every row missing it
    inputs, _ = _columns(spec, RAW)
    without_age = run(plane.infer_inputs(MODEL, [t for t in inputs if t.name != "age"]))
    by_rows = run(plane.predict(MODEL, [{"features": {k: v for k, v in r["features"].items() if k != "age"}}
                                        for r in RAW]))
    assert without_age.labels == [p["label"] for p in by_rows["predictions"]]


def _as_json(pair):
    inputs, missing = pair
    return inputs, json.dumps(missing)


def test_oip_bad_inputs_are_refused_specifically(run, plane: DataPlane, data):
    spec = data[3]
    inputs, _ = _columns(spec, RAW[:2])
    by_name = {t.name: t for t in inputs}

    def swap(name, **kw):
        return [dataclasses.replace(t, **kw) if t.name == name else t for t in inputs]

    cases = [
        (swap("income", datatype="BYTES", data=["61", "40"]), "input 'income' has datatype 'BYTES'; numeric feature"),
        (swap("city", data=["Rome", "x" * 300]), "row 1 feature 'city' is a string of 300 characters"),
        ([*inputs, TensorInput("colour", "BYTES", [2, 1], ["a", "b"])], "unknown input(s) ['colour']"),
        ([t for t in inputs if t.name != "income"], "no input for required feature(s) ['income']"),
        (swap("income", data=[1.0, float("nan")]), "row 1 feature 'income' is NaN"),
        (swap("city", data=["Rome", None]), "row 1 lacks feature 'city', which may not be missing"),
        (swap("vip", shape=[3, 1]), "input 'vip' has 2 values but shape [3, 1] needs 3"),
        (swap("city", shape=[2, 2]), "send [batch] or [batch, 1]"),
        ([*inputs, by_name["city"]], "input 'city' is sent twice"),
        ([TensorInput("features", "FP64", [2, 4], [1.0] * 8)], "this model takes one input per feature"),
        (swap("city", data=[1, 2]), "input 'city' holds int 1; BYTES data are strings"),
        ([], "the request has no inputs"),
    ]
    for bad, needle in cases:
        with pytest.raises(ServingError) as e:
            run(plane.infer_inputs(MODEL, bad))
        assert e.value.kind is Kind.INVALID and needle in e.value.message, (needle, e.value.message)
    for missing, needle in [("{", "not JSON"), ('{"city": [5]}', "marks row 5"), ('{"nope": [0]}', "unknown feature")]:
        with pytest.raises(ServingError, match="parameter 'missing'") as e:
            run(plane.infer_inputs(MODEL, inputs, missing))
        assert needle in e.value.message


def test_metadata_lists_one_input_per_feature_and_the_spec(plane: DataPlane, data):
    spec = data[3]
    meta = tensors.model_metadata(plane.holder.get(MODEL))
    assert meta["inputs"] == [
        {"name": f.name, "datatype": {"numeric": "FP64", "categorical": "BYTES", "boolean": "BOOL"}[f.kind.value],
         "shape": [-1, 1]} for f in spec.features
    ]
    assert ModelSpec.from_dict(meta["parameters"]["spec"]) == spec
    assert meta["parameters"]["optional_features"] == [f.name for f in spec.features if f.optional]
    assert set(meta["parameters"]["optional_features"]) == {"age", "channel"}
    assert "missing" in meta["parameters"]["missing_values"]
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities", "prediction_id"]
    numeric = numeric_spec(["a", "b"], [0, 1])
    assert tensors.model_inputs(numeric) == [{"name": "features", "datatype": "FP32", "shape": [-1, 2]}]


def test_models_listing_exposes_the_spec(run, plane: DataPlane, data):
    entry = run(plane.list_models())["models"][0]
    assert entry["spec"] == data[3].to_dict() and entry["task"] == "classification"
    assert entry["feature_names"] == list(data[3].feature_names) and entry["classes"] == ["no", "yes"]


def test_feedback_rows_and_labels_are_checked_against_the_spec(run, plane: DataPlane):
    row = RAW[1]["features"]
    for body, needle in [
        ({"model": MODEL, "features": row, "label": "maybe"}, "label 'maybe' (str) is not a class"),
        ({"model": MODEL, "features": row, "label": 1.5}, "a classification label is a string"),
        ({"model": MODEL, "features": {**row, "income": "high"}, "label": "yes"}, "features: feature 'income' is str"),
        ({"model": MODEL, "features": {**row, "zip": 1}, "label": "yes"}, "unknown feature(s) ['zip']"),
        ({"model": MODEL, "features": "x", "label": "yes"}, "features must be an object"),
        ({"model": MODEL, "prediction_id": "p"}, "needs 'label'"),
    ]:
        with pytest.raises(ServingError) as e:
            run(plane.feedback(body))
        assert e.value.kind is Kind.INVALID and needle in e.value.message, (needle, e.value.message)
    with pytest.raises(ServingError, match="Kafka"):  # valid; no broker configured here
        run(plane.feedback({"model": MODEL, "features": row, "label": "yes"}))


def test_feedback_records_carry_the_validated_row(data):
    from service.feedback_validation import check_feedback

    spec = data[3]
    records = check_feedback([{"model": MODEL, "features": {"city": "Lima", "income": 12, "vip": False},
                               "label": "no", "event_id": "e"}],
                             4, {MODEL: RowValidator(spec)}, lambda: 1.0)
    assert records == [{"event_id": "e", "model": MODEL, "timestamp": 1.0, "label": "no",
                        "features": {n: {"city": "Lima", "income": 12.0, "vip": False}.get(n) for n in spec.feature_names}}]
    assert list(records[0]["features"]) == list(spec.feature_names)


def test_promotion_to_another_learner_keeps_the_accepted_input(run, plane: DataPlane, data):
    rows, labels, _, spec = data
    before = tensors.model_metadata(plane.holder.get(MODEL))
    registry = plane.holder.registry
    info = registry.publish(MODEL, trained("hat", spec, rows, labels))
    registry.promote(MODEL, info.version, "another learner family")
    plane.holder.poll_once()
    champ = plane.holder.get(MODEL)
    assert champ.version == info.version and champ.info.learner == "hat"
    out = run(plane.predict(MODEL, RAW))
    assert len(out["predictions"]) == len(RAW) and out["version"] == info.version
    after = tensors.model_metadata(champ)
    assert after["inputs"] == before["inputs"] and after["parameters"]["spec"] == before["parameters"]["spec"]
    inputs, missing = _columns(spec, RAW)
    assert len(run(plane.infer_inputs(MODEL, inputs, json.dumps(missing))).labels) == len(RAW)


def test_batcher_merges_and_splits_batches_of_raw_rows(run, tmp_path: Path, data):
    rows, labels, _, spec = data
    registry = Registry(tmp_path / "registry", key="test-key")
    registry.promote(MODEL, registry.publish(MODEL, trained("logreg", spec, rows, labels)).version, "test")
    plane = make_plane(registry, max_batch_size=3)  # requests of 2 and 4 rows straddle a cap of 3
    requests = [RAW[:2], RAW, RAW[1:3], RAW[::-1]]
    alone = [run(plane.predict(MODEL, r)) for r in requests]

    async def together():
        return await asyncio.gather(*(plane.predict(MODEL, r) for r in requests))

    for a, b in zip(alone, run(together()), strict=True):  # a request of 4 rows is always split
        assert [p["probabilities"]["yes"] for p in a["predictions"]] == pytest.approx(
            [p["probabilities"]["yes"] for p in b["predictions"]])


def test_adaptive_batcher_concatenates_numeric_arrays(run):
    seen = []

    def fn(batch: Batch) -> np.ndarray:
        seen.append(batch.numeric.shape)
        return batch.numeric.sum(axis=1)

    batcher = AdaptiveBatcher(fn, max_batch_size=8, max_latency_ms=10_000)

    async def go():
        parts = [Batch([{"a": float(i)}] * 2, np.full((2, 1), float(i))) for i in range(3)]
        return await asyncio.gather(*(batcher.submit(p) for p in parts))

    outs = run(go())
    assert [o.tolist() for o in outs] == [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]
    assert sum(n for n, _ in seen) == 6


# -- regression ---------------------------------------------------------------------------------


class MeanByCity(PickleSnapshot, Learner):
    """A minimal regressor of the spec's raw rows: the mean target per city (overall mean for
    an unseen or missing city)."""

    name = "mean-by-city"

    def __init__(self, spec: ModelSpec | None = None) -> None:
        self.spec = spec
        self._sums: dict = {}

    def learn_one(self, x, y) -> None:
        for key in (x.get("city"), None):
            s, n = self._sums.get(key, (0.0, 0))
            self._sums[key] = (s + y, n + 1)

    def predict_one(self, x):
        s, n = self._sums.get(x.get("city")) or self._sums.get(None, (0.0, 0))
        return s / n if n else None

    def params(self) -> dict:
        return {"spec": self.spec}

    def clone(self) -> Learner:
        return MeanByCity(self.spec)


@pytest.fixture
def regression(tmp_path: Path, data):
    """A data plane serving a regression champion (a test learner: the registry loads only
    training's learner classes, so the holder's build swaps it in for the published one)."""
    rows, labels, targets, _ = data
    spec = infer_spec(rows, targets, target="spend")
    assert spec.task is Task.REGRESSION
    learner = MeanByCity(spec)
    validator = RowValidator(spec)
    for row, y in zip(rows, targets, strict=True):
        learner.learn_one(validator.row(row), y)
    registry = Registry(tmp_path / "registry", key="test-key")
    registry.promote(MODEL, registry.publish(MODEL, trained("logreg", data[3], rows, labels)).version, "test")
    metrics = build_service_metrics()

    def build(loaded):
        info = dataclasses.replace(loaded.info, spec=spec.to_dict())
        return build_champion(LoadedVersion(info, learner), metrics, max_batch_size=8, max_latency_ms=10_000)

    return make_plane(registry, build), learner, spec


def test_regression_predict_returns_values_and_oip_a_prediction(run, regression):
    plane, learner, spec = regression
    out = run(plane.predict(MODEL, RAW))
    validator = RowValidator(spec)
    assert [p["value"] for p in out["predictions"]] == pytest.approx(
        [learner.predict_one(validator.row(r["features"])) for r in RAW])
    assert all(set(p) == {"prediction_id", "value"} for p in out["predictions"])
    champ = plane.holder.get(MODEL)
    meta = tensors.model_metadata(champ)
    assert meta["outputs"] == [{"name": "prediction", "datatype": "FP64", "shape": [-1]},
                               {"name": "prediction_id", "datatype": "BYTES", "shape": [-1]}]
    assert meta["parameters"]["task"] == "regression" and "classes" not in meta["parameters"]
    inputs, missing = _columns(spec, RAW)
    result = run(plane.infer_inputs(MODEL, inputs, json.dumps(missing)))
    [(name, datatype, shape, values), _] = tensors.output_tensors(result, [])
    assert (name, datatype, shape) == ("prediction", "FP64", [len(RAW)])
    np.testing.assert_allclose(values, [p["value"] for p in out["predictions"]])
    with pytest.raises(ServingError, match=r"unknown output\(s\) \['probabilities'\]"):
        tensors.requested_outputs(["probabilities"], champ)
    records = prediction_records(encode_prediction_batch(
        plane._record(champ, Batch([validator.row(r["features"]) for r in RAW]), result)))
    assert records[0]["output"] == {"value": pytest.approx(result.values[0])}


def test_regression_feedback_needs_a_number(run, regression):
    plane, _, _ = regression
    row = RAW[0]["features"]
    with pytest.raises(ServingError, match="a regression model's label is a finite number") as e:
        run(plane.feedback({"model": MODEL, "features": row, "label": "high"}))
    assert e.value.kind is Kind.INVALID
    with pytest.raises(ServingError, match="Kafka"):  # valid; no broker configured here
        run(plane.feedback({"model": MODEL, "features": row, "label": 12.5}))
