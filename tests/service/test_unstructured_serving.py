"""Images and text through the data plane (issue 10, point 5): a user's CNN from the registry
answers an image as nested JSON lists on /predict and as an OIP ``[n, 1, H, W]`` FP32 tensor
(JSON data or binary), a text pipeline answers strings on /predict and OIP BYTES, the OIP
metadata declares the tensor's shape, and a wrong shape is a 4xx that says what is accepted."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from service.dataplane import DataPlane
from service.errors import Kind, ServingError
from service.metrics_exposition import build_service_metrics
from service.model_holder import ModelHolder, build_champion
from service.oip import tensors
from service.oip.http import decode_infer_request
from service.prediction_log import KafkaEventLog
from training.check_rows import spec_stream
from training.learners.candidates import build_candidates
from training.reference import reference_histograms
from training.registry import Registry
from training.spec import FeatureKind, FeatureSpec, ModelSpec, TargetSpec, Task

IMAGE_SPEC = ModelSpec(Task.CLASSIFICATION, TargetSpec("digit", (0, 1, 2)),
                       (FeatureSpec("image", FeatureKind.TENSOR, shape=(1, 4, 4)),))
TEXT_SPEC = ModelSpec(Task.CLASSIFICATION, TargetSpec("sentiment", ("neg", "pos", "mixed")),
                      (FeatureSpec("review", FeatureKind.TEXT), FeatureSpec("stars", optional=True)))
FACTORIES = {"image": "training.learners.torch_module_examples:tiny_cnn",
             "text": "training.learners.text_examples:tfidf_classifier"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A data plane serving an image model and a text model from one registry, and each learner."""
    registry = Registry(tmp_path_factory.mktemp("registry"), key="k")
    learners = {}
    for name, spec in (("image", IMAGE_SPEC), ("text", TEXT_SPEC)):
        events = spec_stream(spec, 200)
        learner = build_candidates(FACTORIES[name], spec)[0]
        learner.learn_many([x for x, _ in events], [y for _, y in events])
        info = registry.publish(name, learner, reference=reference_histograms([x for x, _ in events], spec=spec))
        registry.promote(name, info.version, "test")
        learners[name] = learner
    metrics = build_service_metrics()
    holder = ModelHolder(registry, lambda loaded: build_champion(
        loaded, metrics, max_batch_size=16, max_latency_ms=5, device="cpu"), metrics)
    holder.poll_once()
    assert holder.ready, holder.refusals
    plane = DataPlane(holder, metrics, KafkaEventLog("", metrics), max_instances=64, admin_token="tok")
    loop = asyncio.new_event_loop()
    yield plane, learners, loop.run_until_complete
    holder.stop()
    for _ in range(3):  # let the CNN's batcher see its cancellation before the loop closes
        loop.run_until_complete(asyncio.sleep(0))
    loop.close()


def _image(i: int) -> list:
    return [[[0.1 * ((i + r + c) % 5) for c in range(4)] for r in range(4)]]


def test_an_image_as_nested_lists_on_predict_is_what_the_network_answers(served):
    plane, learners, run = served
    images = [_image(i) for i in range(5)]
    out = run(plane.predict("image", [{"features": {"image": img}} for img in images[:3]] + images[3:]))
    expected = learners["image"].predict_proba_many([{"image": np.ravel(img).tolist()} for img in images])
    for prediction, want in zip(out["predictions"], expected, strict=True):
        assert prediction["probabilities"] == pytest.approx({str(k): v for k, v in want.items()}, abs=1e-5)


def test_an_oip_image_tensor_as_json_or_binary_gets_the_same_answer(served):
    plane, _, run = served
    batch = np.asarray([_image(i) for i in range(6)], dtype=np.float32)  # [6, 1, 4, 4]
    as_json = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [6, 1, 4, 4], "data": batch.tolist()}]}
    header = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [6, 1, 4, 4],
                                     "parameters": {"binary_data_size": batch.nbytes}}]}).encode()
    answers = []
    for body, length in ((json.dumps(as_json).encode(), None), (header + batch.tobytes(), str(len(header)))):
        request = decode_infer_request(body, length)
        answers.append(run(plane.infer_inputs("image", request.inputs, request.missing, transport="http")))
    assert answers[0].probabilities.shape == (6, 3)
    np.testing.assert_allclose(answers[0].probabilities, answers[1].probabilities, atol=1e-6)


@pytest.mark.parametrize("shape, words", [
    ([6, 16], "takes [batch, 1, 4, 4]"),
    ([6, 1, 4, 5], "takes [batch, 1, 4, 4]"),
])
def test_an_image_of_the_wrong_shape_is_a_4xx_that_says_the_shape(served, shape, words):
    plane, _, run = served
    data = [0.0] * int(np.prod(shape))
    request = decode_infer_request(json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": shape,
                                                           "data": data}]}).encode(), None)
    with pytest.raises(ServingError) as e:
        run(plane.infer_inputs("image", request.inputs, request.missing, transport="http"))
    assert e.value.kind is Kind.INVALID and words in str(e.value)


def test_a_predict_image_of_the_wrong_shape_names_the_instance_and_the_shape(served):
    plane, _, run = served
    with pytest.raises(ServingError) as e:
        run(plane.predict("image", [_image(0), [[0.0] * 4] * 4]))
    assert e.value.kind is Kind.INVALID and str(e.value).startswith("instance 1 feature 'image'")
    assert "shape [1, 4, 4]" in str(e.value)


def test_the_oip_metadata_declares_the_tensor_and_text_inputs(served):
    plane, _, _ = served
    image = tensors.model_metadata(plane.champion("image"))
    assert image["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 4, 4]}]
    assert image["parameters"]["spec"]["features"][0]["shape"] == [1, 4, 4]
    text = tensors.model_metadata(plane.champion("text"))
    assert text["inputs"][0] == {"name": "review", "datatype": "BYTES", "shape": [-1, 1]}


def test_text_on_predict_and_as_oip_bytes_reaches_the_pipeline(served):
    plane, learners, run = served
    reviews = ["the box was broken and late", "great price, love it", "okay but slow"]
    out = run(plane.predict("text", [{"features": {"review": r}} for r in reviews]))
    expected = [learners["text"].predict_one({"review": r, "stars": None}) for r in reviews]
    assert [p["label"] for p in out["predictions"]] == expected
    body = json.dumps({"inputs": [{"name": "review", "datatype": "BYTES", "shape": [3, 1], "data": reviews}]})
    request = decode_infer_request(body.encode(), None)
    result = run(plane.infer_inputs("text", request.inputs, request.missing, transport="http"))
    assert [str(label) for label in result.labels] == [str(y) for y in expected]


def test_an_image_batch_carries_its_tensor_as_one_array_for_the_networks_fast_path(served):
    """The network's `predict_proba_rows` takes the request's array; no per-row dicts on the way."""
    from service.batch import Batch
    from service.validation import batch_from_instances

    plane, learners, _ = served
    champ = plane.champion("image")
    batch = batch_from_instances([_image(i) for i in range(4)], champ.validator, 64)
    assert batch.tensor.shape == (4, 16) and batch.numeric is None
    assert Batch.concat([batch, batch[1:3]]).tensor.shape == (6, 16)
    expected = learners["image"].predict_proba_rows(batch.tensor)
    np.testing.assert_allclose(champ.forward(batch, observe=False), expected, atol=1e-12)
