"""Drift detection: the ADWIN fast path agrees with River's public API, event by event."""

from __future__ import annotations

import random

import pytest
from river import drift

from training.drift import DriftConfig


def reference(errors: list[bool], config: DriftConfig) -> list[bool]:
    """The rising-error rule written against River's public ADWIN API only."""
    adwin = drift.ADWIN(delta=config.delta, clock=config.clock)
    fired = []
    for i, error in enumerate(errors, start=1):
        if i < config.min_events:
            adwin.update(1.0 if error else 0.0)
            fired.append(False)
            continue
        before = adwin.estimation
        adwin.update(1.0 if error else 0.0)
        fired.append(adwin.drift_detected and adwin.estimation > before)
    return fired


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_adwin_fast_path_matches_rivers_api(seed: int) -> None:
    rng = random.Random(seed)
    # error rate switching between low and high phases: drifts up and down
    rates = [0.05, 0.4, 0.1, 0.6, 0.05, 0.3]
    errors = [rng.random() < rate for rate in rates for _ in range(3000)]
    config = DriftConfig(min_events=100)
    detector = config.build()
    fired = [detector.update(e) for e in errors]
    assert fired == reference(errors, config)
    assert any(fired), "the stream has rising-error drifts"
    assert detector.detections == sum(fired)

