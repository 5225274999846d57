"""`perennial produce`: replay a stream the way a real application sends traffic.

For each event: a prediction record now (what the service logs when it answers), and the
label-only feedback ``label_delay_s`` later (when the application learns the truth). Labels
are released from a time-ordered heap, so a delay larger than the gap between events
interleaves predictions and labels as in production.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from streaming.producer import EventProducer
from streaming.schemas import Label


@dataclass
class ReplayStats:
    predictions: int = 0
    feedback: int = 0
    seconds: float = 0.0


def replay(producer: EventProducer, model: str, events: Iterable[tuple[dict[str, float], Label]], *,
           rate: float = 0.0, label_delay_s: float = 1.0, version: int | None = None,
           predict: Callable[[dict[str, float]], tuple[Label | None, dict[Label, float]]] | None = None,
           run_id: str | None = None, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep,
           progress: Callable[[ReplayStats], None] | None = None) -> ReplayStats:
    """Produce predictions and delayed labels; `rate` is events per second (0: as fast as possible)."""
    run_id = run_id or f"{int(time.time())}"
    stats = ReplayStats()
    due: list[tuple[float, int, str, Label]] = []  # (due at, index, prediction id, label)
    started = clock()

    def release(until: float) -> None:
        while due and due[0][0] <= until:
            _, i, pid, label = heapq.heappop(due)
            producer.send_feedback(model, f"{run_id}-f{i}", label, prediction_id=pid)
            stats.feedback += 1

    for i, (x, y) in enumerate(events):
        if rate > 0:
            target = started + i / rate
            while True:
                now = clock()
                release(now)
                if now >= target:
                    break
                sleep(min(target - now, due[0][0] - now if due else target - now))
        pid = f"{run_id}-p{i}"
        label, proba = predict(x) if predict is not None else (None, {})
        producer.send_prediction(model, pid, x, version=version, label=label,
                                 probabilities={str(k): float(v) for k, v in proba.items()})
        stats.predictions += 1
        heapq.heappush(due, (clock() + label_delay_s, i, pid, y))
        release(clock())
        if progress is not None and i % 1000 == 0:
            progress(stats)
    while due:
        wait = due[0][0] - clock()
        if wait > 0:
            sleep(wait)
        release(clock())
    producer.flush()
    stats.seconds = clock() - started
    return stats
