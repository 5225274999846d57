"""Offline replay: the whole learning loop over a stream, with no Kafka, beside two baselines.

The first part of the stream bootstraps the candidates (as `perennial bootstrap` would);
the rest flows through `LearningSystem` exactly as the trainer drives it. On the same events
two baselines run: ``static`` (the bootstrap champion, frozen — what a train-once service
would serve) and ``online_only`` (the bootstrap champion's learner type learning online,
never replaced). The result is a JSON-ready dict; `training.report` plots it.

Everything is in the stream's task's metrics: accuracy and macro-F1 for classification
(``prequential.accuracy``, ``baselines.static.accuracy``, windows' ``accuracy``), MAE, RMSE
and R² for regression (``prequential.mae``, ``baselines.online_only.mae``, windows' ``mae``);
``task`` says which.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from training.baselines import NAMES as BASELINES
from training.baselines import Baselines
from training.bootstrap import BootstrapConfig, train_candidates
from training.lineage import Origin
from training.publishers import InMemoryPublisher
from training.rows import RowError, RowValidator
from training.spec import Task
from training.streams import BUILTIN, iter_stream, stream_info
from training.streams.tabular import drift_positions
from training.system import EventKind, LearningSystem, LoopConfig, Publisher


@dataclass(frozen=True)
class ReplayConfig:
    """What to replay and how. Every field is a flag of `perennial replay`.

    Attributes:
        stream: a built-in stream name or a CSV path.
        events: total events, bootstrap part included (None: the stream's default).
        seed: seeds the stream generator.
        window: events per reported window (the plot's x resolution).
        bootstrap_events: events used for offline bootstrap (None: 5% of the stream, ≥ 500).
        target: label column for CSV streams.
        model: model name used for versions and reports.
    """

    stream: str = "agrawal-drift"
    events: int | None = None
    seed: int = 42
    window: int = 1000
    bootstrap_events: int | None = None
    target: str = "label"
    model: str = "replay"
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)


def run_replay(
    config: ReplayConfig,
    publisher: Publisher | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run bootstrap + loop + baselines; ``progress(done, total, status)`` is called per window.

    ``notice(message)`` hears every default adapted to the stream (the bootstrap size, the
    report window): said, not silent; the result's ``notices`` keeps them too.
    """
    notices: list[str] = []

    def tell(message: str) -> None:
        notices.append(message)
        if notice is not None:
            notice(message)

    info = stream_info(config.stream)
    events = list(iter_stream(config.stream, config.events, config.seed, config.target))
    if config.events is not None and len(events) < config.events:
        tell(f"{config.stream} has only {len(events):,} events; replaying all of them, not {config.events:,}")
    # 5% of the stream, at least 500 — but never more than half of a small file
    n_boot = config.bootstrap_events or min(max(500, len(events) // 20), len(events) // 2)
    if n_boot >= len(events):
        raise ValueError(f"bootstrap_events={n_boot} leaves nothing to replay from {len(events)} events "
                         f"of {config.stream}: pass a smaller --bootstrap-events")
    if config.bootstrap_events is None:
        rule = "5%, at least 500" if n_boot >= 500 else "half of a short stream"
        tell(f"bootstrapping on the first {n_boot:,} of {len(events):,} events ({rule}); "
             "--bootstrap-events N to choose")
    boot_config = config.bootstrap
    if info.kind == "image" and not boot_config.image:
        boot_config = dataclasses.replace(boot_config, image=True)
    if boot_config.task is None and config.stream in BUILTIN:  # a CSV's task is inferred from its labels
        boot_config = dataclasses.replace(boot_config, task=info.task)
    # replay explores: a champion no better than the trivial model is replayed (with the
    # bootstrap's warning in the result), where `perennial bootstrap` would refuse to register it
    boot = train_candidates(events[:n_boot], dataclasses.replace(boot_config, force=True))
    for message in boot.notices:
        tell(f"bootstrap: {message}")
    champion = boot.champion.learner
    baselines = Baselines(champion, config.window)
    publisher = publisher or InMemoryPublisher()
    version = publisher.publish(champion, parent=None, metrics=boot.champion.validation, note="bootstrap", origin=Origin.BOOTSTRAP)
    publisher.promote(version, "bootstrap champion")
    system = LearningSystem(config.model, champion, boot.challengers, config.loop, publisher, version)
    regression = system.task is Task.REGRESSION
    score = "mae" if regression else "accuracy"  # what the windows and the progress report

    # the rest of the stream through the one validator, like the trainer's Kafka events
    validator = RowValidator(boot.spec) if boot.spec is not None else None
    stream = events[n_boot:] if validator is None else _validated_stream(events[n_boot:], validator)
    # at least ~20 points on the timeline, even for a short stream
    report_window = min(config.window, max(10, len(stream) // 20))
    if report_window != config.window:
        tell(f"report window reduced from {config.window:,} to {report_window:,} events, so the "
             f"{len(stream):,} replayed events give about 20 points on the timeline")
    windows: list[dict[str, Any]] = []
    log: list[dict[str, Any]] = []
    window_score = 0.0  # correct predictions, or the sum of absolute errors
    base_window = dict.fromkeys(BASELINES, 0.0)
    started = time.perf_counter()
    for i, (x, y) in enumerate(stream, start=1):
        for name, right in baselines.step(x, y).items():
            base_window[name] += right
        result = system.process_one(x, y)
        window_score += result.loss if regression else result.correct
        for e in result.events:
            log.append(dict(e.to_dict(), at=e.at + n_boot))
        if i % report_window == 0 or i == len(stream):
            size = (i - 1) % report_window + 1
            row = {"end": i + n_boot, score: window_score / size}
            row.update({f"{k}_{score}": v / size for k, v in base_window.items()})
            row["learners"] = {s.learner_id: s.window_mae if regression else s.window_accuracy
                               for s in system.learner_stats()}
            row["champion"] = _champion_id(system)
            windows.append(row)
            window_score, base_window = 0.0, dict.fromkeys(base_window, 0.0)
            if progress:
                progress(i, len(stream), {score: getattr(system.served, score), "champion": row["champion"],
                                          "promotions": sum(e["kind"] == EventKind.PROMOTION for e in log)})
    elapsed = time.perf_counter() - started
    result = _result(config, info, boot, system, baselines, windows, log, n_boot, len(stream), elapsed,
                     report_window)
    return {**result, "notices": notices}


def _validated_stream(events: list, validator: RowValidator) -> list:
    """Events the spec accepts (a refused one is what the trainer would dead-letter)."""
    out = []
    for x, y in events:
        try:
            out.append((validator.row(x), validator.label(y)))
        except RowError:
            continue
    return out


def _champion_id(system: LearningSystem) -> str:
    return next(s.learner_id for s in system.learner_stats() if s.role == "champion")


def _result(config, info, boot, system, baselines, windows, log, n_boot, n_stream, elapsed,
            report_window) -> dict[str, Any]:
    served = system.served.summary()
    regression = system.task is Task.REGRESSION
    learners = {}
    for m in system.members:
        scores = ({"mae": m.metrics.mae, "rmse": m.metrics.rmse, "r2": m.metrics.r2} if regression
                  else {"accuracy": m.metrics.accuracy, "f1_macro": m.metrics.f1_macro})
        learners[m.learner_id] = {**scores, "events": m.metrics.n, "role": m.role, "standing": m.standing}
    keys = ("mae", "rmse", "r2") if regression else ("accuracy", "precision", "recall", "f1_macro", "log_loss")
    total = n_boot + n_stream
    return {
        "stream": config.stream,
        "task": system.task.value,
        "seed": config.seed,
        "events": n_stream,
        "bootstrap_events": n_boot,
        "events_per_second": n_stream / elapsed if elapsed else 0.0,
        "elapsed_seconds": elapsed,
        "prequential": {k: served[k] for k in keys},
        "window": report_window,
        "windows": windows,
        "true_drifts": drift_positions(total, info.n_phases) if info.n_phases > 1 else [],
        "drifts": [e["at"] for e in log if e["kind"] == EventKind.DRIFT and e.get("role") == "champion"],
        "drift_events": [e for e in log if e["kind"] == EventKind.DRIFT],
        "promotions": [{"at": e["at"], "from_version": e.get("from_version"), "to_version": e.get("to_version"),
                        "learner": e["learner"], "reason": e["reason"]} for e in log if e["kind"] == EventKind.PROMOTION],
        "rollbacks": [{"at": e["at"], "from_version": e.get("from_version"), "to_version": e.get("to_version"),
                       "learner": e["learner"], "reason": e["reason"]} for e in log if e["kind"] == EventKind.ROLLBACK],
        "refreshes": sum(e["kind"] == EventKind.REFRESH for e in log),
        "challengers": [e for e in log if e["kind"] in (EventKind.CHALLENGER, EventKind.RETIRED)],
        "baselines": baselines.summary(),
        "learners": learners,
        "bootstrap": boot.summary(),
        "final_champion": {"learner": _champion_id(system), "version": system.champion_version},
    }

