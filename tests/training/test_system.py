"""The learning loop: same events for every learner, drift spawns, promotion, rollback, checkpoint."""

import random

import pytest

from training.drift import DriftConfig
from training.learners.base import InvalidFeaturesError
from training.learners.candidates import build_candidates
from training.promotion import PromotionPolicy
from training.publishers import InMemoryPublisher, RegistryPublisher
from training.registry import Registry
from training.streams import iter_stream
from training.system import LearningSystem, LoopConfig

from .toy_learners import ConstantLearner

FAST_POLICY = PromotionPolicy(min_events=500, window=1000, margin=0.02, alpha=0.001, guard_events=3000, cooldown=100)


def phased_labels(phases, seed=0):
    """Events whose label is 1 (or 0) with probability 0.9 per phase: [(n, majority), ...]."""
    rng = random.Random(seed)
    for n, majority in phases:
        for _ in range(n):
            yield {"f": rng.random()}, majority if rng.random() < 0.9 else 1 - majority


def test_every_learner_scores_the_same_events_before_learning():
    learners = build_candidates("logreg,hat")
    system = LearningSystem("m", learners[0], learners[1:], LoopConfig(refresh_every=0))
    for x, y in iter_stream("agrawal", 300):
        system.process_one(x, y)
    stats = system.learner_stats()
    assert [s.n for s in stats] == [300, 300]
    assert {s.role for s in stats} == {"champion", "challenger"}
    assert system.events_learned == 300
    # the served accuracy is the champion's own prequential accuracy
    assert system.served.accuracy == pytest.approx(stats[0].accuracy)


def test_clearly_better_challenger_is_promoted_then_rolled_back_when_it_turns_worse():
    a, b = ConstantLearner(1, 0, name="ones"), ConstantLearner(0, 1, name="zeros")
    publisher = InMemoryPublisher()
    version = publisher.publish(a, parent=None, metrics={}, note="bootstrap")
    publisher.promote(version, "bootstrap")
    config = LoopConfig(policy=FAST_POLICY, check_every=50, refresh_every=0, spawn_on_drift=False)
    system = LearningSystem("m", a, [b], config, publisher, version)
    events = []
    # phase 1 favours the champion, phase 2 the challenger (promoted), phase 3 the champion again
    for i, (x, y) in enumerate(phased_labels([(1500, 1), (1200, 0), (2500, 1)])):
        events += [(i, e) for e in system.process_one(x, y).events]
    events = [(i, e) for i, e in events if e.kind != "drift"]
    kinds = [e.kind for _, e in events]
    assert kinds == ["promotion", "rollback"], [e.reason for _, e in events]
    promotion, rollback = events[0][1], events[1][1]
    assert 1500 < promotion.at < 2700 and promotion.learner == "zeros"
    assert "challenger better" in promotion.reason and "McNemar" in promotion.reason
    assert rollback.at > 2700 and rollback.learner == "ones"
    assert "worse than the one it replaced" in rollback.reason
    assert publisher.champion == version == system.champion_version
    assert system.champion is a


def test_equal_learners_never_flap():
    a, b = ConstantLearner(1, 0, name="ones"), ConstantLearner(1, 0, confidence=0.8, name="ones-too")
    config = LoopConfig(policy=FAST_POLICY, check_every=10, refresh_every=0)
    system = LearningSystem("m", a, [b], config, InMemoryPublisher(), 1)
    for x, y in phased_labels([(5000, 1)]):
        assert not system.process_one(x, y).events


def test_champion_drift_spawns_a_fresh_challenger_that_learns_only_post_drift():
    learners = build_candidates("hat,logreg")
    config = LoopConfig(drift=DriftConfig(min_events=200), refresh_every=0, max_fresh_challengers=1)
    system = LearningSystem("m", learners[0], learners[1:], config)
    spawned = []
    for x, y in iter_stream("agrawal-drift", 8000, seed=1):
        spawned += [e for e in system.process_one(x, y).events if e.kind == "challenger"]
    assert spawned, "no challenger spawned after the champion drifted"
    first = spawned[0]
    assert first.at > 1900  # the first concept switch is at event 2000
    fresh = [m for m in system.members if not m.standing]
    assert fresh and all(m.metrics.n == system.events_learned - m.born_at for m in fresh)
    assert len([m for m in fresh if m.role == "challenger"]) <= 1  # capped


def test_refreshes_write_versions_to_the_registry_and_never_move_previous(tmp_path):
    # (promotions writing versions: test_clearly_better_challenger_is_promoted_then_rolled_back...)
    registry = Registry(tmp_path, key="test-key")
    logreg = build_candidates("logreg")[0]  # the registry loads only training.* learners
    version = registry.publish("m", logreg, note="bootstrap").version
    registry.promote("m", version, "bootstrap")
    config = LoopConfig(refresh_every=300, spawn_on_drift=False)
    system = LearningSystem("m", logreg, [], config, RegistryPublisher(registry, "m"), version)
    for x, y in iter_stream("agrawal", 700):
        system.process_one(x, y)
    assert [(v.origin, v.parent) for v in registry.versions("m")][1:] == [("refresh", 1), ("refresh", 2)]
    assert registry.alias("m", "champion") == 3 == system.champion_version
    assert registry.alias("m", "previous") is None  # refreshes never displace the rollback target
    assert registry.load("m").learner.predict_one(x) == system.champion.predict_one(x)


def test_checkpoint_restores_exactly():
    learners = build_candidates("logreg,hat")
    system = LearningSystem("m", learners[0], learners[1:], LoopConfig(refresh_every=0))
    events = list(iter_stream("agrawal-drift", 3000, seed=2))
    for x, y in events[:1500]:
        system.process_one(x, y)
    restored = LearningSystem.from_bytes(system.to_bytes())
    for x, y in events[1500:]:
        assert system.process_one(x, y).prediction == restored.process_one(x, y).prediction
    assert system.learner_stats() == restored.learner_stats()


def test_bad_event_is_refused_before_any_learner_sees_it():
    learners = build_candidates("logreg,hat")
    system = LearningSystem("m", learners[0], learners[1:], LoopConfig())
    with pytest.raises(InvalidFeaturesError, match="'a' is nan"):
        system.process_one({"a": float("nan")}, 1)
    assert system.events_learned == 0
    assert all(s.n == 0 for s in system.learner_stats())


def test_external_rollback_undoes_the_last_promotion():
    a, b = ConstantLearner(1, 0, name="ones"), ConstantLearner(0, 1, name="zeros")
    publisher = InMemoryPublisher()
    publisher.promote(publisher.publish(a, parent=None, metrics={}, note="bootstrap"), "bootstrap")
    config = LoopConfig(policy=FAST_POLICY, check_every=50, refresh_every=0, spawn_on_drift=False)
    system = LearningSystem("m", a, [b], config, publisher, 1)
    assert system.rollback_now("nothing promoted yet") is None
    for x, y in phased_labels([(1000, 1), (1500, 0)]):
        system.process_one(x, y)
    assert system.champion is b and publisher.champion == 2
    event = system.rollback_now("p99 latency 2.1 s > 0.5 s")
    assert event.kind == "rollback" and event.reason == "p99 latency 2.1 s > 0.5 s"
    assert system.champion is a and publisher.champion == 1 == system.champion_version
    assert system.rollback_now("twice") is None


def test_operator_rollback_is_adopted_not_overwritten_by_the_next_refresh(tmp_path):
    registry = Registry(tmp_path, key="test-key")
    first, second = build_candidates("logreg")[0], build_candidates("logreg")[0]
    v1 = registry.publish("m", first, note="bootstrap").version
    registry.promote("m", v1, "bootstrap")
    config = LoopConfig(refresh_every=200, check_every=50, spawn_on_drift=False)
    system = LearningSystem("m", second, [], config, RegistryPublisher(registry, "m"), v1)
    events = list(iter_stream("agrawal", 900))
    for x, y in events[:450]:
        system.process_one(x, y)
    assert registry.alias("m", "champion") == system.champion_version == 3  # two refreshes
    registry.set_alias("m", "champion", v1, reason="operator: back to the bootstrap model")
    adopted = []
    for x, y in events[450:]:
        adopted += [e for e in system.process_one(x, y).events if e.kind == "adopted"]
    assert [e.to_version for e in adopted] == [v1]
    assert system.champion_version != 3 and registry.alias("m", "champion") == system.champion_version
    # later refreshes continue from the adopted version, not from the overwritten lineage
    assert registry.info("m", 4).parent == v1 and registry.info("m", 4).note == "refresh"
    assert {s.role for s in system.learner_stats()} == {"champion", "challenger"}


def test_a_learner_rejected_by_the_serving_guard_is_not_promoted_again_at_once():
    a, b = ConstantLearner(1, 0, name="ones"), ConstantLearner(0, 1, name="zeros")
    publisher = InMemoryPublisher()
    publisher.promote(publisher.publish(a, parent=None, metrics={}, note="bootstrap"), "bootstrap")
    config = LoopConfig(policy=FAST_POLICY, check_every=50, refresh_every=0, spawn_on_drift=False,
                        rejected_cooldown=10_000)
    system = LearningSystem("m", a, [b], config, publisher, 1)
    promotions = 0
    for x, y in phased_labels([(1000, 1), (6000, 0)]):
        for e in system.process_one(x, y).events:
            if e.kind == "promotion":
                promotions += 1
                system.rollback_now("guard: p99 too high")
    assert promotions == 1  # zeros stays better, but waits out its quarantine


def test_a_failing_registry_never_unlearns_an_event():
    class BrokenPublisher(InMemoryPublisher):
        def publish(self, *args, **kwargs):
            raise OSError("disk full")

    learners = build_candidates("logreg,hat")
    system = LearningSystem("m", learners[0], learners[1:], LoopConfig(refresh_every=100, check_every=50),
                            BrokenPublisher(), 1)
    errors = []
    for i, (x, y) in enumerate(iter_stream("agrawal", 300), start=1):
        errors += [e for e in system.process_one(x, y).events if e.kind == "error"]
        assert system.events_learned == i
    assert errors and "disk full" in errors[0].reason


def test_restored_system_takes_current_settings():
    learners = build_candidates("logreg")
    system = LearningSystem("m", learners[0], [], LoopConfig(check_every=100))
    for x, y in iter_stream("agrawal", 200):
        system.process_one(x, y)
    restored = LearningSystem.from_bytes(system.to_bytes())
    new = LoopConfig(check_every=10, policy=PromotionPolicy(window=5000))
    restored.reconfigure(new)
    assert restored.config.check_every == 10
    assert all(m.metrics.correct_bits.maxlen == 5000 for m in restored.members)
    assert list(restored.members[0].metrics.correct_bits) == list(system.members[0].metrics.correct_bits)
