"""The champion of every model, and the hot swap that replaces it without a failed request.

A `Champion` is one loaded, verified, warmed-up version: learner, its model spec (what a row
may hold, the task) and the row validator built from it, classes, its own adaptive batcher
and drift monitor. The spec, not the learner, fixes what clients send, so a promotion to
another learner of the same model never changes the accepted input. `ModelHolder` maps model name to champion; a
watcher thread polls ``registry.alias_token`` (one stat per model per second) and, when the
``champion`` alias moves, loads the new version *fully* — verify, deserialize, one warm-up
forward — before it replaces the mapping in a single assignment. A request takes its
champion once at the start and keeps it to the end, so in-flight requests finish on the old
version; the old batcher is closed when its last request leaves. A version that fails to
load, verify or predict is refused (counted as ``perennial_model_swaps_total{result="refused"}``,
logged with the reason) and the old champion keeps serving. When nothing is served yet (at
start) and the champion is refused, the ``previous`` version is served if it verifies
(``perennial_champion_fallbacks_total``), so one corrupt file does not take the model offline;
either way the watcher retries the champion every ``retry_s``, so a repaired file is picked
up without an alias move.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import anyio.to_thread
import numpy as np
from pydantic_core import to_json

from service.batch import Batch, batch_of
from service.batching import AdaptiveBatcher
from service.drift import DriftMonitor
from service.errors import Kind, ServingError
from streaming.metrics import ServiceMetrics
from training.learners.base import Learner, RowsPredictor
from training.registry import LoadedVersion, Registry, VersionInfo, model_spec
from training.rows import RowValidator, typical_row
from training.spec import ModelSpec, Task

log = logging.getLogger(__name__)

#: without a batcher, a forward of at most this many rows runs on the event loop itself
INLINE_ROWS = 64


class _Series(NamedTuple):
    predictions: Any  # prometheus_client children of the service's metrics
    inference_seconds: Any
    batch_size: Any


@dataclass(eq=False)
class Champion:
    """One served version and its spec. `forward` maps a validated `Batch` to ``[n, n_classes]``
    probabilities (classification; columns in `classes` order) or ``[n]`` values (regression)."""

    model: str
    info: VersionInfo
    learner: Learner
    spec: ModelSpec
    metrics: ServiceMetrics
    drift: DriftMonitor
    batcher: AdaptiveBatcher | None = None
    _inflight: int = 0
    _retired: bool = False
    _threaded: int = 0  # forwards running in a worker thread (no batcher); event-loop thread only

    def __post_init__(self) -> None:
        spec = self.spec
        #: the one row validator of this model (`training.rows`), built once per champion
        self.validator = RowValidator(spec)
        self.features: list[str] = list(spec.feature_names)
        self.task: Task = spec.task
        learned = list(self.learner.classes)
        # the spec's class order when it fixes one (stable across promotions), else the learner's
        self.classes: list = list(spec.classes) if self.is_classification and spec.classes else learned
        #: the classes as JSON values, and as the strings that key probabilities
        self.json_classes: list = [c.item() if hasattr(c, "item") else c for c in self.classes]
        self.class_keys: list[str] = [str(c) for c in self.classes]
        self.label_texts: list[str] = [to_json(c).decode() for c in self.json_classes]  # labels as JSON text
        self._series: _Series | None = None
        self._rows_fn = None
        self._limiter = anyio.CapacityLimiter(1)
        if self.is_classification and isinstance(self.learner, RowsPredictor):
            # the learner's rows are in its `n_features_in` order, the batch's in the spec's:
            # the same names (else the fast path is not for this spec), maybe reordered
            accepted = list(self.learner.n_features_in)
            if sorted(accepted) == sorted(self.features):
                self._rows_fn = self.learner.predict_proba_rows
                self._row_order = (None if accepted == self.features
                                   else np.array([self.features.index(n) for n in accepted]))
            # columns of the learner's output in `classes` order; -1 for a class it never saw
            cols = [learned.index(c) if c in learned else -1 for c in self.classes]
            self._columns = None if cols == list(range(len(learned))) else np.array(cols)

    @property
    def version(self) -> int:
        return self.info.version

    @property
    def series(self) -> _Series:
        """This champion's per-request metric series, resolved on first use (``labels()`` costs
        more than the update, and a series must not appear before its first request)."""
        if self._series is None:
            m = self.metrics
            self._series = _Series(m.predictions.labels(model=self.model, version=str(self.version)),
                                   m.inference_seconds.labels(model=self.model),
                                   m.batch_size.labels(model=self.model))
        return self._series

    @property
    def is_classification(self) -> bool:
        return self.spec.task is Task.CLASSIFICATION

    def forward(self, batch: Batch, observe: bool = True) -> np.ndarray:
        """One batched prediction (runs in the batch worker thread)."""
        start = time.perf_counter()
        if not self.is_classification:
            values = self.learner.predict_many(batch.rows)
            out = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        elif self._rows_fn is not None and (batch.numeric is not None or batch.tensor is not None):
            # the vectorised path: numeric-only rows in feature order, or one tensor's values
            if batch.numeric is not None:
                rows = batch.numeric if self._row_order is None else batch.numeric[:, self._row_order]
            else:
                rows = batch.tensor
            out = np.asarray(self._rows_fn(rows), dtype=np.float64)
            if self._columns is not None:
                out = np.where(self._columns >= 0, out[:, np.maximum(self._columns, 0)], 0.0)
        else:
            classes = self.classes
            probas = self.learner.predict_proba_many(batch.rows)
            out = np.array([[p.get(c, 0.0) for c in classes] for p in probas], dtype=np.float64)
            out = out.reshape(len(probas), len(classes))
        if observe:
            series = self.series
            series.inference_seconds.observe(time.perf_counter() - start)
            series.batch_size.observe(len(batch))
            self.drift.observe(batch)  # every kind of feature; numpy fast path when numeric
        return out

    async def predict(self, batch: Batch) -> np.ndarray:
        """`forward` of ``batch``: through this champion's adaptive batcher when it has one
        (PyTorch learners), else at once — on the event loop for a small batch (a thread hop
        costs more than a CPU forward of a few rows), in a worker thread for a large one. One
        forward at a time either way (the drift monitor is not thread-safe)."""
        if self.batcher is not None:
            return await self.batcher.submit(batch)
        if self._threaded == 0 and len(batch) <= INLINE_ROWS:
            return self.forward(batch)
        self._threaded += 1
        try:
            return await anyio.to_thread.run_sync(self.forward, batch, limiter=self._limiter)
        finally:
            self._threaded -= 1

    # In-flight accounting runs on the event loop thread only (the data plane's coroutines),
    # so "no request holds me" can be decided without a race: a request that fetched this
    # champion before the swap acquired it in that same loop step, before any close check.

    def acquire(self) -> None:
        self._inflight += 1

    def release(self) -> None:
        self._inflight -= 1
        if self._retired and self._inflight == 0 and self.batcher is not None:
            self.batcher.shutdown()

    def retire(self) -> None:
        """No new requests will come (any thread); close the batcher once in-flight ones end."""
        self._retired = True
        if self.batcher is not None:
            self.batcher.in_loop(self._close_if_idle)

    def _close_if_idle(self) -> None:
        if self._inflight == 0:
            self.batcher.shutdown()


def build_champion(
    loaded: LoadedVersion,
    metrics: ServiceMetrics,
    *,
    max_batch_size: int,
    max_latency_ms: int,
    drift_window: int = 2000,
    drift_every: int = 200,
    drift_min_interval_s: float = 0.0,
    device: str = "auto",
    idle_wait: bool = False,
    batching: str = "auto",
) -> Champion:
    """Turn a verified registry version into a servable, warmed-up `Champion`.

    ``batching``: ``auto`` gives PyTorch learners the adaptive batcher (one tensor forward
    for many requests pays, on a GPU most) and runs other learners' forwards at once (a CPU
    model gains nothing from waiting for company); ``always`` / ``never`` force either."""
    info, learner = loaded.info, _place(loaded.learner, device)
    where = f"model {info.model!r} version {info.version}"
    spec = model_spec(info, learner)
    if not spec.feature_names:  # only a spec implied by a learner that never trained
        raise ValueError(f"{where} has no feature names (learner never trained, no spec)")
    if spec.task is Task.CLASSIFICATION and not (spec.classes or learner.classes):
        raise ValueError(f"{where} knows no classes (learner never trained)")
    drift = DriftMonitor(
        info.model, spec, info.reference, metrics, window=drift_window, every=drift_every,
        min_interval_s=drift_min_interval_s,
    )
    champ = Champion(info.model, info, learner, spec, metrics, drift)
    warm = champ.forward(warmup_batch(champ.validator), observe=False)
    expected = (1, len(champ.classes)) if champ.is_classification else (1,)
    if warm.shape != expected or not np.all(np.isfinite(warm)):
        raise ValueError(f"{where} failed its warm-up prediction (got {warm!r})")
    if batching == "always" or (batching == "auto" and learner.snapshot_format == "torch"):
        champ.batcher = AdaptiveBatcher(champ.forward, max_batch_size, max_latency_ms, idle_wait)
    return champ


def warmup_batch(validator: RowValidator) -> Batch:
    """One valid row of the spec (`training.rows.typical_row`)."""
    raw = typical_row(validator.spec)
    row = validator.row(raw)
    return batch_of([row], validator)


def _place(learner: Learner, device: str) -> Learner:
    """Move a PyTorch learner to the serving device (CUDA when present, for ``auto``).

    Learners pick their device when built; a snapshot taken on a CPU trainer would otherwise
    serve on the CPU of a GPU machine. Re-materialising from bytes is cheap next to a load.
    """
    if learner.snapshot_format != "torch":
        return learner
    from_bytes = type(learner).from_bytes
    if "device" not in inspect.signature(from_bytes).parameters:
        return learner
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    current = getattr(learner, "_device", None)
    if current is not None and str(getattr(current, "type", current)) == device:
        return learner
    return from_bytes(learner.to_bytes(), device=device)


class ModelHolder:
    """Current champion per model, kept fresh by a watcher thread (see module docstring)."""

    def __init__(
        self,
        registry: Registry,
        build: Callable[[LoadedVersion], Champion],
        metrics: ServiceMetrics,
        interval_s: float = 1.0,
        retry_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self._build = build
        self._metrics = metrics
        self._interval = interval_s
        self._retry_s = retry_s
        self._clock = clock
        self._retry_at: dict[str, float] = {}  # models whose champion alias is not what they serve
        self._champions: dict[str, Champion] = {}
        self._tokens: dict[str, object] = {}
        self._stop = threading.Event()
        self._poll_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.refusals: list[dict] = []  # most recent last; also in the log and the metrics

    # -- reading (any thread) ---------------------------------------------------------------

    def get(self, model: str) -> Champion:
        champ = self._champions.get(model)
        if champ is None:
            raise ServingError(
                Kind.NOT_FOUND, f"unknown model {model!r}; served models: {sorted(self._champions)}"
            )
        return champ

    def served(self) -> dict[str, Champion]:
        return dict(self._champions)

    @property
    def ready(self) -> bool:
        """True when at least one model is served and every model with a champion alias is
        (a model serving its ``previous`` version because the champion did not verify counts)."""
        return bool(self._champions) and all(
            m in self._champions for m, t in self._tokens.items() if t is not None
        )

    # -- refreshing (watcher thread, or the caller of poll_once) ----------------------------

    def poll_once(self) -> None:
        """Load champions whose alias moved since the last poll (and models that appeared).

        Serialized: the watcher and an admin promote may both poll; one loads, the other sees
        the new token and does nothing.
        """
        with self._poll_lock:
            self._poll()

    def _poll(self) -> None:
        for model in self.registry.models():
            try:
                token = self.registry.alias_token(model)
            except Exception as e:  # a broken alias file must not stop the watcher
                log.warning("cannot read champion alias of %s: %s", model, e)
                continue
            if token != self._tokens.get(model, ()):
                self._refresh(model, token)
            elif model in self._retry_at and self._clock() >= self._retry_at[model]:
                self._refresh(model, token)  # the champion was refused: it may have been repaired

    def _refresh(self, model: str, token) -> None:
        self._tokens[model] = token
        self._retry_at.pop(model, None)
        version = token[0] if token else None
        current = self._champions.get(model)
        if version is None or (current is not None and current.version == version):
            return
        try:
            champ = self._build(self.registry.load(model, version))
        except Exception as e:
            self._metrics.model_swaps.labels(model=model, result="refused").inc()
            served = current.version if current else None
            log.error("refused %s version %s (still serving %s; retrying in %.0fs): %s",
                      model, version, served, self._retry_s, e)
            self.refusals.append({"model": model, "version": version, "reason": str(e)})
            del self.refusals[:-20]
            self._retry_at[model] = self._clock() + self._retry_s
            if current is None:
                self._fall_back(model, version)
            return
        self._install(model, champ, current)

    def _fall_back(self, model: str, refused: int) -> None:
        """Nothing served and the champion refused (at start): serve ``previous`` if it verifies."""
        try:
            previous = self.registry.alias(model, "previous")
            if previous is None or previous == refused:
                return
            champ = self._build(self.registry.load(model, previous))
        except Exception as e:
            log.error("%s: previous version cannot be served either: %s", model, e)
            return
        self._metrics.champion_fallbacks.labels(model=model).inc()
        log.error("%s: champion version %s does not verify or load; serving previous version %s instead "
                  "until the champion is repaired or moved", model, refused, previous)
        self._install(model, champ, None)

    def _install(self, model: str, champ: Champion, current: Champion | None) -> None:
        self._champions = {**self._champions, model: champ}  # one reference swap
        self._metrics.model_swaps.labels(model=model, result="loaded").inc()
        self._metrics.served_version.labels(model=model).set(champ.version)
        self._metrics.ready.set(1 if self.ready else 0)
        old = current.version if current else None
        log.info("serving %s version %d (was %s, learner %s)", model, champ.version, old, champ.info.learner)
        if current is not None:
            current.retire()

    def start(self) -> None:
        """Load every champion now, then watch the registry in a daemon thread."""
        self.poll_once()
        self._metrics.ready.set(1 if self.ready else 0)
        self._thread = threading.Thread(target=self._watch, name="perennial-model-watcher", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll_once()
            except Exception:  # keep watching whatever happens; the old champions keep serving
                log.exception("registry watch failed; retrying in %.1fs", self._interval)
            for champ in list(self._champions.values()):
                try:  # drift gauges held back by their minimum interval, when traffic stopped
                    champ.drift.flush()
                except Exception:
                    log.exception("drift refresh of %s failed", champ.model)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for champ in self._champions.values():
            champ.retire()
