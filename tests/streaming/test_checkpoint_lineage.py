"""Checkpoints fail safe: a trainer resumes only its own registry's checkpoints, and an
unusable checkpoint file of any kind falls back to an older generation or is refused with
its reason — never a crash. The trainer is built by the real composition root
(`streaming.bootstrap.build_trainer`), with the dead letters kept in memory."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from streaming.bootstrap import build_trainer
from streaming.checkpoint import Checkpoint, CheckpointError, CheckpointStore
from streaming.dlq import MemoryDeadLetters
from streaming.metrics import TrainerMetrics
from streaming.settings import TrainerSettings
from streaming.trainer import Record
from training.registry import IntegrityError, Registry

MODEL = "agr"


def settings_for(registry: Path, checkpoints: Path) -> TrainerSettings:
    return TrainerSettings(model=MODEL, registry_dir=registry, checkpoint_dir=checkpoints, candidates="logreg",
                           metrics_port=0)


def trainer_for(registry: Path, checkpoints: Path):  # noqa: ANN201
    return build_trainer(settings_for(registry, checkpoints), TrainerMetrics(CollectorRegistry()),
                         MemoryDeadLetters())


def learn(trainer, events: list, start: int = 0) -> None:  # noqa: ANN001
    trainer.handle([Record(f"{MODEL}.feedback", 0, start + i, MODEL.encode(), json.dumps(
        {"event_id": f"e{start + i}", "model": MODEL, "features": x, "label": y}).encode(), 1000)
        for i, (x, y) in enumerate(events)])


@pytest.fixture
def trained(tmp_path: Path, make_registry, stream):  # noqa: ANN001, ANN201
    """Registry A's trainer has learned 300 events over two checkpoints (seq 1: 200, seq 2: 300)."""
    registry = tmp_path / "registry-a"
    make_registry(registry, MODEL)
    checkpoints = tmp_path / "checkpoints"
    trainer = trainer_for(registry, checkpoints)
    trainer.restore()
    events = stream(300)
    learn(trainer, events[:200])
    trainer.checkpoint()
    learn(trainer, events[200:], start=200)
    trainer.checkpoint()
    return registry, checkpoints


def store(checkpoints: Path) -> CheckpointStore:
    return CheckpointStore(checkpoints, MODEL, settings_for(Path("unused"), checkpoints).hmac_key())


def test_the_registry_writes_one_lineage_id_per_model(tmp_path: Path, make_registry) -> None:  # noqa: ANN001
    make_registry(tmp_path / "a", MODEL)
    make_registry(tmp_path / "b", MODEL)
    a, b = Registry(tmp_path / "a"), Registry(tmp_path / "b")
    assert len(a.lineage(MODEL)) == 32 and a.lineage(MODEL) == a.lineage(MODEL)
    assert a.lineage(MODEL) != b.lineage(MODEL), "same model name, another registry: another lineage"
    written = (tmp_path / "a" / MODEL / "lineage").read_text()
    a.publish(MODEL, a.load(MODEL).learner, parent=1, note="later version")
    assert (tmp_path / "a" / MODEL / "lineage").read_text() == written, "later versions keep it"

    (tmp_path / "a" / MODEL / "lineage").unlink()  # a registry from before lineage ids
    assert len(Registry(tmp_path / "a").lineage(MODEL)) == 32
    (tmp_path / "a" / MODEL / "lineage").write_text("garbage\n")
    with pytest.raises(IntegrityError, match="lineage file .* holds 'garbage'"):
        Registry(tmp_path / "a").lineage(MODEL)


def test_a_trainer_resumes_its_own_registry_checkpoint(trained) -> None:  # noqa: ANN001
    registry, checkpoints = trained
    again = trainer_for(registry, checkpoints)
    assert again.restore() == {(f"{MODEL}.feedback", 0): 300}
    assert again.system.events_learned == 300
    assert store(checkpoints).load_latest().lineage == Registry(registry).lineage(MODEL)


def test_another_registrys_checkpoint_is_never_resumed(trained, tmp_path: Path, make_registry, stream,
                                                       caplog) -> None:  # noqa: ANN001
    _, checkpoints = trained
    fresh_registry = tmp_path / "registry-b"  # freshly bootstrapped, same model name, same checkpoint folder
    make_registry(fresh_registry, MODEL)
    trainer = trainer_for(fresh_registry, checkpoints)
    with caplog.at_level(logging.WARNING):
        assert trainer.restore() == {}
    assert trainer.system.events_learned == 0 and trainer.system.champion_version == 1
    said = caplog.text
    assert "not resuming checkpoint(s) 2" in said and "another registry" in said and str(checkpoints) in said
    assert Registry(fresh_registry).lineage(MODEL) in said

    learn(trainer, stream(50))
    trainer.checkpoint()  # not fenced by the stranger's newer sequence numbers
    again = trainer_for(fresh_registry, checkpoints)
    again.restore()
    assert again.system.events_learned == 50, "now it resumes its own"


def test_a_checkpoint_without_lineage_is_not_resumed(tmp_path: Path, make_registry) -> None:  # noqa: ANN001
    make_registry(tmp_path / "registry", MODEL)
    trainer = trainer_for(tmp_path / "registry", tmp_path / "checkpoints")
    trainer.restore()
    legacy = Checkpoint(model=MODEL, system=trainer.system.to_bytes(), offsets={(f"{MODEL}.feedback", 0): 99})
    store(tmp_path / "checkpoints").save(legacy, None)  # as written before lineage ids existed
    again = trainer_for(tmp_path / "registry", tmp_path / "checkpoints")
    assert again.restore() == {}


def replace_newest(checkpoints: Path, how: str) -> None:
    s = store(checkpoints)
    path = s.dir / f"checkpoint-{s.latest_seq():012d}.ckpt"
    if how == "directory":
        path.unlink()
        path.mkdir()
        (path / "something").write_bytes(b"x")
    elif how == "wrong type":  # signed with the right key, but the state is not a LearningSystem
        good = s.load(s.latest_seq())
        good.system = pickle.dumps({"not": "a learning system"})
        path.write_bytes(s.encode(good))
    elif how == "garbled header":
        body = b"PRNLCKP1" + (5).to_bytes(8, "big") + b"[1,2]" + b"state"
        import hashlib
        import hmac

        path.write_bytes(body + hmac.new(settings_for(Path("x"), checkpoints).hmac_key(), body,
                                         hashlib.sha256).digest())
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif how == "unsigned":
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))
    else:
        raise AssertionError(how)


UNUSABLE = ["directory", "wrong type", "garbled header", "truncated", "unsigned"]


@pytest.mark.parametrize("how", UNUSABLE)
def test_an_unusable_newest_checkpoint_falls_back_to_the_older_one(trained, stream, how: str) -> None:  # noqa: ANN001
    registry, checkpoints = trained
    replace_newest(checkpoints, how)
    trainer = trainer_for(registry, checkpoints)
    assert trainer.restore() == {(f"{MODEL}.feedback", 0): 200}, "checkpoint 1: re-learn from 200"
    assert trainer.system.events_learned == 200
    learn(trainer, stream(300)[200:], start=200)
    assert trainer.checkpoint() == {(f"{MODEL}.feedback", 0): 300}, "saves past the unusable one, not fenced"
    again = trainer_for(registry, checkpoints)
    assert again.restore() == {(f"{MODEL}.feedback", 0): 300}


@pytest.mark.parametrize("how", UNUSABLE)
def test_when_no_checkpoint_is_usable_the_trainer_refuses_with_the_reason(trained, how: str) -> None:  # noqa: ANN001
    registry, checkpoints = trained
    replace_newest(checkpoints, how)
    s = store(checkpoints)
    (s.dir / "checkpoint-000000000001.ckpt").unlink()
    with pytest.raises(CheckpointError, match=r"no checkpoint of 'agr' in .* verifies and loads \(2: ") as e:
        trainer_for(registry, checkpoints).restore()
    assert "PERENNIAL_CHECKPOINT_KEY" in str(e.value) and "move the folder away" in str(e.value)


def test_a_checkpoint_folder_that_is_a_file_is_refused_clearly(tmp_path: Path, make_registry) -> None:  # noqa: ANN001
    make_registry(tmp_path / "registry", MODEL)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / MODEL).write_text("not a folder")
    with pytest.raises(CheckpointError, match="cannot be listed.*PERENNIAL_CHECKPOINT_DIR"):
        trainer_for(tmp_path / "registry", tmp_path / "checkpoints").restore()
