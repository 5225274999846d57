"""Data preparation that protects the user: the split, the trivial baseline, the warnings.

A CSV as it ships is often sorted (by class, by date, by id). Holding out its last part
then validates on rows unlike any trained on — every candidate scores 0 and a champion is
registered anyway. So a file is split at random with a seed (stratified by class for
classification), unless time order is asked for; a stream keeps time order, because its
future is what the model will face. Whatever the split, the report says what it was, how
the classes are balanced, and what a trivial model (the majority class, or the mean) scores —
bootstrap refuses a champion that does not beat it unless forced.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from training.spec import Task


class Split(StrEnum):
    """How bootstrap holds out validation data."""

    RANDOM = "random"  # seeded; stratified by class for classification
    TIME = "time"  # the latest events (a stream's future)


@dataclass(frozen=True)
class SplitResult:
    """Indices into the events. A time split keeps their order; a random one shuffles the
    training part too — online learners learn in the order they are fed, and a file sorted
    by class would teach them one class after the other."""

    train: list[int]
    validation: list[int]
    description: str


def split_indices(labels: Sequence[Any], fraction: float, split: Split, task: Task, seed: int) -> SplitResult:
    """Indices of the training and validation parts (each in the events' order).

    >>> r = split_indices([0] * 6 + [1] * 4, 0.5, Split.RANDOM, Task.CLASSIFICATION, seed=1)
    >>> sorted(Counter(0 if i < 6 else 1 for i in r.validation).items())
    [(0, 3), (1, 2)]
    >>> split_indices(list(range(10)), 0.2, Split.TIME, Task.REGRESSION, 0).validation
    [8, 9]
    """
    n = len(labels)
    n_val = max(1, int(n * fraction))
    if split is Split.TIME:
        return SplitResult(list(range(n - n_val)), list(range(n - n_val, n)),
                           f"time order: the first {n - n_val} events train, the latest {n_val} validate")
    rng = random.Random(seed)
    if task is Task.CLASSIFICATION:
        by_class: dict[Any, list[int]] = {}
        for i, y in enumerate(labels):
            by_class.setdefault((type(y), y), []).append(i)
        val: list[int] = []
        for members in by_class.values():
            rng.shuffle(members)
            # each class's share of the validation part, rounded; a class of one stays in training
            k = round(len(members) * fraction) if len(members) > 1 else 0
            val.extend(members[:k])
        how = f"random (seed {seed}), stratified by class"
    else:
        order = list(range(n))
        rng.shuffle(order)
        val = order[:n_val]
        how = f"random (seed {seed})"
    held = set(val)
    train = [i for i in range(n) if i not in held]
    rng.shuffle(train)
    return SplitResult(train, sorted(held), f"{how}, shuffled: {len(train)} train, {len(held)} validate")


def class_balance(labels: Sequence[Any]) -> dict[str, float]:
    """Share of each class, most frequent first (keys as strings, for JSON)."""
    counts = Counter(labels)
    n = len(labels) or 1
    return {str(c): k / n for c, k in counts.most_common()}


def unseen_in_training(y_train: Sequence[Any], y_val: Sequence[Any]) -> list[Any]:
    """Classes validation holds that training never saw."""
    seen = {(type(y), y) for y in y_train}
    return sorted({y for y in y_val if (type(y), y) not in seen}, key=str)


def trivial_baseline(task: Task, y_train: Sequence[Any], y_val: Sequence[Any]) -> dict[str, Any]:
    """What the trivial model scores on validation: the training majority class (accuracy,
    macro-F1) or the training mean (MAE, RMSE).

    >>> trivial_baseline(Task.CLASSIFICATION, [1, 1, 0], [1, 0])["accuracy"]
    0.5
    >>> trivial_baseline(Task.REGRESSION, [1.0, 3.0], [2.0, 4.0])["mae"]
    1.0
    """
    if task is Task.CLASSIFICATION:
        majority = Counter(y_train).most_common(1)[0][0]
        correct = sum(1 for y in y_val if type(y) is type(majority) and y == majority)
        accuracy = correct / len(y_val) if y_val else 0.0
        classes = {(type(y), y) for y in (*y_val, majority)}
        # F1 of the majority class; every other class scores 0
        f1_major = 2 * correct / (correct + len(y_val)) if y_val else 0.0
        return {"model": f"majority class {majority!r}", "accuracy": accuracy,
                "f1_macro": f1_major / len(classes)}
    mean = math.fsum(y_train) / len(y_train)
    errors = [y - mean for y in y_val]
    mae = math.fsum(abs(e) for e in errors) / len(errors) if errors else 0.0
    rmse = math.sqrt(math.fsum(e * e for e in errors) / len(errors)) if errors else 0.0
    return {"model": f"training mean {mean:.6g}", "mae": mae, "rmse": rmse}


def beats_baseline(task: Task, validation: dict[str, float], baseline: dict[str, Any]) -> bool:
    """Whether a candidate's validation scores are strictly better than the trivial model's."""
    if task is Task.CLASSIFICATION:  # macro-F1: predicting the majority everywhere does not beat it
        return validation["f1_macro"] > baseline["f1_macro"] + 1e-9
    return validation["mae"] < baseline["mae"] - 1e-9
