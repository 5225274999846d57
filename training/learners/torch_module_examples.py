"""A small network factory of the project's own, to run the generic fine-tuner
(`training.learners.torch_module`) through the learner contract and as a candidate by
import path: ``--candidates training.learners.torch_module_examples:small_net`` (a table)
or ``...:tiny_cnn`` (images: a spec of one tensor feature).
"""

from __future__ import annotations

from torch import nn


def small_net(n_inputs: int, n_outputs: int, hidden: int = 16) -> nn.Module:
    """``n_inputs`` → ``hidden`` → ``n_outputs`` with a ReLU: the shape of most tabular nets."""
    return nn.Sequential(nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Linear(hidden, n_outputs))


def tiny_cnn(n_outputs: int, channels: int = 4) -> nn.Module:
    """A one-convolution network over single-channel images ``[n, 1, H, W]`` (any H, W):
    what a spec whose input is one tensor feature of shape ``[1, H, W]`` feeds it."""
    return nn.Sequential(
        nn.Conv2d(1, channels, kernel_size=3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(channels * 4, n_outputs),
    )
