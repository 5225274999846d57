"""A PyTorch multilayer perceptron behind the learner protocol, fine-tuned in mini-batches.

Why buffer instead of one gradient step per event: a step on a single example is noisy and
costs a whole forward/backward pass, so `learn_one` collects ``batch_size`` events and then
fine-tunes on them, mixed with examples replayed from a class-balanced reservoir so that
adapting to the present does not erase the past (the "forgetting guard" of DESIGN.md).

Built with a model spec, the network's input is the spec's dense encoding (one-hot with an
unknown slot per categorical feature, missing indicators; `training.encoding`), sized up
front — never from the first row. Without a spec, like deep-river, the network is built
lazily on the first labelled example, which fixes the feature names (sorted). Unless
``classes`` is given (or the spec fixes them), the output layer grows when a new label
arrives. Inputs are standardised with running statistics updated on learn.

Snapshots are ``torch.save`` archives of tensors, lists and numbers only, so they load with
``torch.load(weights_only=True)`` — no code runs when a registry artifact is read.
"""

from __future__ import annotations

import copy
import io
import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from training.encoding import Encoding, RowEncoder
from training.learners.base import (
    Features,
    InvalidFeaturesError,
    Label,
    Learner,
    check_features,
)
from training.learners.torch_parts import (
    ACTIVATIONS,
    ClassBalancedReservoir,
    RunningScaler,
    build_network,
    grow_head,
    seeded,
)
from training.spec import ModelSpec, Task

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
_SNAPSHOT_VERSION = 1


class TorchMLPLearner(Learner):
    """Multilayer perceptron classifier that learns online in mini-batches with replay.

    >>> model = TorchMLPLearner(hidden_layers=(8,), lr=0.05, batch_size=4, seed=1)
    >>> model.predict_proba_one({"x": 1.0})
    {}
    >>> for i in range(200):
    ...     model.learn_one({"x": float(i % 2)}, "odd" if i % 2 else "even")
    >>> model.predict_one({"x": 1.0}), model.predict_one({"x": 0.0})
    ('odd', 'even')
    >>> model.clone().predict_proba_one({"x": 1.0})
    {}
    """

    name = "mlp"
    snapshot_format = "torch"

    def __init__(
        self,
        hidden_layers: tuple[int, ...] = (64, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        lr: float = 1e-3,
        optimizer: str = "adam",
        batch_size: int = 32,
        epochs_per_batch: int = 1,
        replay_size: int = 2000,
        replay_ratio: float = 1.0,
        classes: tuple | None = None,
        device: str | None = None,
        seed: int = 0,
        spec: ModelSpec | None = None,
    ) -> None:
        _require(
            activation in ACTIVATIONS, "activation", activation, f"one of {', '.join(ACTIVATIONS)}"
        )
        _require(optimizer in OPTIMIZERS, "optimizer", optimizer, "'adam' or 'sgd'")
        _require(
            all(int(h) > 0 for h in hidden_layers),
            "hidden_layers",
            hidden_layers,
            "positive widths",
        )
        _require(0.0 <= dropout < 1.0, "dropout", dropout, "a value in [0, 1)")
        _require(lr > 0, "lr", lr, "a positive number")
        _require(batch_size >= 1, "batch_size", batch_size, "an integer >= 1")
        _require(epochs_per_batch >= 1, "epochs_per_batch", epochs_per_batch, "an integer >= 1")
        _require(
            replay_size >= 0, "replay_size", replay_size, "an integer >= 0 (0 disables replay)"
        )
        _require(replay_ratio >= 0, "replay_ratio", replay_ratio, "a number >= 0")
        if classes is not None:
            _require(len(set(classes)) == len(classes) > 0, "classes", classes, "distinct labels")
        self.hidden_layers = tuple(int(h) for h in hidden_layers)
        self.activation = activation
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)
        self.lr = float(lr)
        self.optimizer = optimizer
        self.batch_size = int(batch_size)
        self.epochs_per_batch = int(epochs_per_batch)
        self.replay_size = int(replay_size)
        self.replay_ratio = float(replay_ratio)
        self.fixed_classes = None if classes is None else tuple(classes)
        self.device = device
        self.seed = int(seed)
        self.spec = spec
        if spec is not None and classes is None and spec.classes:
            classes = spec.classes
            self.fixed_classes = tuple(classes)
        self._encoder = RowEncoder(spec, Encoding.DENSE) if spec is not None else None

        # Learned state (everything below is what a snapshot carries).
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._rng = random.Random(self.seed)
        self._classes: list[Label] = []
        self._class_ids: dict[Label, int] = {}
        self._features: list[str] = []
        self._net: nn.Sequential | None = None
        self._opt: torch.optim.Optimizer | None = None
        self._scaler: RunningScaler | None = None
        self._reservoir = ClassBalancedReservoir(self.replay_size, self._rng)
        self._pending_x: list[torch.Tensor] = []
        self._pending_y: list[int] = []
        for label in self.fixed_classes or ():
            self._add_class(label)
        if self._encoder is not None:
            self._build(self._encoder.columns)

    # -- protocol -------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {
            "hidden_layers": self.hidden_layers,
            "activation": self.activation,
            "dropout": self.dropout,
            "batch_norm": self.batch_norm,
            "lr": self.lr,
            "optimizer": self.optimizer,
            "batch_size": self.batch_size,
            "epochs_per_batch": self.epochs_per_batch,
            "replay_size": self.replay_size,
            "replay_ratio": self.replay_ratio,
            "classes": self.fixed_classes,
            "device": self.device,
            "seed": self.seed,
            "spec": self.spec,
        }

    def clone(self) -> TorchMLPLearner:
        return type(self)(**self.params())

    @property
    def classes(self) -> list[Label]:
        return list(self._classes)

    @property
    def n_features_in(self) -> list[str]:
        """Raw features in serving's row order: the spec's, else those the network was built on."""
        return list(self.spec.feature_names) if self.spec is not None else list(self._features)

    @property
    def torch_device(self) -> torch.device:
        """Where the network lives: the ``device`` argument resolved (CUDA when there is one)."""
        return self._device

    def forward_parts(self) -> tuple[nn.Sequential | None, RunningScaler | None]:
        """The network and its input scaler (None before the first features), for a benchmark
        that times the bare forward pass against the whole predict path."""
        return self._net, self._scaler

    def predict_proba_one(self, x: Features) -> dict[Label, float]:
        return self.predict_proba_many([x])[0]

    def predict_proba_many(self, xs: Sequence[Features]) -> list[dict[Label, float]]:
        """Class probabilities for a batch, in one forward pass (what serving calls)."""
        if self._encoder is None or self._encoder.identity:
            for x in xs:
                check_features(x)
        if self._untrained() or not xs:
            return [{} for _ in xs]
        proba = self._forward(self._vectors(xs)).tolist()
        return [dict(zip(self._classes, row, strict=True)) for row in proba]

    def predict_proba_rows(self, rows: np.ndarray) -> np.ndarray:
        """Fast path for serving: ``[n, n_features]`` rows in `n_features_in` order in,
        ``[n, n_classes]`` probabilities in `classes` order out; no per-row dicts.

        NaN in a row counts as a missing feature; infinity is refused.
        """
        if self._encoder is not None and not self._encoder.identity:
            raise TypeError("predict_proba_rows takes numeric rows; this model's spec has other kinds")
        x = torch.as_tensor(np.asarray(rows, dtype=np.float64)).reshape(len(rows), -1)
        if x.shape[1] != len(self._features):
            raise ValueError(
                f"rows have {x.shape[1]} columns; expected {len(self._features)} ({self._features})"
            )
        if torch.isinf(x).any():
            raise InvalidFeaturesError("rows contain infinity; features must be finite numbers")
        if self._untrained():
            return np.zeros((len(x), 0))
        return self._forward(x).numpy()

    def learn_one(self, x: Features, y: Label) -> None:
        self.learn_many([x], [y])

    def learn_many(self, xs: Sequence[Features], ys: Sequence[Label]) -> None:
        """Buffer labelled events and fine-tune on every full mini-batch of ``batch_size``.

        The whole batch is checked before anything is learned, so a bad event leaves the
        learner untouched.
        """
        x_rows, y_ids = self._ingest(xs, ys)
        if self._net is None:  # only featureless events so far
            return
        start = 0
        while start < len(y_ids):
            stop = min(len(y_ids), start + self.batch_size - len(self._pending_y))
            self._scaler.update(x_rows[start:stop])
            self._observe_targets(y_ids[start:stop])
            self._pending_x.extend(x_rows[start:stop].unbind(0))
            self._pending_y.extend(y_ids[start:stop])
            if len(self._pending_y) >= self.batch_size:
                self._fine_tune()
            start = stop

    def fit_offline(
        self,
        X_train: Sequence[Features],
        y_train: Sequence[Label],
        X_val: Sequence[Features],
        y_val: Sequence[Label],
        *,
        max_epochs: int = 50,
        patience: int = 5,
    ) -> dict[str, Any]:
        """Train on a fixed data set with early stopping on validation loss.

        Epochs are shuffled passes over ``X_train`` in mini-batches of ``batch_size`` (no
        replay: the whole past is at hand). Training stops after ``patience`` epochs without
        a lower validation loss and the best epoch's weights are restored. The training
        examples then fill the replay reservoir, so later online fine-tuning keeps
        rehearsing the bootstrap data. With no validation data, training loss is monitored.

        Returns ``{"train_loss": [...], "val_loss": [...], "val_accuracy": [...],
        "best_epoch": i, "best_val_loss": v, "epochs": n}`` (epochs counted from 0).
        """
        _require(max_epochs >= 1, "max_epochs", max_epochs, "an integer >= 1")
        _require(patience >= 1, "patience", patience, "an integer >= 1")
        x_train, y_train_ids = self._ingest(X_train, y_train)
        if self._net is None:
            raise ValueError("fit_offline needs training examples with at least one feature")
        x_val, y_val_ids = self._ingest(X_val, y_val) if len(X_val) else (None, [])
        self._scaler.update(x_train)
        self._observe_targets(y_train_ids)
        z_train = self._scaler.transform(x_train).to(self._device)
        t_train = torch.tensor(y_train_ids, device=self._device)
        history: dict[str, Any] = {"train_loss": [], "val_loss": [], "val_accuracy": []}
        best_loss, best_epoch, best_state = math.inf, 0, None
        for epoch in range(max_epochs):
            order = list(range(len(y_train_ids)))
            self._rng.shuffle(order)
            total = 0.0
            for start in range(0, len(order), self.batch_size):
                idx = torch.tensor(order[start : start + self.batch_size], device=self._device)
                total += self._step(z_train[idx], t_train[idx]) * len(idx)
            history["train_loss"].append(total / len(order))
            if x_val is not None:
                val_loss, val_acc = self._evaluate(x_val, y_val_ids)
                history["val_loss"].append(val_loss)
                history["val_accuracy"].append(val_acc)
            monitored = history["val_loss"][-1] if x_val is not None else history["train_loss"][-1]
            if monitored < best_loss:
                best_loss, best_epoch = monitored, epoch
                best_state = copy.deepcopy(self._net.state_dict())
            elif epoch - best_epoch >= patience:
                break
        if best_state is not None:  # None only if every loss was NaN
            self._net.load_state_dict(best_state)
        for row, c in zip(x_train.unbind(0), y_train_ids, strict=True):
            self._remember(row, c)
        history.update(
            best_epoch=best_epoch, best_val_loss=best_loss, epochs=len(history["train_loss"])
        )
        return history

    # -- snapshots ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        params = self.params()
        params["hidden_layers"] = list(self.hidden_layers)
        params["classes"] = None if self.fixed_classes is None else list(self.fixed_classes)
        params["spec"] = None if self.spec is None else self.spec.to_dict()
        version, internal, gauss = self._rng.getstate()
        built = self._net is not None
        d = len(self._features)
        state = {
            "version": _SNAPSHOT_VERSION,
            "params": params,
            "classes": list(self._classes),
            "features": list(self._features),
            "network": {k: v.detach().cpu() for k, v in self._net.state_dict().items()}
            if built
            else None,
            "optimizer": self._opt.state_dict() if built else None,
            "scaler": self._scaler.state() if built else None,
            "reservoir": self._reservoir.state(self._memory_width()),
            "pending_x": torch.stack(self._pending_x) if self._pending_x else torch.zeros((0, d)),
            "pending_y": list(self._pending_y),
            "rng": {"version": version, "internal": list(internal), "gauss": gauss},
        }
        self._save_extra(state)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, device: str | None = None) -> TorchMLPLearner:
        """Restore a snapshot; ``device`` overrides the one it was taken with."""
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        if state.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(
                f"snapshot version {state.get('version')!r} is not supported (expected {_SNAPSHOT_VERSION})"
            )
        params = dict(state["params"])
        if params.get("spec") is not None:
            params["spec"] = ModelSpec.from_dict(params["spec"])
        if device is not None:
            params["device"] = device
        learner = cls(**params)
        for label in state["classes"][len(learner._classes) :]:
            learner._add_class(label)
        learner._reservoir.load_state(state["reservoir"])
        if state["network"] is not None:
            if learner._net is None:
                learner._build(state["features"])
            learner._net.load_state_dict(state["network"])
            learner._opt.load_state_dict(state["optimizer"])
            learner._scaler = RunningScaler.from_state(state["scaler"])
        learner._pending_x = list(state["pending_x"].unbind(0))
        learner._pending_y = list(state["pending_y"])
        rng = state["rng"]
        learner._rng.setstate((rng["version"], tuple(rng["internal"]), rng["gauss"]))
        learner._load_extra(state)
        return learner

    def __getstate__(self) -> dict[str, Any]:
        return {"snapshot": self.to_bytes()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(type(self).from_bytes(state["snapshot"]).__dict__)

    # -- internals ------------------------------------------------------------------------

    def _untrained(self) -> bool:
        """Nothing learned yet (a spec builds the network before the first event)."""
        return self._net is None or not bool(self._scaler.count.any())

    def _add_class(self, label: Label) -> int:
        self._class_ids[label] = len(self._classes)
        self._classes.append(label)
        self._reservoir.add_class()
        if self._net is not None and self._net[-1].out_features < len(self._classes):
            with seeded(self.seed + len(self._classes), self._device):
                grow_head(self._net, len(self._classes), self._opt)
        return self._class_ids[label]

    def _build(self, features: Sequence[str]) -> None:
        # a spec's columns keep the encoder's order; learned-on-the-fly names are sorted
        self._features = list(features) if self._encoder is not None else sorted(features)
        with seeded(self.seed, self._device):
            self._net = build_network(
                len(self._features),
                self.hidden_layers,
                self._n_outputs(),
                activation=self.activation,
                dropout=self.dropout,
                batch_norm=self.batch_norm,
            ).to(self._device)
        self._opt = OPTIMIZERS[self.optimizer](self._net.parameters(), lr=self.lr)
        self._scaler = RunningScaler(len(self._features))

    def _ingest(
        self, xs: Sequence[Features], ys: Sequence[Label]
    ) -> tuple[torch.Tensor, list[int]]:
        """Check a labelled batch, register its classes, build the network if needed."""
        if len(xs) != len(ys):
            raise ValueError(f"got {len(xs)} feature rows but {len(ys)} labels; they must match")
        if self._encoder is None or self._encoder.identity:
            for x in xs:
                check_features(x)
        if self.fixed_classes is not None:
            for y in ys:
                if y not in self._class_ids:
                    raise ValueError(
                        f"label {y!r} is not one of the fixed classes {list(self.fixed_classes)}"
                    )
        ids = [self._class_ids[y] if y in self._class_ids else self._add_class(y) for y in ys]
        first = next((x for x in xs if x), None)  # an event without features teaches nothing
        if self._net is None and first is not None:
            self._build(first.keys())
        return self._vectors(xs), ids

    def _vectors(self, xs: Sequence[Features]) -> torch.Tensor:
        """Feature dicts → float64 rows in feature order; NaN where a feature is missing
        (no spec); the spec's dense encoding otherwise."""
        encoder = self._encoder
        if encoder is not None:
            rows = [encoder.vector(x) for x in xs]
            return torch.tensor(rows, dtype=torch.float64).reshape(len(xs), encoder.width)
        nan = math.nan
        rows = [[x.get(f, nan) for f in self._features] for x in xs]
        return torch.tensor(rows, dtype=torch.float64).reshape(len(xs), len(self._features))

    def _fine_tune(self) -> None:
        x = torch.stack(self._pending_x)
        y = list(self._pending_y)
        n_replay = round(self.replay_ratio * self.batch_size)
        for _ in range(self.epochs_per_batch):
            bx, by = x, y
            replay = self._replay(n_replay)
            if replay is not None:
                bx, by = torch.cat([x, replay[0]]), y + replay[1]
            z = self._scaler.transform(bx).to(self._device)
            self._step(z, torch.tensor(by, device=self._device))
        for row, c in zip(self._pending_x, self._pending_y, strict=True):
            self._remember(row, c)
        self._pending_x, self._pending_y = [], []

    def _step(self, z: torch.Tensor, y: torch.Tensor) -> float:
        """One gradient step on standardised inputs; seeded so dropout is reproducible."""
        with seeded(self._rng.getrandbits(63), self._device):
            self._net.train()
            if len(y) < 2:  # batch norm cannot estimate statistics from one row
                for m in self._net.modules():
                    if isinstance(m, nn.BatchNorm1d):
                        m.eval()
            self._opt.zero_grad()
            loss = self._loss(self._net(z), y)
            loss.backward()
            self._opt.step()
        return loss.item()

    # -- what a regressor (`TorchMLPRegressor`) changes -------------------------------------

    def _n_outputs(self) -> int:
        return len(self._classes)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(out, y)

    def _observe_targets(self, ys: Sequence[Any]) -> None:
        """Running statistics of the learned targets (a classifier keeps none)."""

    def _remember(self, row: torch.Tensor, y: Any) -> None:
        self._reservoir.add(row, y)

    def _replay(self, k: int) -> tuple[torch.Tensor, list] | None:
        return self._reservoir.sample(k)

    def _memory_width(self) -> int:
        return len(self._features)

    def _save_extra(self, state: dict[str, Any]) -> None:
        """Add a subclass's state to a snapshot (a classifier's snapshot has nothing more)."""

    def _load_extra(self, state: dict[str, Any]) -> None:
        """Inverse of `_save_extra`."""

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw float64 rows → float64 CPU probabilities, in one batched forward."""
        z = self._scaler.transform(x).to(self._device)
        self._net.eval()
        with torch.inference_mode():
            return torch.softmax(self._net(z).double(), dim=1).cpu()

    def _evaluate(self, x: torch.Tensor, y_ids: list[int]) -> tuple[float, float]:
        z = self._scaler.transform(x).to(self._device)
        y = torch.tensor(y_ids, device=self._device)
        self._net.eval()
        with torch.inference_mode():
            logits = self._net(z)
            loss = nn.functional.cross_entropy(logits, y).item()
            accuracy = (logits.argmax(1) == y).double().mean().item()
        return loss, accuracy


def _require(ok: bool, name: str, value: Any, accepted: str) -> None:
    if not ok:
        raise ValueError(f"{name}={value!r} is not valid; expected {accepted}")


class TorchMLPRegressor(TorchMLPLearner):
    """The same network as a regressor: one linear output, trained by mean squared error on
    the standardised target (running mean and variance of the targets learned), so a single
    learning rate suits any target scale. `predict_one` answers a float (None before the
    first mini-batch); the replay reservoir keeps a uniform sample of past events (one
    "class"), each row stored with its target. Snapshots still hold tensors, lists and
    numbers only (``weights_only``).

    >>> model = TorchMLPRegressor(hidden_layers=(16,), lr=0.01, batch_size=8, seed=1)
    >>> model.predict_one({"x": 1.0}) is None
    True
    >>> for i in range(1500):
    ...     x = (i * 7 % 13) / 12
    ...     model.learn_one({"x": x}, 100.0 + 20.0 * x)
    >>> abs(model.predict_one({"x": 0.5}) - 110.0) < 2.0
    True
    >>> restored = TorchMLPRegressor.from_bytes(model.to_bytes())
    >>> restored.predict_one({"x": 0.25}) == model.predict_one({"x": 0.25})
    True
    >>> from training.learners.base import RowsPredictor
    >>> isinstance(model, RowsPredictor), model.predict_rows(np.array([[0.5]])).round().tolist()
    (False, [110.0])
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        spec = kwargs.get("spec")
        if spec is not None and spec.task is not Task.REGRESSION:
            raise ValueError(f"TorchMLPRegressor predicts a number; the spec's task is {spec.task.value}")
        if kwargs.get("classes") is not None:
            raise ValueError("a regressor has no classes; leave classes=None")
        self._target = RunningScaler(1)
        super().__init__(*args, **kwargs)
        self._reservoir.add_class()  # one "class": a uniform sample of the past

    @property
    def task(self) -> Task:
        return Task.REGRESSION

    @property
    def classes(self) -> list[Label]:
        return []

    def predict_proba_many(self, xs: Sequence[Features]) -> list[dict[Label, float]]:
        raise TypeError("TorchMLPRegressor is a regressor: it has no class probabilities")

    #: not a `RowsPredictor` (no probabilities): None, so ``isinstance`` and ``getattr`` say so;
    #: its numeric fast path is `predict_rows`
    predict_proba_rows = None  # type: ignore[assignment]

    def predict_one(self, x: Features) -> float | None:
        return self.predict_many([x])[0]

    def predict_many(self, xs: Sequence[Features]) -> list[float | None]:
        """Predicted values for a batch, in one forward pass (None before any learning)."""
        if self._encoder is None or self._encoder.identity:
            for x in xs:
                check_features(x)
        if self._untrained() or not xs:
            return [None for _ in xs]
        return self._forward(self._vectors(xs)).tolist()

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """Serving's fast path: numeric ``[n, n_features]`` rows in, ``[n]`` values out."""
        if self._encoder is not None and not self._encoder.identity:
            raise TypeError("predict_rows takes numeric rows; this model's spec has other kinds")
        x = torch.as_tensor(np.asarray(rows, dtype=np.float64)).reshape(len(rows), -1)
        if x.shape[1] != len(self._features):
            raise ValueError(f"rows have {x.shape[1]} columns; expected {len(self._features)} ({self._features})")
        if torch.isinf(x).any():
            raise InvalidFeaturesError("rows contain infinity; features must be finite numbers")
        if self._untrained():
            return np.full(len(x), np.nan)
        return self._forward(x).numpy()

    def fit_offline(self, X_train, y_train, X_val, y_val, *, max_epochs: int = 50,
                    patience: int = 5) -> dict[str, Any]:
        """As the classifier's; the history has ``val_mae`` instead of ``val_accuracy``."""
        history = super().fit_offline(X_train, y_train, X_val, y_val, max_epochs=max_epochs, patience=patience)
        history["val_mae"] = history.pop("val_accuracy")
        return history

    # -- the regression hooks -------------------------------------------------------------

    def _ingest(self, xs: Sequence[Features], ys: Sequence[Any]) -> tuple[torch.Tensor, list[float]]:
        if len(xs) != len(ys):
            raise ValueError(f"got {len(xs)} feature rows but {len(ys)} labels; they must match")
        if self._encoder is None or self._encoder.identity:
            for x in xs:
                check_features(x)
        for y in ys:
            if isinstance(y, bool) or not isinstance(y, int | float) or not math.isfinite(y):
                raise ValueError(f"label {y!r} is not a finite number; a regressor learns numbers")
        first = next((x for x in xs if x), None)
        if self._net is None and first is not None:
            self._build(first.keys())
        return self._vectors(xs), [float(y) for y in ys]

    def _n_outputs(self) -> int:
        return 1

    def _observe_targets(self, ys: Sequence[float]) -> None:
        if len(ys):
            self._target.update(torch.tensor(ys, dtype=torch.float64).reshape(-1, 1))

    def _standard_targets(self, y: torch.Tensor) -> torch.Tensor:
        return self._target.transform(y.reshape(-1, 1).double().cpu()).reshape(-1).to(y.device)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(out.reshape(-1), self._standard_targets(y))

    def _remember(self, row: torch.Tensor, y: float) -> None:
        self._reservoir.add(torch.cat([row, row.new_tensor([y])]), 0)

    def _replay(self, k: int) -> tuple[torch.Tensor, list[float]] | None:
        sample = self._reservoir.sample(k)
        if sample is None:
            return None
        rows = sample[0]
        return rows[:, :-1], rows[:, -1].tolist()

    def _memory_width(self) -> int:
        return len(self._features) + 1

    def _save_extra(self, state: dict[str, Any]) -> None:
        state["target"] = self._target.state()

    def _load_extra(self, state: dict[str, Any]) -> None:
        self._target = RunningScaler.from_state(state["target"])

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw float64 rows → float64 CPU values, in one batched forward."""
        z = self._scaler.transform(x).to(self._device)
        self._net.eval()
        with torch.inference_mode():
            out = self._net(z).double().reshape(-1).cpu()
        var = self._target.m2 / self._target.count.clamp(min=1)
        std = torch.where(var > 1e-12, var.sqrt(), 1.0)
        return out * std + self._target.mean

    def _evaluate(self, x: torch.Tensor, y: list[float]) -> tuple[float, float]:
        """Validation loss (MSE in standardised units) and MAE (in the target's units)."""
        target = torch.tensor(y, dtype=torch.float64)
        pred = self._forward(x)
        z = self._target.transform(target.reshape(-1, 1)).reshape(-1).double()
        zp = self._target.transform(pred.reshape(-1, 1)).reshape(-1).double()
        return float(((zp - z) ** 2).mean()), float((pred - target).abs().mean())
