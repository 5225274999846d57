"""Acceptance of "your own model": a user package outside the repository (a temporary
directory on PYTHONPATH) with a River pipeline factory and a ``torch.nn.Module`` factory.

Through the real ``perennial`` script: `check` passes both; `bootstrap` trains both as
candidates (allowed by PERENNIAL_ALLOWED_MODULES) and records their factories; a service
process whose allow-list lacks the package refuses the version (not ready, reason kept)
instead of importing it, and serves it once allowed.
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
