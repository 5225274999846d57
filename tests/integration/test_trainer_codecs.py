"""Acceptance: feedback written by a librdkafka producer (confluent-kafka) with every Kafka
compression codec, headers and null keys is learned in both fetch modes; a record batch that
cannot be decoded is dead-lettered with the reason and the events after it are learned
(real embedded broker, no mocks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streaming.dlq import DeadLetter
from streaming.schemas import Reason
from streaming.topics import dlq_topic, feedback_topic

pytestmark = pytest.mark.integration

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
MODES = pytest.mark.parametrize("fetch_process", [True, False], ids=["fetcher-process", "one-process"])


def feedback_values(model: str, events: list, prefix: str) -> list[bytes]:
    return [json.dumps({"event_id": f"{prefix}{i}", "model": model, "features": x, "label": y}).encode()
            for i, (x, y) in enumerate(events)]


def produce_librdkafka(bootstrap: str, topic: str, model: str, values: list[bytes], codec: str) -> None:
    """One flush per call, so each call's records travel in batches of its own codec; every
    other record has a null key, every record carries headers."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 20,
                         "acks": "all", "log_level": 3})
    failed: list = []
    for i, value in enumerate(values):
        producer.produce(topic, value=value, key=None if i % 2 else model.encode(),
                         headers=[("codec", codec.encode()), ("n", str(i).encode()), ("empty", b"")],
                         on_delivery=lambda err, _msg: failed.append(err) if err else None)
    assert producer.flush(60) == 0 and not failed, failed


def learned_all(process, expected_learned: int, expected_offset: int) -> bool:  # noqa: ANN001
    trainer = process.trainer
    return (trainer.loaded and trainer.system.events_learned == expected_learned
            and trainer.offsets.get((feedback_topic(trainer.model), 0)) == expected_offset)


@MODES
def test_every_codec_from_librdkafka_is_learned(kio, stream, trainer_settings, running_trainer,
                                                fetch_process) -> None:  # noqa: ANN001
    settings = trainer_settings(fetch_process=fetch_process)
    model = settings.model
    per_codec = 60
    events = stream(per_codec * len(CODECS))
    for k, codec in enumerate(CODECS):
        chunk = events[k * per_codec:(k + 1) * per_codec]
        produce_librdkafka(settings.bootstrap_servers, feedback_topic(model), model,
                           feedback_values(model, chunk, f"{codec}-"), codec)

    process = running_trainer(settings)
    kio.wait_for(lambda: learned_all(process, len(events), len(events)), "every event of every codec learned")
    assert kio.read_topic(settings.bootstrap_servers, dlq_topic(model), expected=1, idle_s=1.0) == []
    assert process.thread.is_alive()


@pytest.fixture
def zstd_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decode as a client without the zstd library would: in this process (one-process mode)
    and in fetcher processes started from it (they inherit sys.path, where a stand-in
    `zstandard` that fails to import comes first)."""
    import kafka.codec

    fake = tmp_path / "no-zstd"
    fake.mkdir()
    (fake / "zstandard.py").write_text("raise ImportError('zstandard made unavailable by the test')\n")
    monkeypatch.syspath_prepend(str(fake))
    monkeypatch.setattr(kafka.codec, "zstd", None)


@MODES
def test_an_undecodable_batch_is_dead_lettered_and_the_events_after_it_are_learned(
        kio, stream, trainer_settings, running_trainer, zstd_unavailable, fetch_process) -> None:  # noqa: ANN001
    settings = trainer_settings(fetch_process=fetch_process)
    model = settings.model
    before, unreadable, after = stream(50), stream(30, seed=8), stream(70, seed=9)
    topic = feedback_topic(model)
    produce_librdkafka(settings.bootstrap_servers, topic, model, feedback_values(model, before, "a"), "gzip")
    produce_librdkafka(settings.bootstrap_servers, topic, model, feedback_values(model, unreadable, "z"), "zstd")
    produce_librdkafka(settings.bootstrap_servers, topic, model, feedback_values(model, after, "c"), "lz4")
    total = len(before) + len(unreadable) + len(after)

    process = running_trainer(settings)
    kio.wait_for(lambda: learned_all(process, len(before) + len(after), total),
                 "the events before and after the undecodable batch learned, and the partition past it")

    letters = [DeadLetter.from_record(r) for r in kio.read_topic(settings.bootstrap_servers, dlq_topic(model),
                                                                  expected=2, idle_s=1.0)]
    assert len(letters) >= 1
    assert {letter.reason for letter in letters} == {str(Reason.UNDECODABLE_BATCH)}
    # librdkafka may split the zstd records into several batches: together they cover them exactly
    covered = []
    for letter in letters:
        assert (letter.topic, letter.partition) == (topic, 0)
        assert "zstd" in letter.detail and "UnsupportedCodecError" in letter.detail, letter.detail
        assert letter.value, "the dead letter keeps the batch's raw bytes"
        first, last = letter.detail.split(" offsets ")[1].split(" ")[0].split("..")
        assert int(first) == letter.offset
        covered.extend(range(int(first), int(last) + 1))
    assert covered == list(range(len(before), len(before) + len(unreadable)))
    assert process.trainer.metrics.registry.get_sample_value(
        "perennial_events_dead_lettered_total", {"model": model, "reason": "undecodable_batch"}) == len(letters)
    kio.wait_for(lambda: process.trainer.metrics.registry.get_sample_value(
        "perennial_consumer_lag", {"model": model, "partition": f"{topic}:0"}) == 0, "lag reported as 0 at the end")
    assert process.thread.is_alive(), "never a restart loop, never an exit"
    assert process.trainer._m.fetcher_restarts._value.get() == 0
