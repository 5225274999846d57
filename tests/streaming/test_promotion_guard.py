"""The promotion guard's decisions, driven by a scripted Prometheus answer per query.

The adapter to the real Prometheus HTTP API is exercised in the closed-loop integration test.
"""

import pytest

from streaming.promotion_guard import (
    DEFAULT_CHECKS,
    GuardCheck,
    GuardQueryError,
    PromotionGuard,
    load_checks,
)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def answers(table):
    """A query function answering from {substring: values}; unknown queries have no data."""
    asked = []

    def query(q):
        asked.append(q)
        for key, values in table.items():
            if key in q:
                if isinstance(values, Exception):
                    raise values
                return values
        return []

    query.asked = asked
    return query


P99 = GuardCheck("p99", 'histogram_quantile(0.99, x{model="{model}"})', max_value=0.5)
SERVED = GuardCheck("served", 'max(v{model="{model}"}) - {version}', min_value=0, no_data="fail")


def test_slow_version_fails_with_query_and_value_in_reason():
    clock = Clock()
    query = answers({"histogram_quantile": [2.1], "max(v": [0.0]})
    guard = PromotionGuard([SERVED, P99], query, period_s=60, interval_s=5, clock=clock)
    guard.watch("fraud", 7)
    verdict = guard.poll()
    assert verdict.check == "p99"
    assert "2.1 > max 0.5" in verdict.reason and 'x{model="fraud"}' in verdict.reason
    assert not guard.active


def test_version_is_substituted_and_not_served_fails():
    query = answers({"max(v": [-1.0]})  # the service still serves v6
    guard = PromotionGuard([SERVED], query, clock=Clock())
    guard.watch("fraud", 7)
    verdict = guard.poll()
    assert verdict.check == "served" and "< min 0" in verdict.detail
    assert query.asked == ['max(v{model="fraud"}) - 7']


def test_healthy_version_passes_and_guard_ends_after_period():
    clock = Clock()
    query = answers({"histogram_quantile": [0.01], "max(v": [0.0]})
    guard = PromotionGuard([SERVED, P99], query, period_s=30, interval_s=10, clock=clock)
    guard.watch("fraud", 3)
    for _ in range(4):
        assert guard.poll() is None
        clock.t += 10
    assert not guard.active


def test_polls_only_when_due():
    clock = Clock()
    query = answers({"max(v": [0.0]})
    guard = PromotionGuard([SERVED], query, period_s=100, interval_s=10, warmup_s=5, clock=clock)
    guard.watch("m", 1)
    guard.poll()
    assert query.asked == []  # warm-up: the service needs a moment to load the new version
    clock.t += 5
    guard.poll()
    guard.poll()
    assert len(query.asked) == 1


def test_unreachable_prometheus_is_not_evidence_against_a_version():
    query = answers({"max(v": GuardQueryError("down")})
    guard = PromotionGuard([SERVED], query, clock=Clock())
    guard.watch("m", 1)
    assert guard.poll() is None and guard.query_errors == 1 and guard.active


def test_no_data_policy():
    assert GuardCheck("a", "q", max_value=1).violation([]) is None
    assert GuardCheck("a", "q", max_value=1, no_data="fail").violation([]) == "no data"
    assert GuardCheck("a", "q", max_value=1).violation([float("nan")]) is None


def test_checks_from_settings_and_errors():
    assert load_checks("") == DEFAULT_CHECKS
    with pytest.raises(ValueError, match="JSON list"):
        load_checks("{not json")
    with pytest.raises(ValueError, match="needs max_value or min_value"):
        GuardCheck("x", "q")


def test_previous_version_placeholder_and_default_live_accuracy_check():
    live = next(c for c in DEFAULT_CHECKS if c.name == "live_accuracy_vs_previous")
    assert live.render("m", 8, None) is None  # nothing to compare with: skipped
    query = answers({'version="8"': [-0.12]})
    guard = PromotionGuard([live], query, clock=Clock())
    guard.watch("m", 8, previous=5)
    verdict = guard.poll()
    assert query.asked == ['perennial_served_accuracy{model="m",version="8"} - ignoring(version) '
                           'perennial_served_accuracy{model="m",version="5"}']
    assert verdict.check == "live_accuracy_vs_previous" and "-0.12 < min -0.05" in verdict.reason
