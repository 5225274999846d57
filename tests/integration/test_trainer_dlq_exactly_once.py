"""Acceptance: kill -9 the real `perennial train` three times with malformed events in
flight; the dead-letter topic ends up holding each malformed event exactly once (real
embedded broker, no mocks)."""

from __future__ import annotations

import json
import random
import signal
import time

import pytest

from streaming.dlq import DeadLetter
from streaming.faults import mixed_feedback
from streaming.topics import dlq_topic, feedback_topic

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fetch_process", [True, False], ids=["fetcher-process", "one-process"])
def test_kill_minus_nine_three_times_dead_letters_each_malformed_event_once(
        kio, stream, trainer_settings, trainer_cli, checkpoints, monkeypatch, fetch_process) -> None:  # noqa: ANN001
    monkeypatch.setenv("PERENNIAL_FETCH_PROCESS", str(fetch_process).lower())
    settings = trainer_settings(checkpoint_every_events=kio.scaled(300, 2000), checkpoint_interval_s=0.5,
                                max_poll_records=100)
    model = settings.model
    n = kio.scaled(4000, 30000)
    generated = list(mixed_feedback(model, stream(n), trainer_settings.feature_names, trainer_settings.classes,
                                    invalid_every=8, max_bytes=settings.max_event_bytes))
    malformed = [g for g in generated if g.reason is not None]
    kio.produce_values(settings.bootstrap_servers, feedback_topic(model), model, [g.value for g in generated])
    rng = random.Random(12)

    kills = []
    for target in sorted(rng.sample(range(n // 10, n * 6 // 10), 3)):
        resumed_at = checkpoints.learned(settings)
        proc = trainer_cli(settings)
        goal = max(target, resumed_at + 1)
        kio.wait_for(lambda g=goal: checkpoints.learned(settings) >= g, f"the trainer to pass event {goal}",
                     every_s=0.01)
        time.sleep(rng.uniform(0.0, 0.05))  # between two checkpoints: letters sent, not yet checkpointed
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append(checkpoints.learned(settings))
    assert kills[-1] < n, "every kill must land mid-stream for the test to mean something"

    final = trainer_cli(settings)
    kio.wait_for(lambda: checkpoints.learned(settings) == n, f"all {n} valid events learned")
    final.send_signal(signal.SIGTERM)
    assert final.wait(60) == 0

    records = kio.read_topic(settings.bootstrap_servers, dlq_topic(model), expected=len(malformed) + 50,
                             idle_s=3.0)
    letters = [DeadLetter.from_record(r) for r in records]
    identities = [letter.identity for letter in letters]
    doubled = len(identities) - len(set(identities))
    assert doubled == 0, f"{doubled} dead letters written twice (kills after {kills} learned events)"
    assert sorted(letter.value for letter in letters) == sorted(g.value for g in malformed)
    assert len(letters) == len(malformed)
    print(json.dumps({"events": n, "malformed": len(malformed), "kills_at_checkpoint_events": kills}))
