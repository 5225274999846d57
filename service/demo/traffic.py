"""Traffic like a real application: ask for predictions, learn the truth later, send it back.

`TrafficDriver.run` sends ``/predict`` requests in small batches at a target rate, keeps what
was served (prediction id, label, version), and posts each true label to ``/feedback`` after
``label_delay_s``. It scores what was served against the truth as it goes, so the demo
reports the accuracy (regression: the absolute error) users actually got — not a learner's
score inside the trainer.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from training.learners.base import Label
from training.spec import Task


@dataclass
class Served:
    """What users got, event by event: ``scores`` holds 1.0 for a right class and 0.0 for a
    wrong one (classification) or the absolute error of the served value (regression)."""

    task: Task = Task.CLASSIFICATION
    scores: list[float] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    failed_requests: int = 0
    feedback_sent: int = 0

    def versions_in_order(self) -> list[int]:
        return list(dict.fromkeys(self.versions))

    def recent(self, n: int) -> float:
        """Mean score of the last ``n`` served events: accuracy, or MAE for regression."""
        tail = self.scores[-n:]
        return sum(tail) / len(tail) if tail else 0.0


class TrafficDriver:
    def __init__(self, base_url: str, model: str, *, task: Task = Task.CLASSIFICATION, batch: int = 10,
                 rate: float = 200.0, label_delay_s: float = 2.0, timeout_s: float = 30.0) -> None:
        self.model, self.batch, self.rate, self.label_delay_s = model, batch, rate, label_delay_s
        self.client = httpx.Client(base_url=base_url, timeout=timeout_s)
        self.served = Served(task)
        self._due: collections.deque[tuple[float, list[dict[str, Any]]]] = collections.deque()

    def run(self, events: Iterable[tuple[dict[str, float], Label]],
            on_event: Callable[[int, dict[str, float], Label, dict], None] | None = None,
            on_tick: Callable[[], None] | None = None) -> Served:
        """Send every event; ``on_event(i, x, y, prediction)`` sees each served prediction."""
        started = time.monotonic()
        sent = 0
        pending: list[tuple[dict[str, float], Label]] = []
        for x, y in events:
            pending.append((x, y))
            if len(pending) < self.batch:
                continue
            sent = self._send(pending, sent, on_event)
            pending = []
            self._flush_feedback(time.monotonic())
            if on_tick:
                on_tick()
            ahead = sent / self.rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        if pending:
            self._send(pending, sent, on_event)
        self._flush_feedback(float("inf"))
        return self.served

    def _send(self, batch, sent: int, on_event) -> int:
        body = {"model": self.model, "instances": [{"features": x} for x, _ in batch]}
        response = self._post("/predict", body)
        if response is None or response.status_code != 200:
            self.served.failed_requests += 1
            detail = response.text[:300] if response is not None else "no response"
            raise RuntimeError(f"/predict failed: {detail}")
        answer = response.json()
        version = answer["version"]
        feedback = []
        for (x, y), prediction in zip(batch, answer["predictions"], strict=True):
            self.served.scores.append(_score(self.served.task, prediction, y))
            self.served.versions.append(version)
            feedback.append({"model": self.model, "prediction_id": prediction["prediction_id"], "label": y})
            if on_event:
                on_event(sent, x, y, prediction)
            sent += 1
        self._due.append((time.monotonic() + self.label_delay_s, feedback))
        return sent

    def _flush_feedback(self, now: float) -> None:
        while self._due and self._due[0][0] <= now:
            _, records = self._due.popleft()
            response = self._post("/feedback", records)
            if response is None or response.status_code != 202:
                detail = response.text[:300] if response is not None else "no response"
                raise RuntimeError(f"/feedback failed: {detail}")
            self.served.feedback_sent += len(records)

    def _post(self, path: str, body) -> httpx.Response | None:
        for attempt in range(3):  # a transient connection error is retried, never hidden
            try:
                return self.client.post(path, json=body)
            except httpx.TransportError:
                if attempt == 2:
                    raise
                time.sleep(0.5)
        return None

    def close(self) -> None:
        self.client.close()


def _score(task: Task, prediction: dict[str, Any], truth: Label) -> float:
    """1.0 or 0.0 for a served class (labels cross JSON: 1 and "1" are the same class); the
    absolute error of a served value."""
    if task is Task.REGRESSION:
        return abs(float(prediction["value"]) - float(truth))
    served = prediction["label"]
    return 1.0 if served == truth or str(served) == str(truth) else 0.0
