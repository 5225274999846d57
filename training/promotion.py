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

Regression pairs per-event absolute errors instead (`PairedLosses`): the Wilcoxon
signed-rank test on the paired differences (normal approximation, ties and zeros handled),
robust to the heavy tails absolute errors have, with a *relative* margin: the challenger's
MAE must be at least ``relative_margin`` lower. `decide_promotion` and `decide_rollback` take
either kind of pair, so the loop that calls them does not depend on the task.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
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
        relative_margin: regression: fraction by which a challenger's MAE must be lower.
        rollback_relative_margin: regression: fraction by which the replaced champion's MAE
            must be lower than the new one's to roll back.
    """

    min_events: int = 1000
    window: int = 2000
    margin: float = 0.01
    alpha: float = 0.001
    guard_events: int = 3000
    rollback_margin: float = 0.01
    cooldown: int = 500
    relative_margin: float = 0.05
    rollback_relative_margin: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        for name in ("relative_margin", "rollback_relative_margin"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
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


@dataclass(frozen=True)
class PairedLosses:
    """Two regressors' absolute errors on the same ``n`` events, and the Wilcoxon
    signed-rank test of the contender's (second) against the incumbent's (first).

    ``z`` is negative when the contender's errors tend to be smaller; ``p_value`` is the
    one-sided p-value of "the contender is better".
    """

    n: int
    incumbent_mae: float
    contender_mae: float
    z: float
    p_value: float

    @classmethod
    def from_losses(cls, incumbent: Sequence[float], contender: Sequence[float]) -> PairedLosses:
        """Pair two aligned loss sequences (same events, same order).

        >>> pair = PairedLosses.from_losses([2.0, 3.0, 1.0, 4.0], [1.0, 1.0, 1.0, 2.0])
        >>> pair.n, pair.incumbent_mae, pair.contender_mae, round(pair.z, 3)
        (4, 2.5, 1.25, -1.361)
        """
        if len(incumbent) != len(contender):
            raise ValueError(f"paired losses must align: {len(incumbent)} vs {len(contender)} events")
        n = len(incumbent)
        if not n:
            return cls(0, 0.0, 0.0, 0.0, 1.0)
        z = wilcoxon_z([c - i for i, c in zip(incumbent, contender, strict=True)])
        return cls(n, math.fsum(incumbent) / n, math.fsum(contender) / n, z, 0.5 * math.erfc(-z / math.sqrt(2)))

    @property
    def gain(self) -> float:
        """Relative reduction of the MAE by the contender (0.2: 20 % lower)."""
        return (self.incumbent_mae - self.contender_mae) / self.incumbent_mae if self.incumbent_mae > 0 else 0.0


def wilcoxon_z(differences: Sequence[float]) -> float:
    """The Wilcoxon signed-rank statistic of paired differences as a normal z-score.

    Zero differences are dropped (Wilcoxon's convention), tied magnitudes get their average
    rank and the variance its tie correction; the continuity correction (+0.5) is the one of
    the one-sided test "the differences lean negative", so ``Φ(z)`` is its p-value (as
    ``scipy.stats.wilcoxon(d, alternative="less", correction=True, method="approx")``).
    0.0 when no difference is non-zero.

    >>> wilcoxon_z([0.0, 0.0])
    0.0
    >>> round(wilcoxon_z([-1.0] * 20), 3), round(wilcoxon_z([1.0, -1.0] * 10), 3)
    (-4.451, 0.021)
    """
    d = [v for v in differences if v != 0.0]
    m = len(d)
    if not m:
        return 0.0
    order = sorted(range(m), key=lambda k: abs(d[k]))
    w_plus = 0.0
    ties = 0.0
    i = 0
    while i < m:  # ranks 1..m; a run of equal magnitudes shares the average of its ranks
        j = i
        size = abs(d[order[i]])
        while j + 1 < m and abs(d[order[j + 1]]) == size:
            j += 1
        rank = (i + j) / 2 + 1
        t = j - i + 1
        if t > 1:
            ties += t ** 3 - t
        w_plus += rank * sum(1 for k in order[i:j + 1] if d[k] > 0)
        i = j + 1
    mean = m * (m + 1) / 4
    var = m * (m + 1) * (2 * m + 1) / 24 - ties / 48
    if var <= 0:
        return 0.0
    return (w_plus - mean + 0.5) / math.sqrt(var)


def decide_promotion(
    pair: PairedResult | PairedLosses, challenger_seen: int, policy: PromotionPolicy, *,
    events_since_change: int | None = None
) -> Decision:
    """Should the contender (challenger) replace the incumbent (champion)? McNemar on
    correctness for classification (`PairedResult`), Wilcoxon on absolute errors for
    regression (`PairedLosses`).

    >>> policy = PromotionPolicy(min_events=4, window=4)
    >>> decide_promotion(PairedLosses(2000, 2.41, 1.92, -8.1, 3e-16), 2000, policy).reason
    'challenger better: MAE 1.92 vs 2.41 on 2000 paired events (-20.3%, Wilcoxon z=-8.1, p=3e-16)'
    >>> decide_promotion(PairedLosses(2000, 2.41, 2.35, -2.5, 0.006), 2000, policy).reason
    'MAE reduction below margin 5.0%: MAE 2.35 vs 2.41 on 2000 paired events (-2.5%, Wilcoxon z=-2.5, p=0.006)'
    """
    if events_since_change is not None and events_since_change < policy.cooldown:
        return Decision(False, f"cooldown: {events_since_change} of {policy.cooldown} events since the last change")
    if challenger_seen < policy.min_events:
        return Decision(False, f"challenger has seen {challenger_seen} of {policy.min_events} events")
    if pair.n == 0 or pair.n < min(policy.window, policy.min_events):
        return Decision(False, f"only {pair.n} paired events")
    if isinstance(pair, PairedLosses):
        return _decide_regression_promotion(pair, policy)
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
    if isinstance(pair, PairedLosses):
        return _decide_regression_rollback(pair, policy)
    p = mcnemar_p_value(pair.b, pair.c)
    gain = pair.gain
    detail = (
        f"new champion {pair.incumbent_correct / pair.n:.4f} vs previous {pair.contender_correct / pair.n:.4f} "
        f"on {pair.n} events since promotion (McNemar b={pair.b} c={pair.c}, p={p:.2g})"
    )
    if gain >= policy.rollback_margin and p < policy.alpha:
        return Decision(True, f"new champion worse than the one it replaced: {detail}", p, gain)
    return Decision(False, f"new champion holds: {detail}", p, gain)


def _mae_detail(pair: PairedLosses, *, first: float, second: float, what: str) -> str:
    change = (pair.contender_mae - pair.incumbent_mae) / pair.incumbent_mae if pair.incumbent_mae > 0 else 0.0
    return (f"MAE {first:.3g} vs {second:.3g} on {pair.n} {what} ({change * 100:+.1f}%, "
            f"Wilcoxon z={pair.z:.2g}, p={pair.p_value:.2g})")


def _decide_regression_promotion(pair: PairedLosses, policy: PromotionPolicy) -> Decision:
    detail = _mae_detail(pair, first=pair.contender_mae, second=pair.incumbent_mae, what="paired events")
    gain = pair.gain
    if gain < policy.relative_margin:
        return Decision(False, f"MAE reduction below margin {policy.relative_margin * 100:.1f}%: {detail}",
                        pair.p_value, gain)
    if pair.p_value >= policy.alpha:
        return Decision(False, f"not significant at alpha={policy.alpha}: {detail}", pair.p_value, gain)
    return Decision(True, f"challenger better: {detail}", pair.p_value, gain)


def _decide_regression_rollback(pair: PairedLosses, policy: PromotionPolicy) -> Decision:
    """``pair``: the new champion as incumbent, the previous one as contender."""
    detail = "new champion " + _mae_detail(pair, first=pair.incumbent_mae, second=pair.contender_mae,
                                           what="events since promotion").replace(" vs ", " vs previous ", 1)
    if pair.gain >= policy.rollback_relative_margin and pair.p_value < policy.alpha:
        return Decision(True, f"new champion worse than the one it replaced: {detail}", pair.p_value, pair.gain)
    return Decision(False, f"new champion holds: {detail}", pair.p_value, pair.gain)
