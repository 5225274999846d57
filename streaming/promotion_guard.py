"""Serving-side promotion guard: after a promotion, judge the new version from Prometheus.

The trainer's paired test decides whether a challenger *learns* better. What only the
serving side sees — the new version's error rate, its latency, whether the service managed to
load it at all, its live accuracy on joined feedback — is judged here, the way Flagger and
Argo Rollouts analyse a canary: for ``period_s`` after each promotion, every ``interval_s``
the guard evaluates its PromQL checks; the first check out of bounds fails the promotion,
and the caller moves the ``champion`` alias back with the failing query and value as reason.

Checks are data (name, query, bounds), so operators add their own in settings. ``{model}``,
``{version}`` and ``{previous}`` in a query are replaced by the guarded model, the promoted
version and the version it replaced (a check naming ``{previous}`` is skipped when there is
none).
"""

from __future__ import annotations

import json
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


class GuardQueryError(RuntimeError):
    """Prometheus could not be asked (down, bad query); the guard counts it and retries."""


@dataclass(frozen=True)
class GuardCheck:
    """One PromQL check. The query's result values must stay within [min_value, max_value].

    ``no_data`` says what an empty result means: "pass" (typical for error counters that
    have no series until the first error) or "fail" (for series that must exist).
    """

    name: str
    query: str
    max_value: float | None = None
    min_value: float | None = None
    no_data: str = "pass"

    def __post_init__(self) -> None:
        if self.max_value is None and self.min_value is None:
            raise ValueError(f"guard check {self.name!r} needs max_value or min_value")
        if self.no_data not in ("pass", "fail"):
            raise ValueError(f"guard check {self.name!r}: no_data must be 'pass' or 'fail', got {self.no_data!r}")

    def render(self, model: str, version: int, previous: int | None = None) -> str | None:
        """The query for this promotion, or None when it needs a previous version there is not."""
        if "{previous}" in self.query and previous is None:
            return None
        return (self.query.replace("{model}", model).replace("{version}", str(version))
                .replace("{previous}", str(previous)))

    def violation(self, values: Sequence[float]) -> str | None:
        """Why ``values`` break this check, or None when they satisfy it."""
        if not values:
            return "no data" if self.no_data == "fail" else None
        for v in values:
            if math.isnan(v):
                continue
            if self.max_value is not None and v > self.max_value:
                return f"{v:.4g} > max {self.max_value:g}"
            if self.min_value is not None and v < self.min_value:
                return f"{v:.4g} < min {self.min_value:g}"
        return None


#: Defaults: the version actually served, no swap refused, 5xx-free, p99 under a second,
#: and live accuracy of what was served (joined feedback) not collapsing.
DEFAULT_CHECKS: tuple[GuardCheck, ...] = (
    # served minus promoted version: negative while the service still serves an older one
    # (it refused the new one, or cannot load it)
    GuardCheck("served_version", 'max(perennial_served_version{model="{model}"}) - {version}',
               min_value=0, no_data="fail"),
    GuardCheck("swap_refused", 'sum(increase(perennial_model_swaps_total{model="{model}",result="refused"}[2m]))',
               max_value=0),
    GuardCheck("internal_errors",
               'sum(rate(perennial_request_errors_total{model="{model}",reason="internal"}[1m]))',
               max_value=0),
    GuardCheck("p99_latency_seconds",
               'histogram_quantile(0.99, sum by (le) (rate(perennial_inference_seconds_bucket{model="{model}"}[1m])))',
               max_value=1.0),
    # live accuracy of what the new version served (joined feedback) against what the version
    # it replaced served: no data until enough labels came back, which passes
    GuardCheck("live_accuracy_vs_previous",
               'perennial_served_accuracy{model="{model}",version="{version}"} - ignoring(version) '
               'perennial_served_accuracy{model="{model}",version="{previous}"}',
               min_value=-0.05),
)


def load_checks(text: str | None) -> tuple[GuardCheck, ...]:
    """Checks from a JSON list of objects (a setting), or the defaults when empty.

    >>> load_checks('[{"name": "p99", "query": "q", "max_value": 0.2}]')[0].max_value
    0.2
    >>> load_checks(None) == DEFAULT_CHECKS
    True
    """
    if not text:
        return DEFAULT_CHECKS
    try:
        items = json.loads(text)
        return tuple(GuardCheck(**item) for item in items)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"guard checks must be a JSON list of {{name, query, max_value|min_value}}: {exc}") from exc


class PrometheusQuery:
    """Instant queries against Prometheus' HTTP API (``/api/v1/query``); values as floats."""

    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def __call__(self, query: str) -> list[float]:
        url = f"{self.base_url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:  # noqa: S310 - operator-set URL
                body = json.load(response)
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise GuardQueryError(f"Prometheus at {self.base_url} did not answer {query!r}: {exc}") from exc
        if body.get("status") != "success":
            raise GuardQueryError(f"Prometheus refused {query!r}: {body.get('error')}")
        result = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            return [float(result[1])]
        return [float(sample["value"][1]) for sample in result]


@dataclass(frozen=True)
class GuardVerdict:
    check: str
    query: str
    detail: str

    @property
    def reason(self) -> str:
        return f"promotion guard: check {self.check!r} failed: {self.detail} (query: {self.query})"


class PromotionGuard:
    """Watches one promoted version at a time; `poll` says when it must be rolled back."""

    def __init__(
        self,
        checks: Sequence[GuardCheck],
        query: Callable[[str], list[float]],
        period_s: float = 300.0,
        interval_s: float = 15.0,
        warmup_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.checks = tuple(checks)
        self.query = query
        self.period_s, self.interval_s, self.warmup_s = period_s, interval_s, warmup_s
        self.clock = clock
        self._watching: tuple[str, int, int | None, float] | None = None  # model, version, previous, since
        self._next_at = 0.0
        self.query_errors = 0
        self.evaluated = 0  # checks that got an answer during the current watch

    @property
    def active(self) -> bool:
        return self._watching is not None

    def watch(self, model: str, version: int, previous: int | None = None) -> None:
        """A promotion happened: guard ``version`` (which replaced ``previous``) for ``period_s``."""
        now = self.clock()
        self._watching = (model, version, previous, now)
        self.evaluated = 0
        self._next_at = now + self.warmup_s
        log.info("guarding %s v%d for %.0f s with %d checks", model, version, self.period_s, len(self.checks))

    def cancel(self) -> None:
        self._watching = None

    def poll(self) -> GuardVerdict | None:
        """Cheap when nothing is due; evaluates every check when the interval has passed."""
        if self._watching is None:
            return None
        now = self.clock()
        if now < self._next_at:
            return None
        model, version, previous, since = self._watching
        self._next_at = now + self.interval_s
        for check in self.checks:
            query = check.render(model, version, previous)
            if query is None:
                continue
            try:
                values = self.query(query)
            except GuardQueryError as exc:
                self.query_errors += 1
                log.warning("%s", exc)
                continue  # an unreachable Prometheus is not evidence against the version
            self.evaluated += 1
            detail = check.violation(values)
            if detail is not None:
                self._watching = None
                return GuardVerdict(check.name, query, detail)
        if now - since >= self.period_s:
            if self.evaluated:
                log.info("promotion guard: %s v%d passed every check for %.0f s", model, version, self.period_s)
            else:
                log.warning("promotion guard: %s v%d was NOT judged: no check could be evaluated in %.0f s "
                            "(%d Prometheus errors)", model, version, self.period_s, self.query_errors)
            self._watching = None
        return None
