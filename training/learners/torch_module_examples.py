"""A small network factory of the project's own, to run the generic fine-tuner
(`training.learners.torch_module`) through the learner contract and as a candidate by
import path: ``--candidates training.learners.torch_module_examples:small_net``.
"""

from __future__ import annotations

from torch import nn


def small_net(n_inputs: int, n_outputs: int, hidden: int = 16) -> nn.Module:
    """``n_inputs`` → ``hidden`` → ``n_outputs`` with a ReLU: the shape of most tabular nets."""
    return nn.Sequential(nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Linear(hidden, n_outputs))
