"""Known secrets are refused beyond loopback, by the trainer's settings and by `perennial serve`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streaming.secrets import DEVELOPMENT_KEY, InsecureSecretError, refuse_insecure_secrets
from streaming.settings import TrainerSettings


@pytest.mark.parametrize(("value", "addresses", "allow", "refused"), [
    ("replace-me-with-a-random-secret", ["kafka:9092"], False, True),
    ("local-compose-key-not-for-production", ["10.0.0.5:9092"], False, True),
    (DEVELOPMENT_KEY, ["kafka-0.kafka:9092,kafka-1.kafka:9092"], False, True),
    ("replace-me-with-a-random-secret", ["127.0.0.1:9092", "localhost:9093"], False, False),  # a laptop
    ("replace-me-with-a-random-secret", ["kafka:9092"], True, False),  # the explicit opt-out
    ("3f9a1c0e5d7b2a4f", ["kafka:9092"], False, False),  # a real secret
])
def test_refuse_insecure_secrets(value, addresses, allow, refused):
    call = lambda: refuse_insecure_secrets({"PERENNIAL_REGISTRY_KEY": value}, addresses, allow)  # noqa: E731
    if refused:
        with pytest.raises(InsecureSecretError, match="PERENNIAL_REGISTRY_KEY"):
            call()
    else:
        call()


def test_trainer_refuses_the_development_key_on_a_remote_broker(monkeypatch):
    monkeypatch.delenv("PERENNIAL_REGISTRY_KEY", raising=False)
    with pytest.raises(InsecureSecretError, match="development"):
        TrainerSettings(model="m", bootstrap_servers="kafka:9092").check_secrets()
    TrainerSettings(model="m", bootstrap_servers="127.0.0.1:9092").check_secrets()
    TrainerSettings(model="m", bootstrap_servers="kafka:9092", allow_insecure_secrets=True).check_secrets()


def test_serve_refuses_a_placeholder_key_on_a_public_interface(tmp_path):
    env = {"PERENNIAL_REGISTRY_KEY": "replace-me-with-a-random-secret", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "service.cli", "serve", "--registry", str(tmp_path),
                           "--host", "0.0.0.0", "--bootstrap-servers", ""],
                          env={**env, "PYTHONPATH": ":".join(sys.path)}, capture_output=True, text=True)
    assert done.returncode == 2 and "PERENNIAL_REGISTRY_KEY" in done.stderr and "placeholder" in done.stderr
