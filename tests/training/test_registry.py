"""Behaviour of the file-system model registry, through its public interface.

The learner is a tiny real one (a majority-class counter with pickle snapshots). Snapshots
only load classes from the ``training`` package, so the fixture registers this module's
learner under a ``training.`` module name, the same way a real learner module is found.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import sys
import threading
import types
from collections import Counter
from typing import Any

import pytest

import training.registry as registry_module
from training.learners.base import Learner
from training.registry import (
    IntegrityError,
    Registry,
    RegistryError,
    VersionInfo,
    VersionNotFoundError,
)

FIXTURE_MODULE = "training._test_registry_learners"
KEY = b"test-key-0123456789"


class Majority(Learner):
    """Predicts the most frequent label seen so far."""

    __module__ = FIXTURE_MODULE
    name = "majority"

    def __init__(self, smoothing: float = 0.0):
        self.smoothing = smoothing
        self.counts: Counter = Counter()

    def predict_proba_one(self, x):
        total = sum(self.counts.values())
        return {y: c / total for y, c in self.counts.items()} if total else {}

    def learn_one(self, x, y):
        self.counts[y] += 1

    def params(self) -> dict[str, Any]:
        return {"smoothing": self.smoothing}

    def clone(self) -> Majority:
        return Majority(**self.params())

    def to_bytes(self) -> bytes:
        return pickle.dumps({"params": self.params(), "counts": dict(self.counts)})

    @classmethod
    def from_bytes(cls, data: bytes) -> Majority:
        state = pickle.loads(data)
        learner = cls(**state["params"])
        learner.counts.update(state["counts"])
        return learner


@pytest.fixture(autouse=True)
def learner_module(monkeypatch):
    module = types.ModuleType(FIXTURE_MODULE)
    module.Majority = Majority
    monkeypatch.setitem(sys.modules, FIXTURE_MODULE, module)


@pytest.fixture
def reg(tmp_path):
    return Registry(tmp_path / "registry", key=KEY)


def trained(*labels) -> Majority:
    learner = Majority()
    for y in labels:
        learner.learn_one({"f": 1.0}, y)
    return learner


def version_dir(reg: Registry, model: str, version: int):
    return reg.root / model / "versions" / str(version)


# -- publish / load ----------------------------------------------------------------------------


def test_publish_load_round_trip_and_metadata(reg):
    learner = trained("a", "b", "b")
    info = reg.publish(
        "fraud", learner, metrics={"accuracy": 0.9}, data_range={"from": 0, "to": 3},
        reference={"f": [1, 2, 3]}, note="bootstrap",
    )
    assert info.version == 1
    loaded = reg.load("fraud", 1)
    assert loaded.info == info
    assert loaded.learner.predict_proba_one({"f": 0.0}) == learner.predict_proba_one({"f": 0.0})
    assert loaded.learner.predict_one({"f": 0.0}) == "b"

    meta = json.loads((version_dir(reg, "fraud", 1) / "metadata.json").read_text())
    assert meta == info.to_dict()
    assert meta["learner"] == "majority"
    assert meta["format"] == "pickle"
    assert meta["class_path"] == f"{FIXTURE_MODULE}:Majority"
    assert meta["sha256"] == hashlib.sha256(
        (version_dir(reg, "fraud", 1) / "artifact.bin").read_bytes()
    ).hexdigest()
    assert meta["created_at"].endswith("Z")
    assert meta["parent"] is None and meta["note"] == "bootstrap"
    assert meta["metrics"] == {"accuracy": 0.9} and meta["reference"] == {"f": [1, 2, 3]}


def test_versions_ascend_and_publish_moves_no_alias(reg):
    infos = [reg.publish("m", trained(str(i)), parent=i or None) for i in range(3)]
    assert [i.version for i in infos] == [1, 2, 3]
    (reg.root / "m" / "versions" / "4.partial").mkdir()  # scratch names are not versions
    (reg.root / "m" / ".staging-abc").mkdir()
    assert [i.version for i in reg.versions("m")] == [1, 2, 3]
    assert reg.info("m", 3).parent == 2
    assert reg.alias("m", "champion") is None
    assert reg.alias_token("m") is None
    assert reg.models() == ["m"]
    with pytest.raises(VersionNotFoundError, match="no 'champion' alias"):
        reg.load("m")


def test_missing_version_and_model(reg):
    reg.publish("m", trained("a"))
    with pytest.raises(VersionNotFoundError, match=r"version 7 does not exist; versions: \[1\]"):
        reg.load("m", 7)
    with pytest.raises(VersionNotFoundError, match="no model 'other'"):
        reg.load("other", 1)


# -- integrity ---------------------------------------------------------------------------------


def test_corrupt_artifact_refused(reg):
    reg.publish("m", trained("a"))
    artifact = version_dir(reg, "m", 1) / "artifact.bin"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="model 'm' version 1 .*checksum"):
        reg.load("m", 1)


def test_unsigned_version_refused(reg):
    reg.publish("m", trained("a"))
    (version_dir(reg, "m", 1) / "signature").unlink()
    with pytest.raises(IntegrityError, match="model 'm' version 1 .*unsigned"):
        reg.load("m", 1)


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_tampered_pickle_with_recomputed_checksum_is_never_unpickled(reg, tmp_path):
    reg.publish("m", trained("a"))
    vdir = version_dir(reg, "m", 1)
    payload = pickle.dumps(_Exploit(str(tmp_path / "pwned")))
    (vdir / "artifact.bin").write_bytes(payload)
    meta = json.loads((vdir / "metadata.json").read_text())
    meta["sha256"] = hashlib.sha256(payload).hexdigest()
    (vdir / "metadata.json").write_text(json.dumps(meta))

    with pytest.raises(IntegrityError, match="model 'm' version 1 .*signature does not verify"):
        reg.load("m", 1)
    assert not (tmp_path / "pwned").exists()
    pickle.loads(pickle.dumps(_Exploit(str(tmp_path / "proof"))))  # the payload is real
    assert (tmp_path / "proof").exists()


def test_swapped_metadata_refused(reg):
    reg.publish("m", trained("a"), note="original")
    meta_path = version_dir(reg, "m", 1) / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["class_path"] = "training.learners.base:Learner"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match="signature does not verify"):
        reg.load("m", 1)


def test_version_folder_copied_under_another_number_refused(reg):
    reg.publish("m", trained("a"))
    reg.publish("m", trained("b"))
    v1, v2 = version_dir(reg, "m", 1), version_dir(reg, "m", 2)
    for name in ("artifact.bin", "metadata.json", "signature"):
        (v2 / name).write_bytes((v1 / name).read_bytes())
    with pytest.raises(IntegrityError, match="version 2 .*metadata says model 'm' version 1"):
        reg.load("m", 2)


def test_signature_from_another_key_refused(reg):
    reg.publish("m", trained("a"))
    other = Registry(reg.root, key="another-key")
    with pytest.raises(IntegrityError, match="model 'm' version 1 .*signature does not verify"):
        other.load("m", 1)


# -- aliases, promotion, rollback --------------------------------------------------------------


def test_promote_and_rollback_move_aliases_and_log_decisions(reg):
    for label in "abc":
        reg.publish("m", trained(label))
    reg.promote("m", 1, "bootstrap")
    assert (reg.alias("m", "champion"), reg.alias("m", "previous")) == (1, None)
    token = reg.alias_token("m")
    reg.promote("m", 2, "beats champion by 3%")
    assert (reg.alias("m", "champion"), reg.alias("m", "previous")) == (2, 1)
    assert reg.alias_token("m") != token and reg.alias_token("m")[0] == 2
    assert reg.load("m").learner.predict_one({}) == "b"

    assert reg.rollback("m", "new champion worse") == 1
    assert (reg.alias("m", "champion"), reg.alias("m", "previous")) == (1, None)
    assert reg.load("m", "champion").info.version == 1

    reg.set_alias("m", "canary", 3)
    assert reg.alias("m", "canary") == 3
    assert reg.load("m", "canary").learner.predict_one({}) == "c"

    log = reg.decisions("m")
    assert [(d["action"], d["alias"], d["from"], d["to"]) for d in log] == [
        ("promote", "champion", None, 1),
        ("promote", "champion", 1, 2),
        ("rollback", "champion", 2, 1),
        ("set_alias", "canary", None, 3),
    ]
    assert [d["reason"] for d in log[:3]] == ["bootstrap", "beats champion by 3%", "new champion worse"]
    assert all(d["time"].endswith("Z") and d["model"] == "m" for d in log)


def test_rollback_without_previous_raises(reg):
    reg.publish("m", trained("a"))
    with pytest.raises(RegistryError, match="no previous version"):
        reg.rollback("m", "why not")
    reg.promote("m", 1, "first")
    with pytest.raises(RegistryError, match="cannot roll back model 'm'"):
        reg.rollback("m", "why not")
    assert reg.alias("m", "champion") == 1


def test_promote_to_corrupt_version_raises_and_champion_stays(reg):
    reg.publish("m", trained("a"))
    reg.publish("m", trained("b"))
    reg.promote("m", 1, "first")
    (version_dir(reg, "m", 2) / "signature").write_text("0" * 64)
    with pytest.raises(IntegrityError, match="version 2"):
        reg.promote("m", 2, "looks better")
    assert reg.alias("m", "champion") == 1
    assert reg.alias("m", "previous") is None
    assert [d["to"] for d in reg.decisions("m")] == [1]
    with pytest.raises(VersionNotFoundError):
        reg.promote("m", 9, "no such version")


def test_retention_keeps_aliased_versions(tmp_path):
    reg = Registry(tmp_path, key=KEY, retain=2)
    for label in "ab":
        reg.publish("m", trained(label))
    reg.promote("m", 1, "first")
    reg.promote("m", 2, "second")  # champion 2, previous 1
    for label in "cdef":
        reg.publish("m", trained(label))
    assert [i.version for i in reg.versions("m")] == [1, 2, 5, 6]
    reg.set_alias("m", "canary", 5)
    reg.publish("m", trained("g"))
    assert reg.prune("m") == []
    assert [i.version for i in reg.versions("m")] == [1, 2, 5, 6, 7]
    assert reg.load("m").info.version == 2
    assert reg.load("m", "previous").info.version == 1
    assert not [p for p in (reg.root / "m").iterdir() if p.name.startswith(".staging")]


# -- concurrency -------------------------------------------------------------------------------


def test_reader_sees_old_or_new_champion_never_an_error(tmp_path):
    reg = Registry(tmp_path, key=KEY, retain=2)  # small retain: old versions get pruned under the reader
    reg.promote("m", reg.publish("m", trained("1")).version, "first")
    stop, started = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    seen: list[int] = []

    def read_loop():
        reader = Registry(tmp_path, key=KEY)
        try:
            while not stop.is_set():
                loaded = reader.load("m", "champion")
                # the artifact belongs to the metadata it came with: version k predicts "k"
                assert loaded.learner.predict_one({}) == str(loaded.info.version)
                seen.append(loaded.info.version)
                started.set()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            started.set()

    thread = threading.Thread(target=read_loop)
    thread.start()
    started.wait()
    for n in range(2, 22):
        info = reg.publish("m", trained(str(n)))
        assert info.version == n
        reg.promote("m", n, "newer")
    stop.set()
    thread.join()
    assert not errors, errors
    assert seen and set(seen) <= set(range(1, 22))
    assert reg.alias("m", "champion") == 21


def test_concurrent_publishers_get_distinct_versions(tmp_path):
    barrier = threading.Barrier(2)
    got: list[int] = []
    errors: list[BaseException] = []

    def publish_many(label):
        reg = Registry(tmp_path, key=KEY, retain=100)
        try:
            barrier.wait()
            for _ in range(10):
                got.append(reg.publish("m", trained(label)).version)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=publish_many, args=(label,)) for label in "xy"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(got) == list(range(1, 21))
    reg = Registry(tmp_path, key=KEY)
    assert [i.version for i in reg.versions("m")] == list(range(1, 21))
    assert sorted(reg.load("m", n).learner.predict_one({}) for n in got) == ["x"] * 10 + ["y"] * 10


# -- validation and keys -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".hidden", "x" * 65, "sp ace"])
def test_invalid_model_name_rejected(reg, name):
    with pytest.raises(RegistryError, match=r"invalid model name .*must match"):
        reg.publish(name, trained("a"))
    assert not reg.root.exists() or reg.models() == []


def test_invalid_version_and_alias_names_rejected(reg):
    reg.publish("m", trained("a"))
    with pytest.raises(RegistryError, match="invalid version 0"):
        reg.load("m", 0)
    with pytest.raises(RegistryError, match="invalid alias name '../x'"):
        reg.set_alias("m", "../x", 1)


def test_dev_key_default_warns_when_used_and_env_key_is_used(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("PERENNIAL_REGISTRY_KEY", raising=False)
    registry_module._warn_dev_key_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger="training.registry"):
        dev = Registry(tmp_path / "dev")
        assert dev.models() == [] and not caplog.records, "reading names signs nothing: no warning yet"
        dev.publish("m", trained("a"))
    assert any(
        r.levelno == logging.WARNING and "PERENNIAL_REGISTRY_KEY" in r.getMessage()
        and "development key" in r.getMessage()
        for r in caplog.records
    )

    monkeypatch.setenv("PERENNIAL_REGISTRY_KEY", "from-env")
    Registry(tmp_path / "prod").publish("m", trained("a"))
    assert Registry(tmp_path / "prod", key="from-env").load("m", 1).learner.predict_one({}) == "a"
    with pytest.raises(IntegrityError):
        Registry(tmp_path / "prod", key=KEY).load("m", 1)


def test_version_info_dict_round_trip(reg):
    info = reg.publish("m", trained("a"), metrics={"f1": 0.5})
    assert VersionInfo.from_dict(info.to_dict()) == info
