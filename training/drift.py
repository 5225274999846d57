"""Concept-drift detection on a learner's error stream.

The detector watches the 0/1 error of each prequential prediction: when the error rate's
mean changes significantly, the concept the learner knew has probably changed. ADWIN is the
default because it needs no window size (it finds the cut itself) and has a false-alarm
bound ``delta``; River's implementation is compiled and costs well under a microsecond.
"""

from __future__ import annotations

from dataclasses import dataclass

from river import drift


@dataclass(frozen=True)
class DriftConfig:
    """Which detector, and its sensitivity.

    ``delta`` is ADWIN's confidence: smaller means fewer false alarms and later detections.
    ``min_events`` ignores detections before a learner has seen that many events (a fresh
    learner's error falls fast while it learns, which is not drift).
    """

    method: str = "adwin"
    delta: float = 0.002
    clock: int = 32
    min_events: int = 500

    def build(self) -> DriftDetector:
        return DriftDetector(self)


class DriftDetector:
    """Feed it ``True`` for every wrong prediction; `update` returns True on a detected drift.

    >>> d = DriftConfig(min_events=0).build()
    >>> fired = [d.update(i >= 2000 and i % 2 == 0) for i in range(4000)]
    >>> any(fired[:2000]), any(fired[2000:])
    (False, True)
    >>> improving = DriftConfig(min_events=0).build()
    >>> any(improving.update(i < 2000 and i % 2 == 0) for i in range(4000))
    False
    """

    def __init__(self, config: DriftConfig) -> None:
        self.config = config
        if config.method == "adwin":
            self._detector = drift.ADWIN(delta=config.delta, clock=config.clock)
        elif config.method == "page_hinkley":
            self._detector = drift.PageHinkley(delta=config.delta)
        elif config.method == "kswin":
            self._detector = drift.KSWIN(alpha=config.delta, seed=0)
        else:
            raise ValueError(
                f"unknown drift detector {config.method!r}; choose adwin, page_hinkley or kswin"
            )
        self.n = 0
        self.detections = 0

    def update(self, error: bool) -> bool:
        self.n += 1
        detector = self._detector
        if self.n < self.config.min_events:  # too early to report: feed it, skip the bookkeeping
            detector.update(1.0 if error else 0.0)
            return False
        if type(detector) is drift.ADWIN:
            return self._update_adwin(detector, 1.0 if error else 0.0)
        before = getattr(detector, "estimation", None)
        detector.update(1.0 if error else 0.0)
        if not detector.drift_detected:
            return False
        # A learner that gets *better* also changes its error rate; only a rise is drift.
        after = getattr(detector, "estimation", None)
        if before is not None and after is not None and after <= before:
            return False
        self.detections += 1
        return True

    def _update_adwin(self, detector: drift.ADWIN, value: float) -> bool:
        """`update` for River's ADWIN, calling its Rust window directly: this runs for every
        learner on every event, and the Python properties around it cost more than the
        window itself. Same steps as ``ADWIN.update`` (reset after a reported drift, then
        add), same rising-error rule; tests/training/test_drift.py checks both agree."""
        if detector._drift_detected:
            detector._reset()
        window = detector._helper
        width = window.get_width()
        before = window.get_total() / width if width else 0.0
        detected = detector._drift_detected = window.update(value)
        if not detected:
            return False
        width = window.get_width()
        if (window.get_total() / width if width else 0.0) <= before:
            return False
        self.detections += 1
        return True
