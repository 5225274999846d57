"""Acceptance of "your own model": a user package outside the repository (a temporary
directory on PYTHONPATH) with a River pipeline factory and a ``torch.nn.Module`` factory.

Through the real ``perennial`` script: `check` passes both; `bootstrap` trains both as
candidates (allowed by PERENNIAL_ALLOWED_MODULES) and records their factories; a service
process whose allow-list lacks the package refuses the version (not ready, reason kept)
instead of importing it, and serves it once allowed. Then the trainer learns from the real
broker with a user network as champion and a user River model as challenger, promotes
the better one, and the data plane answers with it.
"""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from tests.helpers import run_perennial

pytestmark = pytest.mark.integration

USER_PACKAGE = textwrap.dedent('''
    """A user's models: a River pipeline and a small PyTorch network."""
    from river import compose, linear_model, multiclass, optim, preprocessing
    from torch import nn


    def river_pipeline(lr: float = 0.05):
        return preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(
            linear_model.LogisticRegression(optim.SGD(lr)))


    def net(n_inputs, n_outputs, hidden: int = 16):
        return nn.Sequential(nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Linear(hidden, n_outputs))


    def tree():
        from river import tree as river_tree

        return river_tree.HoeffdingTreeClassifier(grace_period=50)
''')


@pytest.fixture(scope="module")
def user_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("userpkg")
    (root / "acme_models").mkdir()
    (root / "acme_models" / "__init__.py").write_text("")
    (root / "acme_models" / "tabular.py").write_text(USER_PACKAGE)
    return root


def env_with(user_path, allowed: str | None) -> dict[str, str]:
    env = {"PYTHONPATH": os.pathsep.join([str(user_path), os.environ.get("PYTHONPATH", "")])}
    if allowed is not None:
        env["PERENNIAL_ALLOWED_MODULES"] = allowed
    return env


@pytest.mark.parametrize("factory", ["acme_models.tabular:river_pipeline", "acme_models.tabular:net"])
def test_perennial_check_passes_the_users_factories(user_path, factory):
    done = run_perennial("check", factory, env=env_with(user_path, None))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("  PASS  ") == 6 and "FAIL" not in done.stdout
    assert "all 6 properties hold" in done.stdout


def test_perennial_check_reports_each_broken_property_and_fails(user_path):
    for factory, broken in [("peeking", "predicting does not change the model"),
                            ("sticky_clone", "a clone is untrained"),
                            ("forgetful_snapshot", "a snapshot round-trip predicts identically")]:
        done = run_perennial("check", f"tests.training.toy_learners:{factory}")
        assert done.returncode == 1, done.stdout + done.stderr
        failed = [line for line in done.stdout.splitlines() if line.startswith("  FAIL  ")]
        assert len(failed) == 1 and failed[0].startswith(f"  FAIL  {broken}: "), done.stdout
        assert "1 of 6 properties failed" in done.stdout


def test_bootstrap_trains_both_and_the_service_refuses_the_package_unless_allowed(user_path, tmp_path, monkeypatch):
    registry_dir = tmp_path / "registry"
    candidates = "acme_models.tabular:river_pipeline,acme_models.tabular:net"
    refused = run_perennial("bootstrap", "--stream", "agrawal", "--model", "own", "--registry", str(registry_dir),
                            "--events", "1500", "--candidates", candidates, env=env_with(user_path, None))
    assert refused.returncode == 2 and "is not allowed" in refused.stderr and "PERENNIAL_ALLOWED_MODULES" in refused.stderr

    done = run_perennial("bootstrap", "--stream", "agrawal", "--model", "own", "--registry", str(registry_dir),
                         "--events", "1500", "--candidates", candidates, env=env_with(user_path, "acme_models"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "acme_models.tabular:river_pipeline" in done.stdout and "acme_models.tabular:net" in done.stdout

    from service.metrics_exposition import build_service_metrics
    from service.model_holder import ModelHolder, build_champion
    from training.registry import Registry

    registry = Registry(registry_dir)
    factories = {v.factory for v in registry.versions("own")}
    assert factories == {"acme_models.tabular:river_pipeline", "acme_models.tabular:net"}

    # a serving process without the package in its allow-list: the version is refused, not imported
    monkeypatch.syspath_prepend(str(user_path))
    monkeypatch.delenv("PERENNIAL_ALLOWED_MODULES", raising=False)
    metrics = build_service_metrics()

    def build(loaded):
        return build_champion(loaded, metrics, max_batch_size=8, max_latency_ms=5, device="cpu")

    holder = ModelHolder(registry, build, metrics)
    holder.poll_once()
    assert not holder.ready
    assert "which PERENNIAL_ALLOWED_MODULES does not allow" in holder.refusals[-1]["reason"]
    assert "acme_models" not in sys.modules  # refused before anything of it was imported

    monkeypatch.setenv("PERENNIAL_ALLOWED_MODULES", "acme_models")
    holder = ModelHolder(registry, build, metrics)
    holder.poll_once()
    assert holder.ready and holder.get("own").info.factory.startswith("acme_models.tabular:")
    for name in [m for m in sys.modules if m.startswith("acme_models")]:
        del sys.modules[name]


def test_the_trainer_promotes_one_user_model_over_the_other_and_serve_answers_with_it(
        user_path, tmp_path, monkeypatch, broker, model_name, kio, checkpoints, running_trainer):
    import asyncio
    import json

    from service.dataplane import DataPlane
    from service.metrics_exposition import build_service_metrics
    from service.model_holder import ModelHolder, build_champion
    from service.prediction_log import KafkaEventLog
    from streaming.broker import ensure_topics
    from streaming.settings import TrainerSettings
    from streaming.topics import feedback_topic, model_topics
    from training.learners.candidates import build_candidates
    from training.lineage import Origin
    from training.registry import Registry
    from training.spec_inference import infer_spec
    from training.streams import iter_stream

    monkeypatch.syspath_prepend(str(user_path))
    monkeypatch.setenv("PERENNIAL_ALLOWED_MODULES", "acme_models")
    events = list(iter_stream("agrawal", 3500, seed=5))
    boot, stream = events[:500], events[500:]
    spec = infer_spec([x for x, _ in boot], [y for _, y in boot])
    # a deliberately weak network as champion, the user's tree as its bootstrap challenger
    net_path, tree_path = "acme_models.tabular:net", "acme_models.tabular:tree"
    weak, tree = build_candidates([net_path, tree_path], spec, **{net_path: {"hidden": 2, "lr": 1e-6}})
    for learner in (weak, tree):
        learner.learn_many([x for x, _ in boot], [y for _, y in boot])
    registry = Registry(tmp_path / "registry")
    champion = registry.publish(model_name, weak, origin=Origin.BOOTSTRAP)
    registry.promote(model_name, champion.version, "bootstrap champion")
    registry.publish(model_name, tree, parent=champion.version, origin=Origin.BOOTSTRAP_CANDIDATE)

    ensure_topics(broker, model_topics(model_name))
    kio.produce_values(broker, feedback_topic(model_name), model_name, [
        json.dumps({"event_id": f"e{i}", "model": model_name, "features": x, "label": y}).encode()
        for i, (x, y) in enumerate(stream)])
    settings = TrainerSettings(model=model_name, bootstrap_servers=broker, registry_dir=tmp_path / "registry",
                               checkpoint_dir=tmp_path / "checkpoints", metrics_port=0, candidates=tree_path,
                               checkpoint_every_events=500, checkpoint_interval_s=1.0, fetch_process=False,
                               promotion_min_events=300, promotion_window=500, check_every=100)
    running_trainer(settings)
    kio.wait_for(lambda: checkpoints.learned(settings) >= len(stream), f"{len(stream)} events learned")
    promoted = [d for d in registry.decisions(model_name) if d["action"] == "promote" and d["from"] is not None]
    assert promoted, registry.decisions(model_name)
    served = registry.info(model_name, registry.alias(model_name, "champion"))
    assert served.factory == tree_path
    restored = checkpoints.system(settings)  # the checkpoint restores the user's learners
    assert restored.events_learned == len(stream)

    metrics = build_service_metrics()
    holder = ModelHolder(registry, lambda loaded: build_champion(loaded, metrics, max_batch_size=8,
                                                                 max_latency_ms=5, device="cpu"), metrics)
    holder.poll_once()
    plane = DataPlane(holder, metrics, KafkaEventLog("", metrics), max_instances=8, admin_token="tok")
    loop = asyncio.new_event_loop()
    try:
        out = loop.run_until_complete(plane.predict(model_name, [{"features": x} for x, _ in stream[:5]]))
    finally:
        loop.close()
    assert out["version"] == served.version and len(out["predictions"]) == 5
    for name in [m for m in sys.modules if m.startswith("acme_models")]:
        del sys.modules[name]
