"""The promotion policy: pure functions over two learners' paired results on the same events.

Champion and challenger predicted the same events, so the right test is a *paired* one.
McNemar's test looks only at the events where they disagree: ``b`` where only the champion
was right, ``c`` where only the challenger was. Under "equally good", each disagreement is a
fair coin; we use the exact binomial tail for few disagreements and the continuity-corrected
chi-square otherwise.

The policy is tested repeatedly on a stream, so a chance win on a small window must not
promote. Three guards together stop that: a minimum number of events seen by the
challenger, a minimum accuracy margin, and a strict significance level. After a promotion the
same test runs the other way round (new champion against the one it replaced) for a guard
period; if the replaced one is significantly better, we roll back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PromotionPolicy:
    """When a challenger may replace the champion, and when a promotion is undone.

    Attributes:
        min_events: events a challenger must have been scored on before it can be promoted.
        window: how many recent paired events the test looks at.
        margin: accuracy gain (0..1) over the champion that a challenger must show.
        alpha: significance level of McNemar's test (strict, because it is tested often).
        guard_events: after a promotion, how long the rollback test runs.
        rollback_margin: accuracy deficit of the new champion that triggers a rollback.
        cooldown: events after any promotion or rollback before the next promotion.
    """

    min_events: int = 1000
    window: int = 2000
    margin: float = 0.01
    alpha: float = 0.001
    guard_events: int = 3000
    rollback_margin: float = 0.01
    cooldown: int = 500

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.window < 1 or self.min_events < 0:
            raise ValueError("window must be positive and min_events non-negative")


@dataclass(frozen=True)
class PairedResult:
    """Outcome counts of two learners on the same ``n`` events.

    ``b``: only the incumbent (first) was right; ``c``: only the contender (second) was.
    """

    n: int
    incumbent_correct: int
    contender_correct: int
    b: int
    c: int

    @classmethod
    def from_bits(cls, incumbent: Iterable[bool], contender: Iterable[bool]) -> PairedResult:
        """Pair two aligned correctness sequences (same events, same order).

        >>> PairedResult.from_bits([True, True, False, False], [True, False, True, True])
        PairedResult(n=4, incumbent_correct=2, contender_correct=3, b=1, c=2)
        """
        n = inc = con = b = c = 0
        for i, j in zip(incumbent, contender, strict=True):
            n += 1
            inc += i
            con += j
            if i and not j:
                b += 1
            elif j and not i:
                c += 1
        return cls(n, inc, con, b, c)

    @property
    def gain(self) -> float:
        """Contender's accuracy minus the incumbent's on these events."""
        return (self.contender_correct - self.incumbent_correct) / self.n if self.n else 0.0


@dataclass(frozen=True)
class Decision:
    """A yes/no with the reason a human reads in logs, the registry and the dashboards."""

    act: bool
    reason: str
    p_value: float = 1.0
    gain: float = 0.0


def mcnemar_p_value(b: int, c: int) -> float:
    """One-sided p-value that the contender (``c`` wins) is better than the incumbent (``b``).

    >>> mcnemar_p_value(0, 0)
    1.0
    >>> round(mcnemar_p_value(2, 12), 4)
    0.0065
    >>> mcnemar_p_value(40, 100) < 1e-6
    True
    >>> mcnemar_p_value(100, 40) > 0.99
    True
    """
    n = b + c
    if n == 0:
        return 1.0
    if n <= 50:
        # exact: P(X >= c) for X ~ Binomial(n, 1/2)
        return sum(math.comb(n, k) for k in range(c, n + 1)) / 2**n
    z = (abs(c - b) - 1) / math.sqrt(n)
    one_sided = 0.5 * math.erfc(max(z, 0.0) / math.sqrt(2))
    return one_sided if c > b else 1.0 - one_sided


def decide_promotion(
    pair: PairedResult, challenger_seen: int, policy: PromotionPolicy, *, events_since_change: int | None = None
) -> Decision:
    """Should the contender (challenger) replace the incumbent (champion)?"""
    if events_since_change is not None and events_since_change < policy.cooldown:
        return Decision(False, f"cooldown: {events_since_change} of {policy.cooldown} events since the last change")
    if challenger_seen < policy.min_events:
        return Decision(False, f"challenger has seen {challenger_seen} of {policy.min_events} events")
    if pair.n == 0 or pair.n < min(policy.window, policy.min_events):
        return Decision(False, f"only {pair.n} paired events")
    p = mcnemar_p_value(pair.b, pair.c)
    gain = pair.gain
    detail = (
        f"accuracy {pair.contender_correct / pair.n:.4f} vs {pair.incumbent_correct / pair.n:.4f} "
        f"on {pair.n} paired events (gain {gain * 100:+.2f} pts, McNemar b={pair.b} c={pair.c}, p={p:.2g})"
    )
    if gain < policy.margin:
        return Decision(False, f"gain below margin {policy.margin * 100:.1f} pts: {detail}", p, gain)
    if p >= policy.alpha:
        return Decision(False, f"not significant at alpha={policy.alpha}: {detail}", p, gain)
    return Decision(True, f"challenger better: {detail}", p, gain)


def decide_rollback(pair: PairedResult, events_since_promotion: int, policy: PromotionPolicy) -> Decision:
    """After a promotion: is the replaced champion (contender) clearly better than the new one?

    ``pair`` has the new champion as incumbent and the previous champion as contender, on
    the events since the promotion.
    """
    if events_since_promotion > policy.guard_events:
        return Decision(False, "guard period over")
    if pair.n == 0 or pair.n < min(policy.min_events, policy.guard_events):
        return Decision(False, f"only {pair.n} events since promotion")
    p = mcnemar_p_value(pair.b, pair.c)
    gain = pair.gain
    detail = (
        f"new champion {pair.incumbent_correct / pair.n:.4f} vs previous {pair.contender_correct / pair.n:.4f} "
        f"on {pair.n} events since promotion (McNemar b={pair.b} c={pair.c}, p={p:.2g})"
    )
    if gain >= policy.rollback_margin and p < policy.alpha:
        return Decision(True, f"new champion worse than the one it replaced: {detail}", p, gain)
    return Decision(False, f"new champion holds: {detail}", p, gain)
