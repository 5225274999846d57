"""Tabular built-in streams: synthetic drifting generators and River's bundled real data.

Drifting streams are built as phases: each phase is the same generator with a different
concept (classification function), switched abruptly at evenly spaced positions, so the
drift points are known and a replay can mark them on its plot.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

# river.datasets imports scikit-learn (about a second): imported where a stream is built,
# so that naming a stream, or a command's usage error, stays quick
from training.learners.base import Label

Event = tuple[dict[str, float], Label]

#: Agrawal's ten functions; these four disagree with one another the most.
AGRAWAL_PHASES = (0, 2, 4, 6)
SEA_PHASES = (0, 1, 2, 3)


def drift_positions(n_events: int, n_phases: int) -> list[int]:
    """Event indices where a new phase starts.

    >>> drift_positions(100, 4)
    [25, 50, 75]
    """
    return [n_events * k // n_phases for k in range(1, n_phases)]


def _phased(make, phases: tuple[int, ...], n_events: int, seed: int) -> Iterator[Event]:
    bounds = [0, *drift_positions(n_events, len(phases)), n_events]
    for k, concept in enumerate(phases):
        generator = make(concept, seed + k)
        yield from itertools.islice(iter(generator), bounds[k + 1] - bounds[k])


def _numeric(x: dict) -> dict[str, float]:
    # Agrawal's categorical attributes are small integer codes: keep them as numbers.
    return {k: float(v) for k, v in x.items()}


def agrawal_drift(n_events: int = 100_000, seed: int = 42, phases: tuple[int, ...] = AGRAWAL_PHASES) -> Iterator[Event]:
    """River's Agrawal generator with abrupt function switches (three, by default)."""
    def make(function: int, s: int):
        from river.datasets import synth

        return synth.Agrawal(classification_function=function, seed=s, balance_classes=False)

    for x, y in _phased(make, phases, n_events, seed):
        yield _numeric(x), int(y)


def agrawal_stationary(n_events: int = 50_000, seed: int = 42, function: int = 0) -> Iterator[Event]:
    """One Agrawal function throughout: the control stream (no drift, so no flapping)."""
    yield from agrawal_drift(n_events, seed, phases=(function,))


def sea_drift(n_events: int = 100_000, seed: int = 42, noise: float = 0.1) -> Iterator[Event]:
    """River's SEA generator, cycling its four threshold variants, with label noise."""
    def make(variant: int, s: int):
        from river.datasets import synth

        return synth.SEA(variant=variant, noise=noise, seed=s)

    for x, y in _phased(make, SEA_PHASES, n_events, seed):
        yield {f"x{k}": float(v) for k, v in x.items()}, int(y)


#: friedman-drift: the concept after each switch (River's FriedmanDrift "gsg" functions with no
#: transition window: global and abrupt, every relevant feature changes role, nothing recurs)
FRIEDMAN_PHASES = 3


def friedman_drift(n_events: int = 60_000, seed: int = 42) -> Iterator[tuple[dict[str, float], float]]:
    """River's FriedmanDrift regression stream with two abrupt global drifts at a third and
    two thirds of the stream: y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)² + 10 x3 + 5 x4 + noise
    first, then the same function of other features (x3 x4 / x1 / x0 / x2, then
    x1 x4 / x3 / x2 / x0); ten features uniform in [0, 1], five of them noise."""
    first, second = drift_positions(n_events, FRIEDMAN_PHASES)
    from river.datasets import synth

    generator = synth.FriedmanDrift(drift_type="gsg", position=(first, second), transition_window=0, seed=seed)
    for x, y in itertools.islice(iter(generator), n_events):
        yield {f"x{k}": float(v) for k, v in x.items()}, float(y)


def friedman(n_events: int = 30_000, seed: int = 42) -> Iterator[tuple[dict[str, float], float]]:
    """River's Friedman #1 regression stream, one concept throughout (the stationary control)."""
    from river.datasets import synth

    for x, y in itertools.islice(iter(synth.Friedman(seed=seed)), n_events):
        yield {f"x{k}": float(v) for k, v in x.items()}, float(y)


def bundled(name: str, n_events: int | None = None) -> Iterator[Event]:
    """River's bundled real data sets (no download): ``phishing`` and ``shuttle``."""
    from river import datasets

    dataset = {"phishing": datasets.Phishing, "shuttle": datasets.Shuttle}[name]()
    for x, y in itertools.islice(dataset, n_events):
        features = {k: float(v) for k, v in x.items() if v is not None}
        yield features, (int(y) if isinstance(y, bool) else y)
