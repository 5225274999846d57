"""Offline bootstrap: train the first models from historical data and pick the champion.

Steps: split train/validation (the validation part is the *latest* events, as a stream's
future is what a model will face), compute standardisation statistics, augment the training
part (Gaussian noise scaled to each feature's spread for tabular data; small rotations and
shifts for images), train every candidate (River learners learn the rows once; the PyTorch
network trains in epochs with early stopping on validation loss), score each on validation,
select by macro-F1 (regression: by the lowest MAE), then let every candidate also learn the
validation part (they are online learners; held-out data is not wasted once the choice is made).

The task is the config's, else inferred from the labels (`training.spec.infer_task`); a
regression model's candidates are built from a spec inferred from the rows.

No I/O here: `training.report` writes the report and plot, the registry stores the winner.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from training.evaluation import PrequentialMetrics, RegressionMetrics
from training.learners.base import Features, Label, Learner
from training.learners.candidates import build_candidates
from training.reference import reference_histograms
from training.spec import Task, infer_spec, infer_task


@dataclass(frozen=True)
class BootstrapConfig:
    """How the first models are trained. Every field is a setting of `perennial bootstrap`.

    Attributes:
        candidates: learner families to train (see `training.learners.candidates`); empty:
            the task's defaults (``DEFAULT_CANDIDATES``).
        task: classification or regression; None infers it from the labels.
        validation_fraction: share of the (latest) events held out for model selection.
        augment_copies: noisy copies of each training row added (0 disables augmentation).
        noise: Gaussian noise as a fraction of each feature's standard deviation.
        image: treat features as a square image (rotation/shift augmentation).
        mlp: keyword arguments of the PyTorch candidate (layers, activation, lr, batch size...).
        max_epochs, patience: early stopping of the PyTorch candidate on validation loss.
        curve_points: points on the River learners' validation-loss curve.
        seed: seeds the split-independent randomness (augmentation).
    """

    candidates: tuple[str, ...] = ()
    validation_fraction: float = 0.2
    augment_copies: int = 1
    noise: float = 0.05
    image: bool = False
    mlp: dict[str, Any] = field(default_factory=dict)
    max_epochs: int = 30
    patience: int = 4
    curve_points: int = 10
    seed: int = 0
    task: Task | None = None

    def __post_init__(self) -> None:
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")


@dataclass
class CandidateReport:
    name: str
    learner: Learner
    validation: dict[str, float]
    confusion: dict[str, dict[str, int]]
    curve: dict[str, list[float]]  # {"x": [...], "train_loss": [...], "val_loss": [...]}
    x_label: str


@dataclass
class BootstrapResult:
    champion: CandidateReport
    candidates: list[CandidateReport]
    classes: list[Label]
    feature_names: list[str]
    n_train: int
    n_validation: int
    n_augmented: int
    standardisation: dict[str, dict[str, float]]
    reference: dict
    task: Task = Task.CLASSIFICATION

    @property
    def challengers(self) -> list[Learner]:
        return [c.learner for c in self.candidates if c is not self.champion]

    def summary(self) -> dict[str, Any]:
        """JSON-ready report: data, every candidate's validation metrics, the winner."""
        return {
            "champion": self.champion.name,
            "task": self.task.value,
            "selected_by": "validation MAE" if self.task is Task.REGRESSION else "validation macro-F1",
            "data": {"train": self.n_train, "validation": self.n_validation,
                     "augmented": self.n_augmented, "features": self.feature_names,
                     "classes": self.classes},
            "standardisation": self.standardisation,
            "candidates": {c.name: {"validation": c.validation, "confusion_matrix": c.confusion}
                           for c in self.candidates},
        }


def standardisation_stats(X: Sequence[Features]) -> dict[str, dict[str, float]]:
    """Per-feature mean and standard deviation.

    >>> standardisation_stats([{"a": 1.0}, {"a": 3.0}])
    {'a': {'mean': 2.0, 'std': 1.0}}
    """
    sums: dict[str, list[float]] = {}
    for x in X:
        for k, v in x.items():
            s = sums.setdefault(k, [0, 0.0, 0.0])
            s[0] += 1
            s[1] += v
            s[2] += v * v
    out = {}
    for k, (n, s1, s2) in sums.items():
        mean = s1 / n
        out[k] = {"mean": mean, "std": math.sqrt(max(s2 / n - mean * mean, 0.0))}
    return out


def augment_tabular(X, y, stats, copies: int, noise: float, rng: random.Random):
    """Noisy copies of each row: every feature jittered by ``noise`` × its standard deviation."""
    X_aug, y_aug = [], []
    for _ in range(copies):
        for x, label in zip(X, y, strict=True):
            X_aug.append({k: v + rng.gauss(0.0, noise * stats[k]["std"]) for k, v in x.items()})
            y_aug.append(label)
    return X_aug, y_aug


def augment_images(X, y, copies: int, seed: int):
    """Small rotations and shifts of square images (features px0..pxN in row-major order)."""
    import numpy as np

    from training.streams.digits import augment_image

    rng = np.random.default_rng(seed)
    X_aug, y_aug = [], []
    for _ in range(copies):
        for x, label in zip(X, y, strict=True):
            names = sorted(x, key=lambda k: int(k[2:]))
            side = int(math.isqrt(len(names)))
            img = np.asarray([x[k] for k in names], dtype=float).reshape(side, side)
            out = augment_image(img, rng).ravel()
            X_aug.append(dict(zip(names, out.tolist(), strict=True)))
            y_aug.append(label)
    return X_aug, y_aug


def evaluate(learner: Learner, X: Sequence[Features], y: Sequence[Label]) -> tuple[dict[str, float], dict]:
    """Validation metrics and confusion matrix (true → predicted → count), without learning.
    A regressor: MAE, RMSE and R², and no confusion matrix."""
    if learner.task is Task.REGRESSION:
        reg = RegressionMetrics(window=max(1, len(X)))
        for pred, label in zip(learner.predict_many(X), y, strict=True):
            reg.update(label, pred)
        return {k: reg.summary()[k] for k in ("mae", "rmse", "r2")}, {}
    metrics = PrequentialMetrics(window=max(1, len(X)))
    confusion: dict[str, dict[str, int]] = {}
    for proba, label in zip(learner.predict_proba_many(X), y, strict=True):
        pred = max(proba, key=proba.__getitem__) if proba else None
        metrics.update(label, pred, proba)
        row = confusion.setdefault(str(label), {})
        row[str(pred)] = row.get(str(pred), 0) + 1
    s = metrics.summary()
    keys = ("accuracy", "precision", "recall", "f1_macro", "log_loss")
    return {k: s[k] for k in keys}, confusion


def _train_river(learner, X_tr, y_tr, X_val, y_val, points: int):
    """One pass over the rows, recording train/validation log-loss at a few checkpoints."""
    curve: dict[str, list[float]] = {"x": [], "train_loss": [], "val_loss": []}
    step = max(1, len(X_tr) // points)
    if learner.task is Task.REGRESSION:  # the curve is of MAE
        reg = RegressionMetrics(window=step)
        for i, (x, label) in enumerate(zip(X_tr, y_tr, strict=True), start=1):
            reg.update(label, learner.predict_one(x))
            learner.learn_one(x, label)
            if i % step == 0 or i == len(X_tr):
                curve["x"].append(i)
                curve["train_loss"].append(reg.window_mae)
                curve["val_loss"].append(evaluate(learner, X_val[:500], y_val[:500])[0]["mae"])
        return curve, "training events"
    train = PrequentialMetrics(window=max(1, len(X_tr) // points))
    for i, (x, label) in enumerate(zip(X_tr, y_tr, strict=True), start=1):
        proba = learner.predict_proba_one(x)
        train.update(label, max(proba, key=proba.__getitem__) if proba else None, proba)
        learner.learn_one(x, label)
        if i % step == 0 or i == len(X_tr):
            curve["x"].append(i)
            curve["train_loss"].append(train.recent.log_loss())
            curve["val_loss"].append(evaluate(learner, X_val[:500], y_val[:500])[0]["log_loss"])
    return curve, "training events"


def _train_torch(learner, X_tr, y_tr, X_val, y_val, config: BootstrapConfig):
    history = learner.fit_offline(X_tr, y_tr, X_val, y_val, max_epochs=config.max_epochs,
                                  patience=config.patience)
    curve = {"x": list(range(1, len(history["train_loss"]) + 1)),
             "train_loss": list(history["train_loss"]), "val_loss": list(history["val_loss"])}
    return curve, "epoch"


def train_candidates(
    events: Sequence[tuple[Features, Label]],
    config: BootstrapConfig | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> BootstrapResult:
    """Train every candidate on ``events`` and select the champion by validation macro-F1
    (regression: by validation MAE)."""
    config = config or BootstrapConfig()
    if len(events) < 20:
        raise ValueError(f"bootstrap needs at least 20 labeled events, got {len(events)}")
    n_val = max(1, int(len(events) * config.validation_fraction))
    train, val = events[:-n_val], events[-n_val:]
    X_tr, y_tr = [x for x, _ in train], [y for _, y in train]
    X_val, y_val = [x for x, _ in val], [y for _, y in val]
    stats = standardisation_stats(X_tr)
    X_fit, y_fit = list(X_tr), list(y_tr)
    if config.augment_copies:
        if config.image:
            X_aug, y_aug = augment_images(X_tr, y_tr, config.augment_copies, config.seed)
        else:
            X_aug, y_aug = augment_tabular(X_tr, y_tr, stats, config.augment_copies, config.noise,
                                           random.Random(config.seed))
        # interleave originals and copies so an online learner never sees a block of noise
        X_fit, y_fit = _interleave(X_tr, X_aug), _interleave(y_tr, y_aug)
    task = config.task or infer_task([*y_tr, *y_val])
    # classification keeps its spec-less candidates here; a regressor needs the spec's task
    spec = infer_spec(X_tr + X_val, [*y_tr, *y_val], task=task) if task is Task.REGRESSION else None
    learners = build_candidates(config.candidates, spec, mlp=config.mlp)
    reports = []
    for learner in learners:
        if on_progress:
            on_progress(f"training {learner.name} on {len(X_fit)} rows")
        if hasattr(learner, "fit_offline"):
            curve, x_label = _train_torch(learner, X_fit, y_fit, X_val, y_val, config)
        else:
            curve, x_label = _train_river(learner, X_fit, y_fit, X_val, y_val, config.curve_points)
        validation, confusion = evaluate(learner, X_val, y_val)
        reports.append(CandidateReport(learner.name, learner, validation, confusion, curve, x_label))
    if task is Task.REGRESSION:
        champion = min(reports, key=lambda r: r.validation["mae"])
    else:
        champion = max(reports, key=lambda r: (r.validation["f1_macro"], r.validation["accuracy"]))
    for report in reports:  # selection is done: learn the held-out part too
        report.learner.learn_many(X_val, y_val)
    return BootstrapResult(
        champion=champion, candidates=reports,
        classes=[] if task is Task.REGRESSION else sorted({*y_tr, *y_val}, key=str), feature_names=sorted(stats),
        n_train=len(X_tr), n_validation=len(X_val), n_augmented=len(X_fit) - len(X_tr),
        standardisation=stats, reference=reference_histograms(X_tr + X_val), task=task,
    )


def _interleave(a: list, b: list) -> list:
    """a0, b0, a1, b1, ... for equal-length lists; b may be k times longer (k copies)."""
    k = len(b) // len(a) if a else 0
    out = []
    for i, item in enumerate(a):
        out.append(item)
        out.extend(b[j * len(a) + i] for j in range(k))
    return out
