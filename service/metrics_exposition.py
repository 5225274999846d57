"""Perennial's metrics next to BentoML's on one ``/metrics`` page.

BentoML runs its workers with ``PROMETHEUS_MULTIPROC_DIR`` set, which makes
``prometheus_client`` back *every* metric value created in the process (including each new
label child, created on first use) with mmap files, and BentoML's ``/metrics`` aggregates
those files. Built that way, Perennial's gauges would grow a ``pid`` label and a restarted
worker's stale series would linger. So `use_in_process_values` makes values of ``perennial_*``
metrics ordinary in-process floats (everything else stays as BentoML configured it), and the
service's ``__metrics__`` hook appends Perennial's own registry to BentoML's text; names
never collide (``perennial_`` versus ``bentoml_``).

With several workers (``perennial serve --workers N``) a scrape reaches one of them, so
in-process values would show that worker's counts only. There (`build_service_metrics`
with ``shared=True``) Perennial's metrics stay in the multiprocess mmap files like
BentoML's, BentoML's collector reads every worker's files, counters and histograms are
summed, gauges combine by their ``multiprocess_mode`` (see `ServiceMetrics`), and the
``__metrics__`` hook appends nothing (`append_exposition`).
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, generate_latest, values

from streaming.metrics import ServiceMetrics

PREFIX = "perennial_"
_PATCH_LOCK = threading.Lock()


def use_in_process_values() -> None:
    """Route value creation of ``perennial_*`` metrics to `values.MutexValue` (idempotent)."""
    with _PATCH_LOCK:
        current = values.ValueClass
        if getattr(current, "__perennial__", False) or current is values.MutexValue:
            return
        fallback = current

        def value_class(typ, metric_name, name, *args, **kwargs):
            cls = values.MutexValue if metric_name.startswith(PREFIX) else fallback
            return cls(typ, metric_name, name, *args, **kwargs)

        value_class.__perennial__ = True
        values.ValueClass = value_class


def build_service_metrics(shared: bool = False) -> ServiceMetrics:
    """`ServiceMetrics` in a fresh registry: in-process values even in multiprocess mode, or
    with ``shared`` (several workers) values in the multiprocess files, summed across workers."""
    if not shared:
        use_in_process_values()
    metrics = ServiceMetrics(CollectorRegistry())
    metrics.shared = shared
    return metrics


def append_exposition(bentoml_text: str, metrics: ServiceMetrics) -> str:
    """BentoML's exposition followed by Perennial's (already in it when the metrics are shared)."""
    if getattr(metrics, "shared", False):
        return bentoml_text
    ours = generate_latest(metrics.registry).decode("utf-8")
    if bentoml_text and not bentoml_text.endswith("\n"):
        bentoml_text += "\n"
    return bentoml_text + ours
