"""Concept-drift detection on a learner's error stream.

The detector watches the 0/1 error of each prequential prediction: when the error rate's
mean changes significantly, the concept the learner knew has probably changed. ADWIN is the
default because it needs no window size (it finds the cut itself) and has a false-alarm
bound ``delta``; River's implementation is compiled and costs well under a microsecond.

A regressor's error is a real number: `DriftDetector.update_loss` watches its absolute
error the same way (ADWIN works on real values), divided by a scale fixed at the end of the
warm-up (the mean error of the first ``min_events``), so that ADWIN's bound, written for
values in [0, 1], is as sensitive to a target in millions as to one in thousandths.
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

    _scale = 0.0  # a default for detectors checkpointed before `update_loss` existed

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
        self._scale = 0.0  # update_loss: the warm-up's loss sum, then 1 / mean loss

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

    def update_loss(self, loss: float) -> bool:
        """Feed a real-valued error (a regressor's absolute error); True on a detected rise.

        During the first ``min_events`` losses the detector only learns their scale; from
        then on it watches ``loss / scale`` (see the module docstring).

        >>> d = DriftConfig(min_events=100).build()
        >>> fired = [d.update_loss(1000.0 * (1 + (i % 3)) * (3 if i >= 3000 else 1)) for i in range(6000)]
        >>> any(fired[:3000]), any(fired[3000:])
        (False, True)
        """
        self.n += 1
        min_events = self.config.min_events
        if self.n <= min_events:
            self._scale += loss
            if self.n == min_events:
                mean = self._scale / min_events
                self._scale = 1.0 / mean if mean > 0 else 1.0
            return False
        if self.n == 1:  # min_events == 0: no warm-up, the first loss sets the scale
            self._scale = 1.0 / loss if loss > 0 else 1.0
        detector = self._detector
        value = loss * self._scale
        if type(detector) is drift.ADWIN:
            return self._update_adwin(detector, value)
        before = getattr(detector, "estimation", None)
        detector.update(value)
        if not detector.drift_detected:
            return False
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
