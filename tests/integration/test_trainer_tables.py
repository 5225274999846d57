"""The trainer learns raw table rows from Kafka: categorical strings, null and absent
optional features, an unseen category — and dead-letters rows that break the spec, with
the reason. Both record sources (the fetcher process and the in-process consumer)."""

from __future__ import annotations

import json

import pytest

from tests.tables import customer_rows

pytestmark = pytest.mark.integration


def _bootstrap_table(registry_dir, model: str) -> None:
    from training.bootstrap import BootstrapConfig, train_candidates
    from training.data_prep import Split
    from training.registry import Registry

    rows = customer_rows(800, seed=11)
    events = [({k: v for k, v in r.items() if k != "churn"}, r["churn"]) for r in rows]
    result = train_candidates(events, BootstrapConfig(candidates=("logreg", "hat"), split=Split.RANDOM,
                                                      augment_copies=0, target="churn"))
    registry = Registry(registry_dir)
    v = registry.publish(model, result.champion.learner, metrics=result.champion.validation, note="bootstrap")
    registry.promote(model, v.version, "bootstrap champion")


@pytest.mark.parametrize("fetch_process", [True, False], ids=["fetcher", "one-process"])
def test_trainer_learns_raw_table_rows_and_dead_letters_bad_ones(
        fetch_process: bool, broker: str, tmp_path, model_name: str, kio, checkpoints, running_trainer) -> None:
    from streaming.broker import ensure_topics
    from streaming.settings import TrainerSettings
    from streaming.topics import dlq_topic, feedback_topic, model_topics

    registry = tmp_path / "registry"
    _bootstrap_table(registry, model_name)
    ensure_topics(broker, model_topics(model_name))
    rows = customer_rows(1000, seed=12)
    values = []
    for i, r in enumerate(rows):
        features = {k: v for k, v in r.items() if k != "churn" and v is not None}  # absent = missing
        if i % 50 == 0:
            features["plan"] = "enterprise"  # a category bootstrap never saw: valid
        values.append(json.dumps({"event_id": f"e{i}", "model": model_name, "features": features,
                                  "label": r["churn"]}).encode())
    bad = [
        {"features": {"spend": "lots", "plan": "pro", "autopay": True}, "label": "no"},  # string for numeric
        {"features": {"spend": 1.0, "plan": "pro", "autopay": True, "colour": "red"}, "label": "no"},  # unknown
        {"features": {"spend": 1.0, "plan": "p" * 1000, "autopay": True}, "label": "no"},  # oversized category
        {"features": {"spend": 1.0, "plan": "pro", "autopay": True}, "label": 0.5},  # label of the wrong kind
    ]
    for j, b in enumerate(bad):
        values.insert(100 * (j + 1), json.dumps({"event_id": f"bad{j}", "model": model_name, **b}).encode())
    kio.produce_values(broker, feedback_topic(model_name), model_name, values)

    settings = TrainerSettings(model=model_name, bootstrap_servers=broker, registry_dir=registry,
                               checkpoint_dir=tmp_path / "checkpoints", metrics_port=0, candidates="logreg",
                               checkpoint_every_events=200, checkpoint_interval_s=1.0, fetch_process=fetch_process)
    running_trainer(settings)
    kio.wait_for(lambda: checkpoints.learned(settings) >= len(rows), f"{len(rows)} table rows learned")
    dead = kio.read_topic(broker, dlq_topic(model_name), len(bad))
    reasons = sorted(dict(r.headers)["perennial.dlq.reason"].decode() for r in dead)
    assert reasons == sorted(["wrong_type", "unknown_feature", "oversized", "wrong_type"]), reasons
    system = checkpoints.system(settings)
    assert system.events_learned == len(rows)
    assert system.champion.n_features_in == ["tenure", "spend", "plan", "region", "autopay"]
    assert system.served.accuracy > 0.7
