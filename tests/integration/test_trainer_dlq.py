"""Acceptance: invalid events of every kind are dead-lettered with the right reason; the
valid ones are all learned; the trainer never stops (real embedded broker, no mocks)."""

from __future__ import annotations

from collections import Counter

import pytest

from streaming.dlq import DeadLetter
from streaming.faults import mixed_feedback
from streaming.topics import dlq_topic, feedback_topic

pytestmark = pytest.mark.integration


def sample(metrics, name: str, **labels: str) -> float:  # noqa: ANN001
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


@pytest.mark.parametrize("fetch_process", [True, False], ids=["fetcher-process", "one-process"])
def test_invalid_events_are_dead_lettered_with_their_reason(
        kio, stream, trainer_settings, running_trainer, fetch_process):  # noqa: ANN001
    settings = trainer_settings(fetch_process=fetch_process)
    model = settings.model
    n = kio.scaled(2000, 20000)
    generated = list(mixed_feedback(model, stream(n), trainer_settings.feature_names, trainer_settings.classes,
                                    invalid_every=19, max_bytes=settings.max_event_bytes))
    invalid = [g for g in generated if g.reason is not None]
    valid = [g for g in generated if g.reason is None]
    assert len({g.reason for g in invalid}) >= 8
    assert len(invalid) / len(generated) == pytest.approx(0.05, abs=0.002)

    process = running_trainer(settings)
    kio.produce_values(settings.bootstrap_servers, feedback_topic(model), model, [g.value for g in generated])
    kio.wait_for(lambda: process.trainer.system is not None
                 and process.trainer.system.events_learned == len(valid), "every valid event learned")

    letters = [DeadLetter.from_record(r) for r in
               kio.read_topic(settings.bootstrap_servers, dlq_topic(model), expected=len(invalid))]
    assert len(letters) == len(invalid)
    by_value = {g.value: g for g in invalid}
    for letter in letters:
        assert letter.topic == feedback_topic(model) and letter.partition == 0 and letter.offset >= 0
        assert letter.value in by_value, "the dead letter keeps the original bytes"
        assert letter.reason == by_value[letter.value].reason, letter.detail
        assert letter.detail
    assert len({(x.topic, x.partition, x.offset) for x in letters}) == len(invalid)

    metrics = process.trainer.metrics
    expected = Counter(str(g.reason) for g in invalid)
    for reason, count in expected.items():
        assert sample(metrics, "perennial_events_dead_lettered_total", model=model, reason=reason) == count
    assert sample(metrics, "perennial_events_learned_total", model=model) == len(valid)
    assert sample(metrics, "perennial_events_consumed_total", model=model) == len(generated)
    assert process.thread.is_alive(), "the trainer never stops on bad input"
