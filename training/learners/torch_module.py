"""A user's ``torch.nn.Module`` fine-tuned online: the generic fine-tuner behind the protocol.

The network is the user's (built by their factory, ``module:factory``); this class supplies
what turns it into a learner of a model: the spec's dense encoding as its input
(`training.encoding`, width ``n_inputs``) — or, when the whole input is one required tensor
feature (an image ``[C, H, W]``, say), the batch in that shape, ``[n, C, H, W]`` — optional
running standardisation (per value), mini-batches
of ``batch_size`` events each trained for ``epochs_per_batch`` steps, mixed with examples
replayed from a class-balanced reservoir (`training.learners.torch_parts`) so that adapting
to the present does not erase the past, layers frozen by name prefix (transfer learning),
pre-trained weights from a file (loaded with ``torch.load(weights_only=True)``), CUDA when
present.

The network's output is ``n_outputs`` logits: one per spec class (cross-entropy), or one
value (regression, squared error on a running-standardised target). A network predicts
from its first event on — a pre-trained one is useful before it has learned anything here.

Snapshot format "torch": the factory path and parameters, the fine-tuner's parameters, the
spec, and the learned state as tensors, lists and numbers only — ``weights_only``-loadable.
Restoring rebuilds the network by importing the factory, which must be allowed
(`training.learners.factories`), then loads the state dict: no pickled code runs.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from training.encoding import Encoding, RowEncoder
from training.learners.base import Features, Label, Learner
from training.learners.factories import (
    TUNER_PARAMS,  # the parameters this class takes as a candidate
)
from training.learners.torch_parts import ClassBalancedReservoir, RunningScaler, seeded
from training.spec import ModelSpec, Task

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}
_SNAPSHOT_VERSION = 1



class TorchModuleLearner(Learner):
    """Online fine-tuning of the network ``factory`` builds (see module docstring).

    Args:
        factory: ``module:factory`` returning a ``torch.nn.Module`` of ``n_inputs`` →
            ``n_outputs``.
        spec: the model's spec (its dense encoding is the network's input).
        factory_params: keyword arguments of the factory (JSON-like values).
        optimizer: ``adam``, ``adamw`` or ``sgd``; ``lr`` its learning rate.
        batch_size: events per fine-tuning step; ``epochs_per_batch`` steps per batch.
        replay_size: capacity of the class-balanced replay reservoir (0 disables replay);
            ``replay_ratio`` replayed examples per new one in a step.
        freeze: parameter-name prefixes not trained (e.g. ``["features."]``).
        weights: path of pre-trained weights (a state dict, or ``{"state_dict": ...}``).
        standardize: standardise the encoded inputs with running statistics (off for a
            network pre-trained on raw inputs).
        device: ``cpu``, ``cuda``; default CUDA when present.
    """

    snapshot_format = "torch"

    def __init__(self, factory: str, spec: ModelSpec, factory_params: dict[str, Any] | None = None, *,
                 name: str | None = None, optimizer: str = "adam", lr: float = 1e-3, batch_size: int = 16,
                 epochs_per_batch: int = 1, replay_size: int = 1000, replay_ratio: float = 1.0,
                 freeze: Sequence[str] = (), weights: str | None = None, standardize: bool = True,
                 device: str | None = None, seed: int = 0) -> None:
        _require(optimizer in OPTIMIZERS, "optimizer", optimizer, f"one of {', '.join(OPTIMIZERS)}")
        _require(lr > 0, "lr", lr, "a positive number")
        _require(int(batch_size) >= 1, "batch_size", batch_size, "an integer >= 1")
        _require(int(epochs_per_batch) >= 1, "epochs_per_batch", epochs_per_batch, "an integer >= 1")
        _require(int(replay_size) >= 0, "replay_size", replay_size, "an integer >= 0 (0 disables replay)")
        _require(replay_ratio >= 0, "replay_ratio", replay_ratio, "a number >= 0")
        if spec is None:
            raise ValueError(f"{factory}: a torch.nn.Module learner needs the model's spec (its input is the "
                             "spec's dense encoding)")
        self.factory = factory
        self.factory_params = dict(factory_params or {})
        self.spec = spec
        self.name = name or factory
        self.optimizer = optimizer
        self.lr = float(lr)
        self.batch_size = int(batch_size)
        self.epochs_per_batch = int(epochs_per_batch)
        self.replay_size = int(replay_size)
        self.replay_ratio = float(replay_ratio)
        self.freeze = tuple(freeze)
        self.weights = weights
        self.standardize = bool(standardize)
        self.device = device
        self.seed = int(seed)
        self._regression = spec.task is Task.REGRESSION
        self._classes: list[Label] = [] if self._regression else list(spec.classes or ())
        if not self._regression and not self._classes:
            raise ValueError(f"{factory}: the spec names no classes; a network needs them to size its output")
        self._class_ids = {c: i for i, c in enumerate(self._classes)}
        self._encoder = RowEncoder(spec, Encoding.DENSE)
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._rng = random.Random(self.seed)
        self._net = self._build_network(load_weights=True)
        self._opt = self._make_optimizer()
        width = self._encoder.width
        self._scaler = RunningScaler(width)
        self._target = RunningScaler(1)  # regression: the target's running mean and spread
        # replay rows carry the target as an extra last column (regression) or the class id
        self._reservoir = ClassBalancedReservoir(self.replay_size, self._rng)
        for _ in range(1 if self._regression else len(self._classes)):
            self._reservoir.add_class()
        self._pending_x: list[torch.Tensor] = []
        self._pending_y: list[float] = []
        self._learned = 0

    # -- construction ---------------------------------------------------------------------

    def _build_network(self, load_weights: bool) -> nn.Module:
        from training.learners.candidates import call_factory
        from training.learners.factories import import_factory

        factory = import_factory(self.factory)
        with seeded(self.seed, self._device):
            net = call_factory(factory, self.spec, dict(self.factory_params))
        if not isinstance(net, nn.Module):
            raise TypeError(f"factory {self.factory!r} returned {type(net).__name__}, not a torch.nn.Module")
        if load_weights and self.weights:
            state = torch.load(self.weights, weights_only=True, map_location="cpu")
            if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
                state = state["state_dict"]
            net.load_state_dict(state)
        net = net.to(self._device)
        for pname, p in net.named_parameters():
            if any(pname.startswith(prefix) for prefix in self.freeze):
                p.requires_grad_(False)
        return net

    def _make_optimizer(self) -> torch.optim.Optimizer | None:
        trainable = [p for p in self._net.parameters() if p.requires_grad]
        return OPTIMIZERS[self.optimizer](trainable, lr=self.lr) if trainable else None

    # -- protocol -------------------------------------------------------------------------

    @property
    def task(self) -> Task:
        return Task.REGRESSION if self._regression else Task.CLASSIFICATION

    def params(self) -> dict[str, Any]:
        return {"factory": self.factory, "spec": self.spec, "factory_params": dict(self.factory_params),
                "name": self.name, "optimizer": self.optimizer, "lr": self.lr, "batch_size": self.batch_size,
                "epochs_per_batch": self.epochs_per_batch, "replay_size": self.replay_size,
                "replay_ratio": self.replay_ratio, "freeze": self.freeze, "weights": self.weights,
                "standardize": self.standardize, "device": self.device, "seed": self.seed}

    def clone(self) -> TorchModuleLearner:
        return type(self)(**self.params())

    def candidate_params(self) -> dict[str, Any]:
        """What `build_from_path` takes to rebuild this learner untrained: the factory's
        parameters and the fine-tuner's (JSON values, as the registry records them)."""
        tuner = {k: v for k, v in self.params().items() if k in TUNER_PARAMS}
        return {**self.factory_params, **tuner, "freeze": list(self.freeze)}

    @property
    def classes(self) -> list[Label]:
        return list(self._classes)

    @property
    def torch_device(self) -> torch.device:
        return self._device

    def predict_proba_one(self, x: Features) -> dict[Label, float]:
        return self.predict_proba_many([x])[0]

    def predict_proba_many(self, xs: Sequence[Features]) -> list[dict[Label, float]]:
        if self._regression:
            return super().predict_proba_one(xs[0] if xs else {})  # raises: no probabilities
        if not xs:
            return []
        proba = torch.softmax(self._forward(self._vectors(xs)).double(), dim=1).cpu().tolist()
        return [dict(zip(self._classes, row, strict=True)) for row in proba]

    def predict_proba_rows(self, rows: np.ndarray) -> np.ndarray:
        """Serving's fast path (`RowsPredictor`): the dense input as ``[n, n_inputs]`` float
        rows — the numeric features in spec order, or a tensor feature's values flat — in,
        ``[n, n_classes]`` probabilities in `classes` order out: no per-row dicts between the
        request's array and the network."""
        if self._regression:
            raise TypeError(f"{self.name}: a regression network has no class probabilities")
        if not self.spec.numeric_only and (self.spec.tensor_input is None or self.spec.tensor_input.optional):
            raise TypeError("predict_proba_rows takes dense rows; this model's spec has other kinds of features")
        x = torch.as_tensor(np.asarray(rows, dtype=np.float64)).reshape(len(rows), -1)
        if x.shape[1] != self._encoder.width:
            raise ValueError(f"rows have {x.shape[1]} values; the network takes {self._encoder.width}")
        return torch.softmax(self._forward(x).double(), dim=1).cpu().numpy()

    def forward_parts(self) -> tuple[nn.Module, RunningScaler | None]:
        """The network and its input scaler (None when inputs go in unscaled), for a
        benchmark that times the bare forward against the whole serving path."""
        return self._net, self._scaler if self.standardize else None

    def predict_one(self, x: Features) -> Label | float | None:
        return self.predict_many([x])[0]

    def predict_many(self, xs: Sequence[Features]) -> list[Label | float | None]:
        if not self._regression:
            return [max(p, key=p.__getitem__) if p else None for p in self.predict_proba_many(xs)]
        if not xs:
            return []
        out = self._forward(self._vectors(xs)).double().reshape(len(xs), -1)[:, 0].cpu()
        return [float(v) for v in self._unscale_target(out).tolist()]

    def learn_one(self, x: Features, y: Label) -> None:
        self.learn_many([x], [y])

    def learn_many(self, xs: Sequence[Features], ys: Sequence[Label]) -> None:
        """Buffer labelled events; fine-tune on every full mini-batch of ``batch_size``."""
        if len(xs) != len(ys):
            raise ValueError(f"got {len(xs)} feature rows but {len(ys)} labels; they must match")
        targets = [self._target_of(y) for y in ys]  # every label checked before anything is learned
        rows = self._vectors(xs)
        if self.standardize:
            self._scaler.update(rows)
        if self._regression:
            self._target.update(torch.tensor(targets, dtype=torch.float64).reshape(-1, 1))
        for row, t in zip(rows.unbind(0), targets, strict=True):
            self._pending_x.append(row)
            self._pending_y.append(t)
            self._learned += 1
            if len(self._pending_y) >= self.batch_size:
                self._fine_tune()

    # -- snapshots ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        params = self.params()
        params["spec"] = self.spec.to_dict()
        params["freeze"] = list(self.freeze)
        version, internal, gauss = self._rng.getstate()
        width = self._encoder.width + (1 if self._regression else 0)
        state = {
            "version": _SNAPSHOT_VERSION,
            "params": params,
            "network": {k: v.detach().cpu() for k, v in self._net.state_dict().items()},
            "optimizer": self._opt.state_dict() if self._opt is not None else None,
            "scaler": self._scaler.state(),
            "target": self._target.state(),
            "reservoir": self._reservoir.state(width),
            "pending_x": torch.stack(self._pending_x) if self._pending_x else torch.zeros((0, self._encoder.width),
                                                                                          dtype=torch.float64),
            "pending_y": list(self._pending_y),
            "learned": self._learned,
            "rng": {"version": version, "internal": list(internal), "gauss": gauss},
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, device: str | None = None) -> TorchModuleLearner:
        """Rebuild from the factory (allow-listed import), then load the state (weights_only)."""
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        if state.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {state.get('version')!r} is not supported "
                             f"(expected {_SNAPSHOT_VERSION})")
        params = dict(state["params"])
        params["spec"] = ModelSpec.from_dict(params["spec"])
        if device is not None:
            params["device"] = device
        weights, params["weights"] = params.get("weights"), None  # the state below supersedes the file
        learner = cls(**params)
        learner.weights = weights
        learner._net.load_state_dict(state["network"])
        if state["optimizer"] is not None and learner._opt is not None:
            learner._opt.load_state_dict(state["optimizer"])
        learner._scaler = RunningScaler.from_state(state["scaler"])
        learner._target = RunningScaler.from_state(state["target"])
        learner._reservoir.load_state(state["reservoir"])
        learner._pending_x = list(state["pending_x"].unbind(0))
        learner._pending_y = list(state["pending_y"])
        learner._learned = int(state["learned"])
        rng = state["rng"]
        learner._rng.setstate((rng["version"], tuple(rng["internal"]), rng["gauss"]))
        return learner

    def __getstate__(self) -> dict[str, Any]:
        return {"snapshot": self.to_bytes()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(type(self).from_bytes(state["snapshot"]).__dict__)

    # -- internals ------------------------------------------------------------------------

    def _target_of(self, y: Label) -> float:
        if self._regression:
            return float(y)
        if y not in self._class_ids:
            raise ValueError(f"label {y!r} is not one of the model's classes {self._classes}; the network's "
                             "output is sized from the spec")
        return float(self._class_ids[y])

    def _vectors(self, xs: Sequence[Features]) -> torch.Tensor:
        encoder = self._encoder
        tensor = self.spec.tensor_input
        if tensor is not None and not tensor.optional:  # a tensor's values are the vector already
            name = tensor.name
            return torch.tensor([x[name] for x in xs], dtype=torch.float64).reshape(len(xs), encoder.width)
        return torch.tensor([encoder.vector(x) for x in xs], dtype=torch.float64).reshape(len(xs), encoder.width)

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        z = self._scaler.transform(x) if self.standardize else torch.nan_to_num(x, nan=0.0).to(torch.float32)
        tensor = self.spec.tensor_input
        if tensor is not None and not tensor.optional:  # the network sees [n, C, H, W], not [n, C*H*W]
            z = z.reshape(len(z), *tensor.shape)
        return z.to(self._device)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        self._net.eval()
        with torch.inference_mode():
            return self._net(self._inputs(x))

    def _scale_target(self, y: torch.Tensor) -> torch.Tensor:
        return self._target.transform(y.reshape(-1, 1).double()).reshape(-1)

    def _unscale_target(self, z: torch.Tensor) -> torch.Tensor:
        t = self._target
        var = t.m2 / t.count.clamp(min=1)
        std = torch.where(var > 1e-12, var.sqrt(), 1.0)
        return z * std[0] + t.mean[0]

    def _fine_tune(self) -> None:
        x = torch.stack(self._pending_x)
        y = torch.tensor(self._pending_y, dtype=torch.float64)
        n_replay = round(self.replay_ratio * len(self._pending_y))
        if self._opt is not None:
            for _ in range(self.epochs_per_batch):
                bx, by = x, y
                replay = self._reservoir.sample(n_replay)
                if replay is not None:
                    rows, ids = replay
                    if self._regression:
                        rx, ry = rows[:, :-1], rows[:, -1]
                    else:
                        rx, ry = rows, torch.tensor(ids, dtype=torch.float64)
                    bx, by = torch.cat([x, rx]), torch.cat([y, ry])
                self._step(self._inputs(bx), by)
        for row, t in zip(self._pending_x, self._pending_y, strict=True):
            if self._regression:
                self._reservoir.add(torch.cat([row, torch.tensor([t], dtype=torch.float64)]), 0)
            else:
                self._reservoir.add(row, int(t))
        self._pending_x, self._pending_y = [], []

    def _step(self, z: torch.Tensor, y: torch.Tensor) -> None:
        with seeded(self._rng.getrandbits(63), self._device):
            self._net.train()
            self._opt.zero_grad()
            out = self._net(z)
            if self._regression:
                target = self._scale_target(y).to(self._device, torch.float32)
                loss = nn.functional.mse_loss(out.reshape(len(y), -1)[:, 0], target)
            else:
                loss = nn.functional.cross_entropy(out, y.to(self._device, torch.long))
            loss.backward()
            self._opt.step()


def _require(ok: bool, name: str, value: Any, accepted: str) -> None:
    if not ok:
        raise ValueError(f"{name}={value!r} is not valid; expected {accepted}")
