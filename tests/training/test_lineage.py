"""A version's lineage is typed metadata: readers decide by ``origin`` and ``parent``, not notes."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from streaming.bootstrap import bootstrap_challengers
from training.learners.candidates import build_candidates
from training.lineage import Origin
from training.publishers import RegistryPublisher
from training.registry import Registry, RegistryError
from training.streams import iter_stream
from training.system import LearningSystem, LoopConfig

KEY = "lineage-test-key"


def old_writer_signature(metadata: bytes, artifact: bytes) -> str:
    """The registry's signature format (unchanged by the ``origin`` field), as an old writer made it."""
    mac = hmac.new(KEY.encode(), len(metadata).to_bytes(8, "big") + metadata, hashlib.sha256)
    mac.update(artifact)
    return mac.hexdigest()


def bootstrapped(root, note: str = "whatever the wording") -> Registry:  # noqa: ANN001
    registry = Registry(root, key=KEY)
    champion, hat = build_candidates("logreg,hat")
    v1 = registry.publish("m", champion, origin=Origin.BOOTSTRAP, note="bootstrap").version
    registry.promote("m", v1, "bootstrap champion")
    registry.publish("m", hat, parent=v1, origin=Origin.BOOTSTRAP_CANDIDATE, note=note)
    registry.publish("m", build_candidates("logreg")[0], parent=v1, note="bootstrap challenger (manual)")
    return registry


def test_bootstrap_challengers_are_found_by_origin_whatever_the_note_says(tmp_path) -> None:  # noqa: ANN001
    registry = bootstrapped(tmp_path, note="reworded: a second opinion")
    assert [c.name for c in bootstrap_challengers(registry, "m", 1)] == ["hat"], \
        "a MANUAL version whose note merely looks like a bootstrap one is not a challenger"
    assert [v.origin for v in registry.versions("m")] == [Origin.BOOTSTRAP, Origin.BOOTSTRAP_CANDIDATE,
                                                          Origin.MANUAL]


def test_versions_of_an_old_registry_get_their_origin_from_the_note(tmp_path) -> None:  # noqa: ANN001
    registry = Registry(tmp_path, key=KEY)
    v1 = registry.publish("m", build_candidates("logreg")[0], note="bootstrap: best of logreg,hat").version
    registry.publish("m", build_candidates("hat")[0], parent=v1, note="bootstrap challenger (hat)")
    # what a registry written before `origin` existed holds: the same metadata without the field
    for n in (1, 2):
        path = tmp_path / "m" / "versions" / str(n) / "metadata.json"
        meta = json.loads(path.read_text())
        del meta["origin"]
        path.write_text(json.dumps(meta, indent=2))
        artifact = path.with_name("artifact.bin").read_bytes()
        path.with_name("signature").write_text(old_writer_signature(path.read_bytes(), artifact))
    old = Registry(tmp_path, key=KEY)
    assert [v.origin for v in old.versions("m")] == [Origin.BOOTSTRAP, Origin.BOOTSTRAP_CANDIDATE]
    assert [c.name for c in bootstrap_challengers(old, "m", v1)] == ["hat"]


def test_the_loop_records_promotion_and_refresh_lineage(tmp_path) -> None:  # noqa: ANN001
    registry = bootstrapped(tmp_path)
    system = LearningSystem("m", registry.load("m", 1).learner, [], LoopConfig(refresh_every=100),
                            RegistryPublisher(registry, "m"), 1)
    for x, y in iter_stream("agrawal", 100):
        system.process_one(x, y)
    refreshed = registry.info("m", system.champion_version)
    assert (refreshed.origin, refreshed.parent) == (Origin.REFRESH, 1)


def test_an_unknown_origin_is_refused_with_the_accepted_ones(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(RegistryError, match="invalid origin 'guess'.*bootstrap_candidate"):
        Registry(tmp_path, key=KEY).publish("m", build_candidates("logreg")[0], origin="guess")
