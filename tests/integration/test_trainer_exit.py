"""How the trainer ends and where it listens: a full disk at the last checkpoint is the error
reported (not the rebalance error that leaving the group used to raise on top of it), and
its metrics bind loopback unless told otherwise (real embedded broker)."""

from __future__ import annotations

import errno
import threading
import urllib.request
from pathlib import Path

import pytest

from streaming.bootstrap import build_process
from streaming.broker import free_port
from streaming.faults import mixed_feedback
from streaming.topics import feedback_topic

pytestmark = pytest.mark.integration


def test_enospc_at_the_last_checkpoint_is_the_error_reported(kio, stream, trainer_settings) -> None:  # noqa: ANN001
    settings = trainer_settings(checkpoint_every_events=10**6, checkpoint_interval_s=3600.0)
    model = settings.model
    events = stream(200)
    values = [g.value for g in mixed_feedback(model, events, trainer_settings.feature_names,
                                              trainer_settings.classes, invalid_every=0)]
    stop = threading.Event()
    process = build_process(settings, stop=stop, serve_metrics=False)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            process.run()
        except BaseException as e:  # noqa: BLE001 - the test inspects it
            raised.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    kio.produce_values(settings.bootstrap_servers, feedback_topic(model), model, values)
    kio.wait_for(lambda: process.trainer.loaded and process.trainer.system.events_learned == len(events),
                 "every event learned")

    def disk_full(*_args: object, **_kw: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    process.trainer.store.save = disk_full
    stop.set()
    thread.join(120)
    assert not thread.is_alive()
    assert len(raised) == 1
    assert isinstance(raised[0], OSError) and raised[0].errno == errno.ENOSPC, repr(raised[0])


@pytest.mark.parametrize(("host", "reachable_as"), [(None, "127.0.0.1"), ("0.0.0.0", "0.0.0.0")])
def test_trainer_metrics_bind_loopback_unless_told(trainer_settings, host, reachable_as) -> None:  # noqa: ANN001
    overrides = {"metrics_port": free_port()}
    if host is not None:
        overrides["metrics_host"] = host
    settings = trainer_settings(**overrides)
    process = build_process(settings, stop=threading.Event(), serve_metrics=True)
    try:
        server = process.metrics_server[0]
        assert server.server_address[0] == reachable_as
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.metrics_port}/metrics", timeout=10) as r:
            assert b"perennial_events_consumed_total" in r.read()
    finally:
        process.metrics_server[0].shutdown()
        process.metrics_server[0].server_close()
        process.producer.close()
        process.loop.consumer.close()
        process.loop.source.close()


def test_perennial_train_refuses_unusable_checkpoints_with_the_reason(trainer_settings, trainer_cli) -> None:  # noqa: ANN001
    """The real CLI: the only checkpoint is a folder by a checkpoint's name; the trainer
    exits 1 with the reason, not a traceback, and not "User rebalance callback throws"."""
    settings = trainer_settings()
    folder = settings.checkpoint_dir / settings.model / "checkpoint-000000000001.ckpt"
    folder.mkdir(parents=True)
    proc = trainer_cli(settings)
    assert proc.wait(120) == 1
    log = Path(proc.log_path).read_text(encoding="utf-8")
    assert "perennial train: refusing to continue: no checkpoint of" in log
    assert "Is a directory" in log and "Traceback" not in log
