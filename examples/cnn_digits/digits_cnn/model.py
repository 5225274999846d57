"""The CNN factory Perennial imports as ``digits_cnn.model:cnn``.

Perennial calls ``cnn(n_inputs=..., n_outputs=...)`` with the model's encoded input width
(64 for the digits' ``px0``..``px63``) and its number of classes (10), plus any parameter of
the candidate that the factory declares (``channels``). The network takes either shape a
Perennial model can hand it:

- a flat batch ``[n, n_inputs]`` — the spec's dense encoding of numeric pixel features —
  zero-padded to the next square and reshaped to ``[n, 1, side, side]`` here, so the
  same factory also runs on ``perennial check``'s small mixed table (10 inputs → 4×4);
- an image batch ``[n, 1, H, W]`` (or ``[n, H, W]``) — a tensor feature.

Parameter names start with ``features.`` (the convolutions) or ``head.`` (the classifier),
so a candidate can freeze the pre-trained features: ``freeze: ["features."]``.

    PYTHONPATH=examples/cnn_digits .venv/bin/python -c \
        "from digits_cnn.model import cnn; print(cnn(64, 10))"
"""

from __future__ import annotations

import math

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """Two 3×3 convolutions and a max-pool, then a small fully connected head."""

    def __init__(self, n_inputs: int, n_outputs: int, channels: int = 16, hidden: int = 128,
                 dropout: float = 0.3) -> None:
        super().__init__()
        self.n_inputs = n_inputs
        self.side = math.isqrt(max(n_inputs, 1) - 1) + 1  # smallest square that holds the inputs
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            # 8×8 digits pool to 4×4; a smaller input is brought to the same grid, so the
            # head's width does not depend on the input's
            nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * channels * 16, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, n_outputs),
        )

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as an image batch ``[n, 1, H, W]``."""
        if x.dim() == 4:
            return x
        if x.dim() == 3:  # [n, H, W]: one channel
            return x.unsqueeze(1)
        if x.dim() != 2:
            raise ValueError(f"expected [n, {self.n_inputs}] or [n, 1, H, W], got shape {tuple(x.shape)}")
        pad = self.side * self.side - x.shape[1]
        if pad:
            x = nn.functional.pad(x, (0, pad))
        return x.reshape(len(x), 1, self.side, self.side)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.images(x)))


def cnn(n_inputs: int, n_outputs: int, channels: int = 16, hidden: int = 128, dropout: float = 0.3) -> nn.Module:
    """The factory: ``n_inputs`` pixels (or a tensor image) → ``n_outputs`` logits."""
    return DigitsCNN(n_inputs, n_outputs, channels, hidden, dropout)
