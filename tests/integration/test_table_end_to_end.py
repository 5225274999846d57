"""A user's table, end to end through the real commands: a CSV as it ships (two categorical
string columns, a boolean, missing cells, rows sorted by class) bootstrapped with
`perennial bootstrap`, served by `perennial serve`, raw rows answered over `/predict`, the
same rows as Kafka feedback learned by `perennial train`, and a promotion to another learner
family that leaves the accepted input as it was."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_perennial, wait_for
from tests.integration.serve_process import serve_in
from tests.tables import customer_rows, write_csv

pytestmark = pytest.mark.integration

KEY = "table-e2e-key"

# as a client has them: strings, null, an absent optional feature, a category never seen
RAW = [
    {"tenure": 3.5, "spend": 70.0, "plan": "basic", "region": "south", "autopay": False},
    {"spend": 120.0, "plan": "enterprise", "region": None, "autopay": True},
    {"tenure": None, "spend": 55.5, "plan": "pro", "autopay": True},
]


def test_a_sorted_csv_with_categories_and_gaps_end_to_end(broker: str, tmp_path, model_name: str,
                                                           processes, checkpoints, kio) -> None:
    from streaming.broker import ensure_topics
    from streaming.settings import TrainerSettings
    from streaming.topics import feedback_topic, model_topics
    from training.lineage import Origin
    from training.registry import Registry
    from training.spec import FeatureKind

    env = {"PERENNIAL_REGISTRY_KEY": KEY}
    csv_path = write_csv(customer_rows(1500, seed=21), tmp_path / "churn.csv")
    registry_dir = tmp_path / "registry"
    boot = run_perennial("bootstrap", "--stream", str(csv_path), "--target", "churn", "--model", model_name,
                         "--registry", str(registry_dir), "--events", "1500", env=env)
    assert boot.returncode == 0, boot.stdout + boot.stderr
    assert "stratified by class" in boot.stdout and "categorical" in boot.stdout, boot.stdout
    registry = Registry(registry_dir, key=KEY)
    champion = registry.load(model_name, "champion")
    spec = champion.learner.spec
    assert spec.feature("plan").kind is FeatureKind.CATEGORICAL and spec.feature("region").optional
    assert spec.classes == ("no", "yes")

    client = serve_in(processes, registry_dir, broker, env).http

    def predict() -> dict:
        r = client.post("/predict", json={"model": model_name, "instances": [{"features": x} for x in RAW]})
        assert r.status_code == 200, r.text
        return r.json()

    first = predict()
    assert [p["label"] in ("no", "yes") for p in first["predictions"]] == [True] * len(RAW)
    bad = client.post("/predict", json={"model": model_name, "instances": [{"features": {**RAW[0], "spend": "a lot"}}]})
    assert bad.status_code == 422 and "'spend'" in bad.json()["error"], bad.text

    # the same kind of rows as Kafka feedback, learned by the real trainer
    ensure_topics(broker, model_topics(model_name))
    events = customer_rows(600, seed=22)
    values = [json.dumps({"event_id": f"e{i}", "model": model_name, "label": r["churn"],
                          "features": {k: v for k, v in r.items() if k != "churn" and v is not None}}).encode()
              for i, r in enumerate(events)]
    kio.produce_values(broker, feedback_topic(model_name), model_name, values)
    settings = TrainerSettings(model=model_name, bootstrap_servers=broker, registry_dir=registry_dir,
                               checkpoint_dir=tmp_path / "checkpoints", metrics_port=0,
                               checkpoint_every_events=200, checkpoint_interval_s=1.0,
                               checkpoint_key=KEY)  # the trainer signs with the registry key it was given
    processes.perennial("train", "train", "--model", model_name, "--bootstrap-servers", broker,
                        "--registry", str(registry_dir), "--checkpoint-dir", str(settings.checkpoint_dir),
                        "--metrics-port", "0", env={**env, "PERENNIAL_CHECKPOINT_EVERY_EVENTS": "200",
                                                    "PERENNIAL_CHECKPOINT_INTERVAL_S": "1"})
    wait_for(lambda: checkpoints.learned(settings) >= len(events), f"{len(events)} feedback rows learned",
             guard_s=300, alive=processes.check_alive)

    # promote a bootstrap challenger of another family: clients send exactly what they sent
    other = next(v for v in registry.versions(model_name)
                 if v.origin is Origin.BOOTSTRAP_CANDIDATE and v.learner != champion.info.learner)
    registry.promote(model_name, other.version, "test: another learner family")
    wait_for(lambda: predict()["version"] == other.version, f"version {other.version} served",
             guard_s=120, alive=processes.check_alive)
    assert len(predict()["predictions"]) == len(RAW)
