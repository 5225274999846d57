"""Text and tensor features (issue 10, point 5): the spec records them, the one validator
checks them, the encoders pass them to a model that reads them (and the built-in learners
refuse text by name), a user's network gets an image batch as ``[n, C, H, W]``, the learner
contract runs on a user's own spec, drift watches a text's length and a tensor's mean, and
bootstrap reads them from a JSON Lines file."""

from __future__ import annotations

import json
import random

import pytest
import torch
from torch import nn

from training.bootstrap import BootstrapConfig, train_candidates
from training.check_rows import spec_stream
from training.checks import CHECKS, run_checks
from training.encoding import RowEncoder
from training.learners.candidates import build_candidates
from training.reference import psi, reference_histograms
from training.rows import RowError, RowProblem, RowValidator
from training.spec import FeatureKind, FeatureSpec, ModelSpec, SpecError, TargetSpec, Task
from training.spec_inference import infer_spec
from training.streams import iter_stream

CNN = "training.learners.torch_module_examples:tiny_cnn"
TFIDF = "training.learners.text_examples:tfidf_classifier"

IMAGE_SPEC = ModelSpec(Task.CLASSIFICATION, TargetSpec("digit", (0, 1, 2)),
                       (FeatureSpec("image", FeatureKind.TENSOR, shape=(1, 4, 4)),))
TEXT_SPEC = ModelSpec(Task.CLASSIFICATION, TargetSpec("sentiment", ("neg", "pos", "mixed")),
                      (FeatureSpec("review", FeatureKind.TEXT), FeatureSpec("stars", optional=True)))


# -- the spec ---------------------------------------------------------------------------------


def test_text_and_tensor_features_round_trip_through_the_spec_file_form():
    for spec in (IMAGE_SPEC, TEXT_SPEC):
        assert ModelSpec.from_dict(json.loads(spec.to_json())) == spec
    assert IMAGE_SPEC.tensor_input.shape == (1, 4, 4) and TEXT_SPEC.tensor_input is None
    assert TEXT_SPEC.text_features == ("review",)
    assert "shape [1, 4, 4]" in IMAGE_SPEC.describe()


@pytest.mark.parametrize("feature, message", [
    ({"name": "image", "kind": "tensor"}, "needs a shape of positive integers"),
    ({"name": "image", "kind": "tensor", "shape": [1, 0, 8]}, "needs a shape of positive integers"),
    ({"name": "age", "kind": "numeric", "shape": [3]}, "only a tensor feature has a shape"),
    ({"name": "image", "kind": "tensor", "shape": "1x8x8"}, "shape must be a list of integers"),
])
def test_a_bad_tensor_declaration_is_refused_by_name(feature, message):
    with pytest.raises(SpecError, match=message):
        ModelSpec.from_dict({"task": "classification", "target": "y", "features": [feature]})


def test_free_text_and_nested_lists_are_inferred_and_categories_stay_categories():
    rows = [{"review": f"the parcel number {i} arrived late and damaged", "city": ["Oslo", "Rome"][i % 2],
             "image": [[i, 1.0], [2.0, 3.0]]} for i in range(30)]
    spec = infer_spec(rows, [i % 2 for i in range(30)])
    kinds = {f.name: (f.kind, f.shape) for f in spec.features}
    assert kinds == {"review": (FeatureKind.TEXT, ()), "city": (FeatureKind.CATEGORICAL, ()),
                     "image": (FeatureKind.TENSOR, (2, 2))}
    forced = infer_spec(rows, [0, 1] * 15, kinds={"review": FeatureKind.CATEGORICAL, "city": FeatureKind.TEXT})
    assert [f.kind for f in forced.features][:2] == [FeatureKind.CATEGORICAL, FeatureKind.TEXT]


def test_tensors_of_two_shapes_in_one_column_are_refused_with_both_shapes():
    with pytest.raises(SpecError, match=r"shapes \[2\] and \[3\]"):
        infer_spec([{"v": [1, 2]}, {"v": [1, 2, 3]}], [0, 1])
    with pytest.raises(SpecError, match="ragged"):
        infer_spec([{"v": [[1, 2], [3]]}], [0])


# -- the validator ----------------------------------------------------------------------------


def test_a_tensor_is_accepted_nested_or_flat_and_comes_back_flat():
    v = RowValidator(IMAGE_SPEC)
    nested = [[[float(r * 4 + c) for c in range(4)] for r in range(4)]]
    assert v.row({"image": nested}) == {"image": [float(i) for i in range(16)]}
    assert v.row({"image": list(range(16))})["image"] == [float(i) for i in range(16)]
    assert v.row(nested) == v.row({"image": nested})  # the whole input is one tensor: a list is it


@pytest.mark.parametrize("value, problem, words", [
    ([[[0.0] * 4] * 4] * 2, RowProblem.WRONG_SHAPE, "a list of 2 at depth 0"),
    ([[[0.0] * 3] * 4], RowProblem.WRONG_SHAPE, "a list of 3 at depth 2"),
    ([0.0] * 15, RowProblem.WRONG_SHAPE, "has 15 values"),
    ([0.0] * 15 + [float("nan")], RowProblem.NAN, "NaN or infinity"),
    ([0.0] * 15 + ["x"], RowProblem.WRONG_TYPE, "holds str 'x'"),
    (7, RowProblem.WRONG_TYPE, "a tensor feature takes nested lists of shape [1, 4, 4] or 16 numbers"),
    (None, RowProblem.MISSING_FEATURE, "may not be missing"),
])
def test_a_bad_tensor_names_the_feature_and_what_is_accepted(value, problem, words):
    with pytest.raises(RowError) as e:
        RowValidator(IMAGE_SPEC).row({"image": value})
    assert e.value.problem is problem and e.value.feature == "image" and words in e.value.detail


def test_text_is_a_string_up_to_the_spec_limit():
    v = RowValidator(TEXT_SPEC)
    assert v.row({"review": "fine"}) == {"review": "fine", "stars": None}
    with pytest.raises(RowError, match="a text feature takes a string"):
        v.row({"review": 3})
    with pytest.raises(RowError, match="at most 100000 are accepted") as e:
        v.row({"review": "x" * 100_001})
    assert e.value.problem is RowProblem.OVERSIZED


# -- encoders and learners --------------------------------------------------------------------


@pytest.mark.parametrize("builtin", ["logreg", "hat", "arf", "mlp", "training.learners.torch_module_examples:small_net"])
def test_a_builtin_learner_refuses_text_naming_the_feature_and_the_way_out(builtin):
    with pytest.raises(SpecError, match=r"text feature\(s\) \['review'\].*TFIDF"):
        build_candidates(builtin, TEXT_SPEC)


def test_a_tensor_is_one_column_per_value_and_text_stays_a_string_for_a_model_that_reads_it():
    assert RowEncoder(IMAGE_SPEC).columns[:2] == ("image[0]", "image[1]")
    encoded = RowEncoder(TEXT_SPEC, text=True).encode({"review": "so good", "stars": None})
    assert encoded["review"] == "so good" and encoded["stars__missing"] == 1.0


class ShapeRecorder(nn.Module):
    """A network that remembers the shapes of the batches it was given."""

    def __init__(self, n_outputs: int) -> None:
        super().__init__()
        self.head = nn.Linear(16, n_outputs)
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        return self.head(x.flatten(1))


def shape_recorder(n_outputs: int) -> nn.Module:
    return ShapeRecorder(n_outputs)


def test_a_users_network_gets_the_image_batch_as_n_c_h_w(monkeypatch):
    from training.learners.allowlist import ALLOWED_ENV

    monkeypatch.setenv(ALLOWED_ENV, "tests.training")  # this module, for this test only
    learner = build_candidates(f"{__name__}:shape_recorder", IMAGE_SPEC,
                               **{f"{__name__}:shape_recorder": {"batch_size": 4}})[0]
    events = spec_stream(IMAGE_SPEC, 12)
    learner.learn_many([x for x, _ in events], [y for _, y in events])
    learner.predict_proba_many([x for x, _ in events[:3]])
    seen = set(learner._net.seen)
    assert seen and all(len(s) == 4 and s[1:] == (1, 4, 4) for s in seen), seen


@pytest.mark.parametrize("factory, spec", [(CNN, IMAGE_SPEC), (TFIDF, TEXT_SPEC)], ids=["cnn-image", "tfidf-text"])
def test_the_learner_contract_runs_on_a_users_own_spec(factory, spec):
    results = {r.name: r for r in run_checks(lambda s: build_candidates(factory, s)[0], n_events=200, spec=spec)}
    for check in CHECKS:
        assert results[check].passed, f"{factory}: {check}: {results[check].detail}"
    assert "tensor" in results["accepts raw rows"].detail or "text" in results["accepts raw rows"].detail


def test_the_text_classifier_learns_words():
    rng = random.Random(1)
    words = {"neg": ("broken", "late", "refund"), "pos": ("love", "great", "fast"), "mixed": ("but", "though", "okay")}
    v = RowValidator(TEXT_SPEC)
    learner = build_candidates(TFIDF, TEXT_SPEC)[0]
    hits = 0
    for i in range(600):
        y = rng.choice(("neg", "pos", "mixed"))
        x = v.row({"review": f"the order was {rng.choice(words[y])} and {rng.choice(words[y])} overall"})
        if i >= 300:
            hits += learner.predict_one(x) == y
        learner.learn_one(x, y)
    assert hits / 300 > 0.9  # three classes, words that say which (chance: 0.33)


# -- drift reference ----------------------------------------------------------------------------


def test_drift_watches_a_texts_length_and_a_tensors_mean():
    rows = [x for x, _ in spec_stream(TEXT_SPEC, 300)]
    ref = reference_histograms(rows, spec=TEXT_SPEC)["features"]
    assert ref["review"]["kind"] == "text" and ref["review"]["edges"]
    assert psi(ref["review"], [r["review"] for r in rows]) < 0.05
    assert psi(ref["review"], ["a much longer review than anything training saw " * 5] * 100) > 1
    images = [x for x, _ in spec_stream(IMAGE_SPEC, 300)]
    ref = reference_histograms(images, spec=IMAGE_SPEC)["features"]["image"]
    assert ref["kind"] == "tensor"
    assert psi(ref, [[5.0] * 16] * 100) > 1  # far brighter images than training's


def test_the_service_drift_monitor_takes_text_and_tensor_rows():
    from service.batch import Batch
    from service.drift import DriftMonitor
    from service.metrics_exposition import build_service_metrics

    for spec in (TEXT_SPEC, IMAGE_SPEC):
        rows = [x for x, _ in spec_stream(spec, 400)]
        monitor = DriftMonitor("m", spec, reference_histograms(rows, spec=spec), build_service_metrics(), every=100)
        monitor.observe(Batch(rows[:200]))
        name = spec.features[0].name
        assert monitor.snapshot()[name] < 0.1 and monitor.missing_ratios()[name] == 0.0


# -- bootstrap from JSON Lines ------------------------------------------------------------------


def test_bootstrap_reads_text_from_json_lines_and_trains_a_text_pipeline(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "reviews.jsonl"
    with path.open("w") as f:
        for _ in range(300):
            good = rng.random() < 0.5
            words = ["love", "great", "fast"] if good else ["broken", "late", "refund"]
            review = " ".join(["the", "order", "was", rng.choice(words), "and", rng.choice(words)])
            f.write(json.dumps({"review": review, "stars": rng.choice([None, 4 if good else 2]),
                                "sentiment": "pos" if good else "neg"}) + "\n")
    events = list(iter_stream(str(path), target="sentiment"))
    assert len(events) == 300 and events[0][1] in ("pos", "neg")
    # nine distinct reviews read as categories; --text (kinds) says what they are
    result = train_candidates(events, BootstrapConfig(candidates=(TFIDF,), target="sentiment", augment_copies=0,
                                                      kinds={"review": FeatureKind.TEXT}))
    assert [f.kind for f in result.spec.features] == [FeatureKind.TEXT, FeatureKind.NUMERIC]
    assert result.champion.validation["accuracy"] > 0.9


def test_a_users_network_serves_dense_rows_exactly_as_its_rows_of_dicts():
    """`predict_proba_rows`: the array path serving takes for numeric and single-tensor specs."""
    import numpy as np

    for factory, spec in ((CNN, IMAGE_SPEC), ("training.learners.torch_module_examples:small_net", None)):
        if spec is None:
            events = list(iter_stream("agrawal", 200, seed=1))
            spec = infer_spec([x for x, _ in events], [y for _, y in events])
        events = spec_stream(spec, 120) if spec is IMAGE_SPEC else [(RowValidator(spec).row(x), y) for x, y in events]
        learner = build_candidates(factory, spec)[0]
        learner.learn_many([x for x, _ in events], [y for _, y in events])
        xs = [x for x, _ in events[:16]]
        dense = np.array([x["image"] for x in xs]) if spec is IMAGE_SPEC else np.array([list(x.values()) for x in xs])
        expected = np.array([[p[c] for c in learner.classes] for p in learner.predict_proba_many(xs)])
        np.testing.assert_allclose(learner.predict_proba_rows(dense), expected, rtol=0, atol=1e-12)
    mixed = ModelSpec(Task.CLASSIFICATION, TargetSpec("y", (0, 1)), (
        FeatureSpec("image", FeatureKind.TENSOR, shape=(1, 4, 4)), FeatureSpec("size")))
    with pytest.raises(TypeError, match="dense rows"):  # a tensor among other features: rows of dicts only
        build_candidates(CNN.replace("tiny_cnn", "small_net"), mixed)[0].predict_proba_rows(np.zeros((1, 17)))
