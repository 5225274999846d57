"""The metric names dashboards and alert rules may use, with their labels.

Perennial's own come from ``streaming/metrics.py`` (the one module that declares them), read
from the real ``TrainerMetrics`` / ``ServiceMetrics`` objects; BentoML's are the ones a
``perennial serve`` process (BentoML 1.4) exposes on ``/metrics`` next to them; ``up`` is
Prometheus' own. Each name is the *sample* name a query uses: ``<counter>_total``,
``<histogram>_bucket`` / ``_sum`` / ``_count``, ``<gauge>``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Labels every scraped series carries (target labels added by Prometheus).
TARGET_LABELS = ("job", "instance")

_BENTOML_HTTP = ("endpoint", "http_response_code", "runner_name", "service_name", "service_version")

#: BentoML 1.4's HTTP server metrics, as `perennial serve` exposes them (namespace
#: ``bentoml_service``). ``bentoml_service_adaptive_batch_size`` is deliberately absent:
#: BentoML records it only for ``@bentoml.api(batchable=True)`` endpoints, and Perennial drives
#: BentoML's batching engine itself (service/batching.py), measuring ``perennial_batch_size``.
BENTOML_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bentoml_service_request_total": ("counter", _BENTOML_HTTP),
    "bentoml_service_request_duration_seconds": ("histogram", _BENTOML_HTTP),
    "bentoml_service_request_in_progress": (
        "gauge", ("endpoint", "runner_name", "service_name", "service_version")),
    "bentoml_service_last_request_timestamp_seconds": (
        "gauge", ("runner_name", "service_name", "service_version")),
}

PROMETHEUS_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "up": ("gauge", ()),
}


@dataclass(frozen=True)
class Metric:
    family: str  # the name as declared (for a counter: without `_total`)
    type: str  # counter, gauge, histogram, summary
    labels: tuple[str, ...]  # declared labels, without job/instance
    source: str  # "trainer", "service", "bentoml" or "prometheus"


def _samples(family: str, typ: str) -> list[str]:
    if typ == "counter":
        base = family[: -len("_total")] if family.endswith("_total") else family
        return [f"{base}_total"]
    if typ == "histogram":
        return [f"{family}_bucket", f"{family}_sum", f"{family}_count"]
    if typ == "summary":
        return [family, f"{family}_sum", f"{family}_count"]
    return [family]


def _perennial() -> list[Metric]:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics import MetricWrapperBase

    from streaming.metrics import ServiceMetrics, TrainerMetrics

    out = []
    for source, cls in (("trainer", TrainerMetrics), ("service", ServiceMetrics)):
        group = cls(CollectorRegistry())
        for value in vars(group).values():
            if isinstance(value, MetricWrapperBase):
                out.append(Metric(value._name, value._type, tuple(value._labelnames), source))
    return out


def declared() -> dict[str, Metric]:
    """Sample name → metric, for every name a query may select."""
    metrics = _perennial()
    metrics += [Metric(n, t, labels, "bentoml") for n, (t, labels) in BENTOML_METRICS.items()]
    metrics += [Metric(n, t, labels, "prometheus") for n, (t, labels) in PROMETHEUS_METRICS.items()]
    return {sample: m for m in metrics for sample in _samples(m.family, m.type)}


def allowed_labels(sample: str, metric: Metric) -> set[str]:
    """Labels a selector of ``sample`` may match on."""
    labels = set(metric.labels) | set(TARGET_LABELS) | {"__name__"}
    if sample.endswith("_bucket") and metric.type == "histogram":
        labels.add("le")
    return labels


def task_of(expr: str) -> str | None:
    """The task whose models alone have series for ``expr`` (``streaming.metrics.TASK_METRICS``),
    or None for a query every model answers. A query mixing both tasks' metrics is refused:
    no model could ever fill it."""
    from streaming.metrics import TASK_METRICS

    from .promql import metric_names

    used = metric_names(expr)
    tasks = {task for task, names in TASK_METRICS.items() if used & names}
    if len(tasks) > 1:
        raise ValueError(f"query mixes metrics of tasks {sorted(tasks)}: {expr}")
    return next(iter(tasks), None)
