"""Pre-train the CNN offline on upright digits and save its weights (a state dict).

What a user does before Perennial sees the network: train it on the data they have — here
the upright 8×8 digits of the stream's training images (`training.streams.digits`, phase 0
of ``digits-rotate``; the held-out images are never used), lightly augmented (±5°, ±1 px).
The output order is the digits 0..9, the order of the model's sorted classes. Seconds on
a CPU.

    PYTHONPATH=examples/cnn_digits .venv/bin/python -m digits_cnn.pretrain cnn.pt
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from digits_cnn.model import cnn
from training.streams.digits import FEATURES, digits_rotate

N_CLASSES = 10


def upright_digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` augmented upright training digits as ``[n, 64]`` pixels in [0, 1] and labels."""
    rows, labels = [], []
    for x, y in digits_rotate(n_events=n, n_phases=1, seed=seed):  # one phase: 0°
        rows.append([x[f] for f in FEATURES])
        labels.append(y)
    return torch.tensor(rows, dtype=torch.float32), torch.tensor(labels)


def pretrain(out: str | Path, *, examples: int = 16000, epochs: int = 4, channels: int = 16, hidden: int = 128,
             dropout: float = 0.3, lr: float = 3e-3, batch_size: int = 64, seed: int = 0) -> dict[str, float]:
    """Train ``cnn(64, 10, channels, hidden, dropout)`` and write its state dict to ``out``;
    returns the training accuracy and the seconds it took."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    x, y = upright_digits(examples, seed=1000 + seed)  # not the seeds the stream uses
    net = cnn(len(FEATURES), N_CLASSES, channels=channels, hidden=hidden, dropout=dropout)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    steps = epochs * -(-len(x) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)  # warm up, then anneal
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
            schedule.step()
    net.eval()
    with torch.inference_mode():
        accuracy = (net(x).argmax(1) == y).float().mean().item()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out)  # tensors only: Perennial loads it with weights_only=True
    return {"train_accuracy": accuracy, "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="where the weights go, e.g. cnn.pt")
    parser.add_argument("--examples", type=int, default=16000, help="augmented upright digits (default 16000)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--channels", type=int, default=16, help="must match the candidate's 'channels'")
    parser.add_argument("--hidden", type=int, default=128, help="must match the candidate's 'hidden'")
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: a net this small only loses to thread overhead)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = pretrain(args.out, examples=args.examples, epochs=args.epochs, channels=args.channels,
                      hidden=args.hidden, dropout=args.dropout, seed=args.seed)
    print(f"wrote {args.out}: training accuracy {result['train_accuracy']:.3f} in {result['seconds']:.1f} s")


if __name__ == "__main__":
    main()
