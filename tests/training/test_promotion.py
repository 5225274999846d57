"""The promotion policy is a pure function: table-driven cases of what must and must not promote."""

import random

import pytest

from training.promotion import (
    PairedResult,
    PromotionPolicy,
    decide_promotion,
    decide_rollback,
    mcnemar_p_value,
)

POLICY = PromotionPolicy(min_events=1000, window=2000, margin=0.01, alpha=0.001, guard_events=3000)


def paired(n: int, only_incumbent: float, only_contender: float, both: float, seed: int = 0) -> PairedResult:
    """Simulate two learners on the same events: the shares where only one of them, or both, are right."""
    rng = random.Random(seed)
    inc, con = [], []
    for _ in range(n):
        u = rng.random()
        if u < only_incumbent:
            inc.append(True), con.append(False)
        elif u < only_incumbent + only_contender:
            inc.append(False), con.append(True)
        else:
            right = u < only_incumbent + only_contender + both
            inc.append(right), con.append(right)
    return PairedResult.from_bits(inc, con)


@pytest.mark.parametrize(
    ("name", "pair", "seen", "since_change", "expected", "reason_part"),
    [
        ("too few events seen", PairedResult(2000, 1500, 1900, 50, 450), 500, None, False, "has seen 500"),
        ("clearly better", PairedResult(2000, 1500, 1700, 60, 260), 5000, None, True, "challenger better"),
        ("better by chance on a small window", PairedResult(60, 40, 48, 4, 12), 5000, None, False, "paired events"),
        ("gain below margin", PairedResult(2000, 1800, 1810, 90, 100), 5000, None, False, "below margin"),
        ("gain above margin but not significant", PairedResult(2000, 1500, 1530, 400, 430), 5000, None, False, "not significant"),
        ("worse", PairedResult(2000, 1700, 1500, 260, 60), 5000, None, False, "below margin"),
        ("in cooldown after a change", PairedResult(2000, 1500, 1700, 60, 260), 5000, 100, False, "cooldown"),
        ("no disagreements", PairedResult(2000, 1800, 1800, 0, 0), 5000, None, False, "below margin"),
    ],
)
def test_promotion_table(name, pair, seen, since_change, expected, reason_part):
    decision = decide_promotion(pair, seen, POLICY, events_since_change=since_change)
    assert decision.act is expected, f"{name}: {decision.reason}"
    assert reason_part in decision.reason


def test_equal_learners_are_not_promoted_across_many_windows():
    # 200 independent windows of two equally good learners: the strict alpha plus the margin
    # keep chance wins from promoting (this is what prevents flapping on a stationary stream)
    promoted = sum(
        decide_promotion(paired(2000, 0.06, 0.06, 0.79, seed=s), 5000, POLICY).act for s in range(200)
    )
    assert promoted == 0


def test_clearly_better_learner_is_promoted_in_most_windows():
    promoted = sum(decide_promotion(paired(2000, 0.03, 0.07, 0.77, seed=s), 5000, POLICY).act for s in range(50))
    assert promoted >= 45


@pytest.mark.parametrize(
    ("name", "pair", "since", "expected", "reason_part"),
    [
        ("previous clearly better: roll back", PairedResult(2000, 1500, 1700, 60, 260), 2000, True, "worse than the one it replaced"),
        ("new champion holds", PairedResult(2000, 1700, 1690, 100, 90), 2000, False, "holds"),
        ("too early to judge", PairedResult(200, 100, 180, 0, 80), 200, False, "only 200 events"),
        ("guard period over", PairedResult(2000, 1500, 1700, 60, 260), 5000, False, "guard period over"),
    ],
)
def test_rollback_table(name, pair, since, expected, reason_part):
    decision = decide_rollback(pair, since, POLICY)
    assert decision.act is expected, f"{name}: {decision.reason}"
    assert reason_part in decision.reason


def test_mcnemar_is_one_sided_and_symmetric_in_counts():
    assert mcnemar_p_value(10, 10) > 0.4
    assert mcnemar_p_value(5, 30) < 0.001
    assert mcnemar_p_value(30, 5) > 0.99
    # the exact and the normal branches agree near the switch
    assert abs(mcnemar_p_value(20, 30) - mcnemar_p_value(21, 31)) < 0.05


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError, match="alpha"):
        PromotionPolicy(alpha=0)
