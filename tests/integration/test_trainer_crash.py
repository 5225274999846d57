"""Acceptance: kill -9 the real `perennial train` process at random points and restart it;
the learned count equals the valid events exactly and the final champion predicts exactly
like an uninterrupted run (exactly-once effect through checkpoint + offsets + event ids)."""

from __future__ import annotations

import json
import random
import signal
import time

import pytest

from streaming.faults import mixed_feedback
from streaming.topics import feedback_topic

pytestmark = pytest.mark.integration


def test_kill_minus_nine_three_times_learns_every_event_once(
        kio, stream, trainer_settings, trainer_cli, checkpoints, reference_system):  # noqa: ANN001
    settings = trainer_settings(checkpoint_every_events=kio.scaled(300, 2000), checkpoint_interval_s=0.5,
                                max_poll_records=100)
    model = settings.model
    n = kio.scaled(6000, 50000)
    events = stream(n)
    generated = list(mixed_feedback(model, events, trainer_settings.feature_names, trainer_settings.classes,
                                    invalid_every=50))
    kio.produce_values(settings.bootstrap_servers, feedback_topic(model), model, [g.value for g in generated])
    rng = random.Random(5)

    kills = []
    for target in sorted(rng.sample(range(n // 10, n * 6 // 10), 3)):
        resumed_at = checkpoints.learned(settings)
        proc = trainer_cli(settings)
        # let it get past a random point of the stream, then kill it between two checkpoints
        goal = max(target, resumed_at + 1)
        # polled often: the trainer learns several thousand events per second, and every
        # kill must land before the end of the stream
        kio.wait_for(lambda g=goal: checkpoints.learned(settings) >= g, f"the trainer to pass event {goal}",
                     every_s=0.01)
        time.sleep(rng.uniform(0.0, 0.05))  # short: at reduced size the stream lasts about a second
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append(checkpoints.learned(settings))
    assert kills[-1] < n, "every kill must land mid-stream for the test to mean something"

    final = trainer_cli(settings)
    kio.wait_for(lambda: checkpoints.learned(settings) == n, f"all {n} valid events learned")
    final.send_signal(signal.SIGTERM)
    assert final.wait(60) == 0
    assert checkpoints.learned(settings) == n

    got = checkpoints.system(settings)
    want = reference_system(settings, events)
    assert got.events_learned == want.events_learned == n
    probe = stream(200, seed=99)
    assert [got.champion.predict_proba_one(x) for x, _ in probe] == \
           [want.champion.predict_proba_one(x) for x, _ in probe]
    assert [s.learner_id for s in got.learner_stats()] == [s.learner_id for s in want.learner_stats()]
    print(json.dumps({"events": n, "kills_at_checkpoint_events": kills}))
