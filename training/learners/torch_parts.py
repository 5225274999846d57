"""Parts of the PyTorch learner: running scaler, class-balanced replay reservoir, network.

Kept apart from `torch_mlp` so that each piece reads at a glance, and so that each one's state
is plain tensors, lists and numbers — what ``torch.load(weights_only=True)`` accepts.
Feature vectors here are float64 CPU tensors in which NaN marks a missing feature.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block under a fixed torch seed, leaving the global random state as it was.

    Weight init and dropout draw from torch's global generators; forking them makes those
    draws a function of the learner's own seed without disturbing anyone else's randomness.
    """
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def build_network(
    n_in: int,
    hidden_layers: tuple[int, ...],
    n_out: int,
    *,
    activation: str,
    dropout: float,
    batch_norm: bool,
) -> nn.Sequential:
    """Linear → [BatchNorm] → activation → [Dropout] per hidden layer, then a linear head.

    The head is always the last module, so `grow_head` can find it.

    >>> net = build_network(3, (4,), 2, activation="tanh", dropout=0.1, batch_norm=True)
    >>> [type(m).__name__ for m in net]
    ['Linear', 'BatchNorm1d', 'Tanh', 'Dropout', 'Linear']
    """
    layers: list[nn.Module] = []
    width_in = n_in
    for width in hidden_layers:
        layers.append(nn.Linear(width_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width_in = width
    layers.append(nn.Linear(width_in, n_out))
    return nn.Sequential(*layers)


def grow_head(net: nn.Sequential, n_out: int, optimizer: torch.optim.Optimizer) -> None:
    """Widen the output layer to ``n_out`` classes, keeping the rows of the known ones.

    New rows get a fresh default init (call under `seeded`); the optimizer's per-parameter
    state (Adam moments, momentum) is carried over and zero-padded for the new rows, so a new
    class does not reset what the optimizer knows about the rest of the network.
    """
    old: nn.Linear = net[-1]
    new = nn.Linear(old.in_features, n_out).to(old.weight.device)
    with torch.no_grad():
        new.weight[: old.out_features] = old.weight
        new.bias[: old.out_features] = old.bias
    net[-1] = new
    for old_p, new_p in ((old.weight, new.weight), (old.bias, new.bias)):
        state = optimizer.state.pop(old_p, {})
        for key, value in state.items():
            if torch.is_tensor(value) and value.shape == old_p.shape:
                padded = value.new_zeros(new_p.shape)
                padded[: old.out_features] = value
                state[key] = padded
        if state:
            optimizer.state[new_p] = state
        for group in optimizer.param_groups:
            group["params"] = [new_p if p is old_p else p for p in group["params"]]


class RunningScaler:
    """Per-feature running mean and variance (Welford, merged per batch with Chan's formula).

    Missing values (NaN) are skipped when updating and become 0 — the running mean — when
    transforming. A feature with no spread yet is centred but not scaled.

    >>> s = RunningScaler(2)
    >>> s.update(torch.tensor([[1.0, float("nan")], [3.0, 5.0]], dtype=torch.float64))
    >>> s.transform(torch.tensor([[3.0, float("nan")]], dtype=torch.float64))
    tensor([[1., 0.]])
    """

    def __init__(self, n_features: int) -> None:
        self.count = torch.zeros(n_features, dtype=torch.float64)
        self.mean = torch.zeros(n_features, dtype=torch.float64)
        self.m2 = torch.zeros(n_features, dtype=torch.float64)

    def update(self, x: torch.Tensor) -> None:
        seen = ~torch.isnan(x)
        n_b = seen.sum(0).to(torch.float64)
        values = torch.where(seen, x, 0.0)
        mean_b = values.sum(0) / n_b.clamp(min=1)
        m2_b = torch.where(seen, (x - mean_b) ** 2, 0.0).sum(0)
        total = self.count + n_b
        delta = mean_b - self.mean
        share = torch.where(total > 0, n_b / total.clamp(min=1), 0.0)
        self.mean += delta * share
        self.m2 += m2_b + delta**2 * self.count * share
        self.count = total

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        var = self.m2 / self.count.clamp(min=1)
        std = torch.where(var > 1e-12, var.sqrt(), 1.0)
        z = (x - self.mean) / std
        return torch.nan_to_num(z, nan=0.0).to(torch.float32)

    def state(self) -> dict[str, torch.Tensor]:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> RunningScaler:
        scaler = cls(len(state["count"]))
        scaler.count, scaler.mean, scaler.m2 = state["count"], state["mean"], state["m2"]
        return scaler


class ClassBalancedReservoir:
    """Replay memory that keeps a uniform sample of each class's past, with equal room per class.

    Capacity is split evenly across the classes seen so far; within a class, classic reservoir
    sampling keeps every past example equally likely to be present. When a class arrives, the
    others give up room at random. `sample` picks a class uniformly, then an example of it, so
    a rare class is replayed as often as a frequent one.

    >>> r = ClassBalancedReservoir(4, random.Random(0))
    >>> r.add_class(); r.add_class()
    >>> for i in range(10):
    ...     r.add(torch.tensor([float(i)]), i % 2)
    >>> [len(items) for items in r.items], r.seen
    ([2, 2], [5, 5])
    """

    def __init__(self, capacity: int, rng: random.Random) -> None:
        self.capacity = capacity
        self.rng = rng
        self.items: list[list[torch.Tensor]] = []
        self.seen: list[int] = []

    def __len__(self) -> int:
        return sum(len(items) for items in self.items)

    @property
    def per_class(self) -> int:
        if self.capacity <= 0 or not self.items:
            return 0
        return max(1, self.capacity // len(self.items))

    def add_class(self) -> None:
        self.items.append([])
        self.seen.append(0)
        room = self.per_class
        for c, items in enumerate(self.items):
            if len(items) > room:
                keep = sorted(self.rng.sample(range(len(items)), room))
                self.items[c] = [items[i] for i in keep]

    def add(self, x: torch.Tensor, c: int) -> None:
        if self.capacity <= 0:
            return
        self.seen[c] += 1
        items = self.items[c]
        if len(items) < self.per_class:
            items.append(x)
        else:
            j = self.rng.randrange(self.seen[c])
            if j < len(items):
                items[j] = x

    def sample(self, k: int) -> tuple[torch.Tensor, list[int]] | None:
        filled = [c for c, items in enumerate(self.items) if items]
        if k <= 0 or not filled:
            return None
        labels = [self.rng.choice(filled) for _ in range(k)]
        rows = [self.rng.choice(self.items[c]) for c in labels]
        return torch.stack(rows), labels

    def state(self, n_features: int) -> dict[str, Any]:
        empty = torch.zeros((0, n_features), dtype=torch.float64)
        return {
            "seen": list(self.seen),
            "items": [torch.stack(items) if items else empty for items in self.items],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.seen = list(state["seen"])
        self.items = [list(block.unbind(0)) for block in state["items"]]
