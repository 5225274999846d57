"""The PyTorch learner's public accessors (benchmarks time its forward pass through them)."""

from training.learners.torch_mlp import TorchMLPLearner


def test_device_and_forward_parts_are_public() -> None:
    learner = TorchMLPLearner(hidden_layers=(4,), device="cpu", batch_size=2)
    assert learner.torch_device.type == "cpu"
    assert learner.forward_parts() == (None, None), "nothing to time before the first features"
    for i in range(4):
        learner.learn_one({"a": float(i), "b": 1.0 - i}, i % 2)
    net, scaler = learner.forward_parts()
    assert net is not None and scaler is not None
    assert next(net.parameters()).device == learner.torch_device
