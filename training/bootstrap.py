"""Offline bootstrap: train the first models from historical data and pick the champion.

Steps: take the model spec (given, or inferred from the rows: task, each column's kind,
which may be missing) and validate every row with it; split train/validation (at random
with a seed, stratified by class, for a file; in time order for a stream — see
`training.data_prep`); compute standardisation statistics, augment the training part
(Gaussian noise scaled to each numeric feature's spread for tabular data; small rotations
and shifts for images), train every candidate built from the spec (River learners learn the
rows once; the PyTorch network trains in epochs with early stopping on validation loss),
score each on validation, select by macro-F1 (classification) or MAE (regression), check
the winner beats the trivial baseline, then let every candidate also learn the validation
part (they are online learners; held-out data is not wasted once the choice is made).

No I/O here: `training.report` writes the report and plot, the registry stores the winner.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from training.data_prep import (
    Split,
    beats_baseline,
    class_balance,
    split_indices,
    trivial_baseline,
    unseen_in_training,
)
from training.evaluation import PrequentialMetrics
from training.learners.base import Features, Label, Learner, OfflineFitter
from training.learners.candidates_file import build_named, entries_from
from training.reference import reference_histograms
from training.rows import RowError, RowValidator
from training.spec import FeatureKind, ModelSpec, Task
from training.spec_inference import infer_spec, with_stats


class BootstrapRefused(ValueError):
    """The data or the winner is not good enough to register (say why; ``--force`` overrides)."""


@dataclass(frozen=True)
class BootstrapConfig:
    """How the first models are trained. Every field is a setting of `perennial bootstrap`.

    Attributes:
        candidates: learner families to train (see `training.learners.candidates`): built-in
            names, import paths ``module:factory``, or names of ``candidates_file`` entries.
        candidates_file: a YAML/JSON file of named candidates (`training.learners.candidates_file`);
            with no ``candidates``, all of its entries; with neither, the task's defaults.
        validation_fraction: share of the (latest) events held out for model selection.
        augment_copies: noisy copies of each training row added (0 disables augmentation).
        noise: Gaussian noise as a fraction of each feature's standard deviation.
        image: treat features as a square image (rotation/shift augmentation).
        mlp: keyword arguments of the PyTorch candidate (layers, activation, lr, batch size...).
        max_epochs, patience: early stopping of the PyTorch candidate on validation loss.
        curve_points: points on the River learners' validation-loss curve.
        seed: seeds the split and the augmentation.
        split: how validation is held out (`Split.RANDOM` for files, `Split.TIME` for streams).
        task: the task when no spec is given (None: inferred from the labels, with a notice).
        target: the label column's name (recorded in the spec).
        kinds: per-column kind overrides when the spec is inferred.
        optional: columns that may be missing even if the data has no gap.
        force: register a champion that does not beat the trivial baseline.
    """

    candidates: tuple[str, ...] | None = None  # None: the file's entries, else the task's DEFAULT_CANDIDATES
    candidates_file: str | None = None  # named candidates (training.learners.candidates_file)
    validation_fraction: float = 0.2
    augment_copies: int = 1
    noise: float = 0.05
    image: bool = False
    mlp: dict[str, Any] = field(default_factory=dict)
    max_epochs: int = 30
    patience: int = 4
    curve_points: int = 10
    seed: int = 0
    split: Split = Split.TIME
    task: Task | None = None
    target: str = "label"
    kinds: dict[str, FeatureKind] = field(default_factory=dict)
    optional: tuple[str, ...] = ()
    force: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.candidates is not None and not self.candidates:
            raise ValueError("at least one candidate learner is needed")


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
    spec: ModelSpec | None = None
    split: str = ""
    class_balance: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    @property
    def selected_by(self) -> str:
        return "validation MAE" if self.spec is not None and self.spec.task is Task.REGRESSION else "validation macro-F1"

    @property
    def challengers(self) -> list[Learner]:
        return [c.learner for c in self.candidates if c is not self.champion]

    def summary(self) -> dict[str, Any]:
        """JSON-ready report: data, every candidate's validation metrics, the winner."""
        return {
            "champion": self.champion.name,
            "selected_by": self.selected_by,
            "data": {"train": self.n_train, "validation": self.n_validation,
                     "augmented": self.n_augmented, "features": self.feature_names,
                     "classes": self.classes, "split": self.split, "class_balance": self.class_balance},
            "spec": self.spec.to_dict() if self.spec is not None else None,
            "baseline": self.baseline,
            "notices": self.notices,
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
            if type(v) is not float and type(v) is not int:  # categories, booleans, gaps
                continue
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
            X_aug.append({k: v + rng.gauss(0.0, noise * stats[k]["std"]) if k in stats and type(v) is float else v
                          for k, v in x.items()})
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
    """Validation metrics and confusion matrix (true → predicted → count), without learning;
    for a regressor MAE, RMSE and R² (and no confusion matrix)."""
    if learner.task is Task.REGRESSION:
        return regression_scores(learner.predict_many(X), y), {}
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


def regression_scores(predictions: Sequence[float | None], y: Sequence[float]) -> dict[str, float]:
    """MAE, RMSE and R² of ``predictions`` (None, before any learning, counts as 0).

    >>> regression_scores([1.0, 3.0], [2.0, 2.0])
    {'mae': 1.0, 'rmse': 1.0, 'r2': 0.0}
    """
    errors = [(p or 0.0) - t for p, t in zip(predictions, y, strict=True)]
    n = len(errors) or 1
    mean = math.fsum(y) / n
    total = math.fsum((t - mean) ** 2 for t in y)
    sse = math.fsum(e * e for e in errors)
    return {"mae": math.fsum(abs(e) for e in errors) / n, "rmse": math.sqrt(sse / n),
            "r2": 1.0 - sse / total if total > 0 else 0.0}


def _train_river(learner, X_tr, y_tr, X_val, y_val, points: int):
    """One pass over the rows, recording train/validation loss at a few checkpoints
    (log-loss for classifiers, absolute error for regressors)."""
    if learner.task is Task.REGRESSION:
        return _train_regressor(learner, X_tr, y_tr, X_val, y_val, points)
    curve: dict[str, list[float]] = {"x": [], "train_loss": [], "val_loss": []}
    train = PrequentialMetrics(window=max(1, len(X_tr) // points))
    step = max(1, len(X_tr) // points)
    for i, (x, label) in enumerate(zip(X_tr, y_tr, strict=True), start=1):
        proba = learner.predict_proba_one(x)
        train.update(label, max(proba, key=proba.__getitem__) if proba else None, proba)
        learner.learn_one(x, label)
        if i % step == 0 or i == len(X_tr):
            curve["x"].append(i)
            curve["train_loss"].append(train.recent.log_loss())
            curve["val_loss"].append(evaluate(learner, X_val[:500], y_val[:500])[0]["log_loss"])
    return curve, "training events"


def _train_regressor(learner, X_tr, y_tr, X_val, y_val, points: int):
    curve: dict[str, list[float]] = {"x": [], "train_loss": [], "val_loss": []}
    step = max(1, len(X_tr) // points)
    recent: list[float] = []
    for i, (x, target) in enumerate(zip(X_tr, y_tr, strict=True), start=1):
        recent.append(abs((learner.predict_one(x) or 0.0) - target))
        learner.learn_one(x, target)
        if i % step == 0 or i == len(X_tr):
            curve["x"].append(i)
            curve["train_loss"].append(math.fsum(recent) / len(recent))
            curve["val_loss"].append(regression_scores(learner.predict_many(X_val[:500]), y_val[:500])["mae"])
            recent = []
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
    spec: ModelSpec | None = None,
) -> BootstrapResult:
    """Train every candidate on ``events`` (raw rows and labels) and select the champion.

    ``spec`` fixes the task and features; without it one is inferred from the rows (see
    `training.spec.infer_spec`), with a notice when the task was inferred. Raises
    `BootstrapRefused` when the winner does not beat the trivial baseline (unless
    ``config.force``) and `ValueError` for data it cannot use."""
    config = config or BootstrapConfig()
    if len(events) < 20:
        raise ValueError(f"bootstrap needs at least 20 labeled events, got {len(events)}")
    notices: list[str] = []
    if spec is None:
        labels = [y for _, y in events]
        spec = infer_spec([x for x, _ in events], labels, target=config.target, task=config.task,
                          kinds=config.kinds, optional=config.optional)
        if config.task is None:
            notices.append(f"task inferred from the labels: {spec.task.value} "
                           f"({len(set(labels))} distinct values); pass --task to choose")
    else:  # a given spec (a file): the data fills in what its encoders need (categories, means)
        spec = with_stats(spec, [x for x, _ in events])
    rows, ys, dropped = _validated(events, spec)
    if dropped:
        notices.append(f"{len(dropped)} of {len(events)} rows refused by the spec and left out; first: {dropped[0]}")
    if len(rows) < 20:
        raise ValueError(f"only {len(rows)} rows are valid for the spec; bootstrap needs at least 20")
    parts = split_indices(ys, config.validation_fraction, config.split, spec.task, config.seed)
    X_tr, y_tr = [rows[i] for i in parts.train], [ys[i] for i in parts.train]
    X_val, y_val = [rows[i] for i in parts.validation], [ys[i] for i in parts.validation]
    if not X_val or not X_tr:
        raise ValueError(f"the split left {len(X_tr)} training and {len(X_val)} validation rows; "
                         "give more rows or another --validation-fraction")
    if spec.task is Task.CLASSIFICATION:
        unseen = unseen_in_training(y_tr, y_val)
        if unseen:
            notices.append(f"warning: validation holds classes training never saw: {unseen[:10]} "
                           f"({parts.description}); their rows cannot be predicted right")
        missing_in_val = unseen_in_training(y_val, y_tr)
        if missing_in_val:
            notices.append(f"warning: validation holds none of the classes {missing_in_val[:10]} that training has "
                           f"({parts.description}); the data may be sorted by class — try --split random")
        if spec.classes is None:  # a spec file may leave them to the data
            spec = spec.with_classes(sorted(set(ys), key=lambda c: (str(type(c)), c)))
    stats = standardisation_stats(X_tr)
    X_fit, y_fit = list(X_tr), list(y_tr)
    # noisy copies jitter numbers only: a spec without numeric features would just repeat rows
    if config.augment_copies and any(f.kind is FeatureKind.NUMERIC for f in spec.features):
        if config.image:
            X_aug, y_aug = augment_images(X_tr, y_tr, config.augment_copies, config.seed)
        else:
            X_aug, y_aug = augment_tabular(X_tr, y_tr, stats, config.augment_copies, config.noise,
                                           random.Random(config.seed))
        # interleave originals and copies so an online learner never sees a block of noise
        X_fit, y_fit = _interleave(X_tr, X_aug), _interleave(y_tr, y_aug)
    entries = entries_from(config.candidates_file)
    names = config.candidates or (tuple(entries) if entries else _default_candidates(spec.task))
    learners = build_named(names, spec, entries, mlp=config.mlp)
    reports = []
    for learner in learners:
        if on_progress:
            on_progress(f"training {learner.name} on {len(X_fit)} rows")
        if isinstance(learner, OfflineFitter):
            curve, x_label = _train_torch(learner, X_fit, y_fit, X_val, y_val, config)
        else:
            curve, x_label = _train_river(learner, X_fit, y_fit, X_val, y_val, config.curve_points)
        validation, confusion = evaluate(learner, X_val, y_val)
        reports.append(CandidateReport(learner.name, learner, validation, confusion, curve, x_label))
    if spec.task is Task.REGRESSION:
        champion = min(reports, key=lambda r: r.validation["mae"])
    else:
        champion = max(reports, key=lambda r: (r.validation["f1_macro"], r.validation["accuracy"]))
    baseline = trivial_baseline(spec.task, y_tr, y_val)
    if not beats_baseline(spec.task, champion.validation, baseline):
        metric = "MAE" if spec.task is Task.REGRESSION else "macro-F1"
        key = "mae" if spec.task is Task.REGRESSION else "f1_macro"
        why = (f"the best candidate ({champion.name}, validation {metric} {champion.validation[key]:.4f}) does not "
               f"beat the trivial baseline ({baseline['model']}: {metric} {baseline[key]:.4f}); split {parts.description}")
        if not config.force:
            raise BootstrapRefused(f"refusing to register: {why}; check the data and the target, or pass --force")
        notices.append(f"warning: registered anyway (--force): {why}")
    for report in reports:  # selection is done: learn the held-out part too
        report.learner.learn_many(X_val, y_val)
    return BootstrapResult(
        champion=champion, candidates=reports,
        classes=list(spec.classes or ()), feature_names=list(spec.feature_names),
        n_train=len(X_tr), n_validation=len(X_val), n_augmented=len(X_fit) - len(X_tr),
        standardisation=stats, reference=reference_histograms(X_tr + X_val, spec=spec),
        spec=spec, split=parts.description,
        class_balance=class_balance(ys) if spec.task is Task.CLASSIFICATION else {},
        baseline=baseline, notices=notices,
    )


def _default_candidates(task: Task) -> tuple[str, ...]:
    from training.learners.candidates import DEFAULT_CANDIDATES

    return tuple(DEFAULT_CANDIDATES[task])


def _validated(events: Sequence[tuple[Features, Label]], spec: ModelSpec) -> tuple[list, list, list[str]]:
    """Rows and labels the spec accepts, through the one validator; the refusals' messages."""
    validator = RowValidator(spec)
    rows, ys, dropped = [], [], []
    for i, (x, y) in enumerate(events):
        try:
            rows.append(validator.row(x))
            ys.append(validator.label(y))
        except RowError as e:
            if len(rows) > len(ys):
                rows.pop()
            dropped.append(f"row {i}: {e.detail}")
    return rows, ys, dropped


def _interleave(a: list, b: list) -> list:
    """a0, b0, a1, b1, ... for equal-length lists; b may be k times longer (k copies)."""
    k = len(b) // len(a) if a else 0
    out = []
    for i, item in enumerate(a):
        out.append(item)
        out.extend(b[j * len(a) + i] for j in range(k))
    return out
