"""The lag gauge tells the truth when a partition is stuck: a trainer whose fetcher process
cannot read anything reports the whole backlog, not 0 (real embedded broker)."""

from __future__ import annotations

import pytest

from streaming.broker import free_port
from streaming.faults import mixed_feedback
from streaming.topics import feedback_topic

pytestmark = pytest.mark.integration


def test_lag_shows_the_backlog_while_the_fetcher_cannot_read(kio, stream, trainer_settings,
                                                             running_trainer, monkeypatch) -> None:  # noqa: ANN001
    import streaming.bootstrap as bootstrap

    settings = trainer_settings(fetch_process=True)
    model = settings.model
    values = [g.value for g in mixed_feedback(model, stream(40), trainer_settings.feature_names,
                                              trainer_settings.classes, invalid_every=0)]
    for value in values:  # one batch each: the embedded broker's ListOffsets counts batches, Kafka's records
        kio.produce_values(settings.bootstrap_servers, feedback_topic(model), model, [value])

    real = bootstrap.build_fetcher_source

    def stuck_fetcher(settings_, consumer, trainer):  # noqa: ANN001, ANN202
        source = real(settings_, consumer, trainer)  # the group consumer works; the fetcher reads from nowhere
        source.fetcher._args[0]["bootstrap_servers"] = [f"127.0.0.1:{free_port()}"]
        source.fetcher._args[0]["request_timeout_ms"] = 2000
        return source

    monkeypatch.setattr(bootstrap, "build_fetcher_source", stuck_fetcher)
    process = running_trainer(settings)

    def lag() -> float | None:
        return process.trainer.metrics.registry.get_sample_value(
            "perennial_consumer_lag", {"model": model, "partition": f"{feedback_topic(model)}:0"})

    kio.wait_for(lambda: lag() == len(values), f"lag {len(values)} reported (got {lag()})", guard_s=60)
    assert process.trainer.loaded and process.trainer.system.events_learned == 0
    assert process.thread.is_alive()
