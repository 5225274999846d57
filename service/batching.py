"""BentoML's adaptive batching, owned by the data plane instead of one HTTP route.

``@bentoml.api(batchable=True)`` batches requests of one HTTP endpoint whose body is itself
the batch; Perennial's requests carry an envelope (``{model, instances}``, an OIP tensor, a
gRPC message) and three transports must share one queue per champion. So the data plane
drives BentoML's own batching engine, ``CorkDispatcher`` (the same object
``@bentoml.api(batchable=True)`` builds), directly: jobs are validated `service.batch.Batch`es
(raw rows, plus the numeric array of an all-numeric model), the dispatcher merges queued jobs
up to ``max_batch_size`` rows (`Batch.concat`), splits a job that straddles the cap (BentoML's
default container slices it), and learns the forward cost to decide how long to wait.

Two settings differ from BentoML's defaults, deliberately:

- BentoML sheds a request with 503 as soon as its estimated latency exceeds
  ``max_latency_ms``; Perennial sets that budget high (60 s by default) so an overload is
  queued and served late rather than failed.
- BentoML's dispatcher also learns an average wait and holds a lone request that long hoping
  for company; with one request in flight that wait settles near 20 ms (1 ms poll tick /
  (1 - 0.95 decay)) per request. With ``idle_wait=False`` (Perennial's default) an idle model
  runs a request at once, and requests that arrive while a batch runs are merged into the
  next one — batches still grow with load, latency does not grow without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import anyio.to_thread
import numpy as np
from bentoml._internal.marshal.dispatcher import CorkDispatcher, Optimizer

from service.batch import Batch
from service.errors import Kind, ServingError

#: a champion's forward: a batch of n rows to ``[n, ...]`` outputs (probabilities or values)
BatchFn = Callable[[Batch], np.ndarray]


class _NoIdleWait(Optimizer):
    """BentoML's batch cost model without the learned wait for more requests (always 0)."""

    @property
    def wait(self) -> float:
        return 0.0

    @wait.setter
    def wait(self, value: float) -> None:
        pass


class AdaptiveBatcher:
    """Queue batches for one model forward; ``fn`` maps a `Batch` of n rows to ``[n, ...]`` outputs.

    ``fn`` runs in a worker thread (one batch at a time per batcher), so a slow forward never
    blocks the event loop that accepts requests.
    """

    def __init__(self, fn: BatchFn, max_batch_size: int, max_latency_ms: int, idle_wait: bool = False) -> None:
        self._fn = fn
        self._dispatcher: CorkDispatcher = CorkDispatcher(
            max_latency_in_ms=max_latency_ms,
            max_batch_size=max_batch_size,
            fallback=self._shed,
            get_batch_size=len,
            batch_dim=(0, 0),
        )
        if not idle_wait:
            self._dispatcher.optimizer = _NoIdleWait(self._dispatcher.max_latency)
        self._submit = self._dispatcher(self._run_batch)
        self._loop: asyncio.AbstractEventLoop | None = None

    @staticmethod
    def _shed() -> np.ndarray:
        raise ServingError(
            Kind.UNAVAILABLE,
            "request waited longer than the batching latency budget "
            "(PERENNIAL_MAX_LATENCY_MS); the service is overloaded",
        )

    async def _run_batch(self, jobs: Sequence[Batch]) -> list[np.ndarray]:
        sizes = [len(j) for j in jobs]
        out = await anyio.to_thread.run_sync(self._fn, Batch.concat(jobs))
        return np.split(out, np.cumsum(sizes)[:-1]) if len(jobs) > 1 else [out]

    async def submit(self, batch: Batch) -> np.ndarray:
        """Outputs for ``batch``, computed in whatever batch the dispatcher forms."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return await self._submit(batch)

    def in_loop(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the batcher's event loop (thread-safe); nothing if never used."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn)

    def shutdown(self) -> None:
        """Stop the dispatcher's controller task; call on the event loop, with nothing queued."""
        self._dispatcher.shutdown()
