"""The trainer's fetcher process (`streaming.fetcher`): losing it loses nothing and learns
nothing twice, and it never outlives the trainer (real broker, real processes)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from streaming.topics import feedback_topic

pytestmark = pytest.mark.integration


def _feedback(model: str, events: list, prefix: str = "e") -> list[bytes]:
    import json

    return [json.dumps({"event_id": f"{prefix}{i}", "model": model, "features": x, "label": y}).encode()
            for i, (x, y) in enumerate(events)]


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_killed_fetcher_is_replaced_and_every_event_is_learned_once(
        kio, stream, trainer_settings, running_trainer, reference_system):  # noqa: ANN001
    settings = trainer_settings(max_poll_records=100)
    n = kio.scaled(8000, 20000)
    events = stream(n)
    process = running_trainer(settings)
    kio.produce_values(settings.bootstrap_servers, feedback_topic(settings.model), settings.model,
                       _feedback(settings.model, events))
    trainer, fetcher = process.trainer, process.loop.source.fetcher
    kio.wait_for(lambda: trainer.system is not None and trainer.system.events_learned >= n // 4, "a quarter learned",
                 every_s=0.005)
    first_pid = fetcher.pid
    os.kill(first_pid, signal.SIGKILL)
    assert trainer.system.events_learned < n, "the fetcher must die mid-stream for the test to mean something"
    kio.wait_for(lambda: trainer.system is not None and trainer.system.events_learned >= n, "every event learned")
    time.sleep(1.0)  # anything learned twice would show up now
    assert fetcher.restarts >= 1 and fetcher.pid != first_pid
    got = trainer.system
    assert got.events_learned == n, "nothing lost, nothing learned twice"
    assert trainer.metrics.registry.get_sample_value("perennial_events_learned_total", {"model": settings.model}) == n
    assert trainer.metrics.registry.get_sample_value(
        "perennial_fetcher_restarts_total", {"model": settings.model}) == fetcher.restarts
    want = reference_system(settings, events)
    probe = stream(200, seed=99)
    assert [got.champion.predict_proba_one(x) for x, _ in probe] == \
           [want.champion.predict_proba_one(x) for x, _ in probe]


def test_fetcher_dies_with_a_killed_trainer(kio, trainer_settings, trainer_cli):  # noqa: ANN001
    proc = trainer_cli(trainer_settings())
    kio.wait_for(lambda: _children(proc.pid), "the trainer's fetcher process", guard_s=60)
    fetchers = _children(proc.pid)
    assert any(b"streaming.fetcher" in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in fetchers)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kio.wait_for(lambda: not any(_alive(pid) for pid in fetchers), "the fetcher to exit after its trainer", guard_s=30)


@pytest.mark.parametrize("to_group", [False, True], ids=["trainer", "process-group"])
def test_sigterm_stops_trainer_and_fetcher(kio, trainer_settings, trainer_cli, to_group):  # noqa: ANN001
    """SIGTERM to the trainer, or to its whole process group (a terminal's Ctrl-C, `timeout`,
    systemd): the trainer checkpoints and exits 0, and stops its fetcher itself — the
    fetcher ignores the signal instead of dying under a trainer that is still finishing."""
    proc = trainer_cli(trainer_settings())
    kio.wait_for(lambda: _children(proc.pid), "the trainer's fetcher process", guard_s=60)
    fetchers = _children(proc.pid)
    time.sleep(1.0)
    if to_group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    assert not any(_alive(pid) for pid in fetchers)
    log = Path(proc.log_path).read_text()
    assert "fetcher process exited" not in log and "Traceback" not in log, log[-2000:]


@pytest.mark.parametrize("fetch_process", [True, False], ids=["fetcher-process", "one-process"])
def test_a_recreated_topic_is_read_from_its_start(kio, stream, trainer_settings, running_trainer, fetch_process):  # noqa: ANN001
    """The embedded broker keeps topics in memory: after it restarts, the checkpoint's offsets
    point past the end of the new, shorter topics. The trainer says so and reads them from
    the start instead of waiting forever for offsets that will never come."""
    from streaming.broker import EmbeddedBroker, ensure_topics, free_port
    from streaming.topics import model_topics

    first, second = stream(kio.scaled(600, 3000)), stream(kio.scaled(200, 1000), seed=3)
    settings = trainer_settings(fetch_process=fetch_process)
    process = running_trainer(settings)
    kio.produce_values(settings.bootstrap_servers, feedback_topic(settings.model), settings.model,
                       _feedback(settings.model, first))
    kio.wait_for(lambda: process.trainer.system is not None
                 and process.trainer.system.events_learned == len(first), "the first stream learned")
    process.stop_event.set()
    process.thread.join(60)

    with EmbeddedBroker(port=free_port()) as restarted:  # same checkpoints, empty topics
        moved = settings.model_copy(update={"bootstrap_servers": restarted.bootstrap_servers})
        ensure_topics(moved.bootstrap_servers, model_topics(moved.model))
        values = _feedback(moved.model, second, prefix="second-")  # new ids: not duplicates
        kio.produce_values(moved.bootstrap_servers, feedback_topic(moved.model), moved.model, values)
        again = running_trainer(moved)
        kio.wait_for(lambda: again.trainer.system is not None
                     and again.trainer.system.events_learned == len(first) + len(second),
                     "the recreated topic read from its start", guard_s=120)
        again.stop_event.set()
        again.thread.join(60)
