"""Acceptance: two trainers in one group; the active one is killed (-9); the standby takes
over the partitions, resumes from the shared checkpoint, and the totals are still exact."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from streaming.faults import mixed_feedback
from streaming.topics import feedback_topic

pytestmark = pytest.mark.integration


def test_hot_standby_takes_over_from_the_shared_checkpoint(
        kio, stream, trainer_settings, trainer_cli, checkpoints, reference_system):  # noqa: ANN001
    settings = trainer_settings(checkpoint_every_events=300, checkpoint_interval_s=0.5, max_poll_records=100)
    model = settings.model
    n = kio.scaled(6000, 20000)
    events = stream(n)
    values = [g.value for g in mixed_feedback(model, events, trainer_settings.feature_names,
                                              trainer_settings.classes, invalid_every=0)]
    first, rest = values[: n // 5], values[n // 5:]

    active = trainer_cli(settings, "active")
    kio.produce_values(settings.bootstrap_servers, feedback_topic(model), model, first)
    kio.wait_for(lambda: checkpoints.learned(settings) == len(first), "the active trainer to learn the first part")
    standby = trainer_cli(settings, "standby")
    kio.wait_for(lambda: "training model" in Path(standby.log_path).read_text(), "the standby to start")

    kio.produce_values(settings.bootstrap_servers, feedback_topic(model), model, rest)
    # polled often: the trainer learns thousands of events per second, and the kill must
    # land before the end of the stream
    kio.wait_for(lambda: checkpoints.learned(settings) > len(first) + 100, "the active trainer to go on",
                 every_s=0.01)
    active.send_signal(signal.SIGKILL)
    active.wait()
    killed_at = checkpoints.learned(settings)
    assert killed_at < n

    kio.wait_for(lambda: checkpoints.learned(settings) == n, "the standby to finish the stream")
    standby.send_signal(signal.SIGTERM)
    assert standby.wait(60) == 0
    log = Path(standby.log_path).read_text()
    assert "resumed from checkpoint" in log and "now active" in log

    got = checkpoints.system(settings)
    want = reference_system(settings, events)
    assert got.events_learned == n
    probe = stream(200, seed=99)
    assert [got.champion.predict_proba_one(x) for x, _ in probe] == \
           [want.champion.predict_proba_one(x) for x, _ in probe]
