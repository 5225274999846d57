"""Real tables end to end in the learning core: categorical strings, missing cells, rows
sorted by class, numeric targets — through the one validator, every built-in candidate,
and bootstrap."""

from __future__ import annotations

import pytest

from tests.tables import customer_rows, house_rows
from training.bootstrap import BootstrapConfig, BootstrapRefused, train_candidates
from training.data_prep import Split
from training.learners.candidates import CANDIDATES, build_candidates
from training.rows import RowError, RowProblem, RowValidator
from training.spec import FeatureKind, ModelSpec, Task
from training.spec_inference import infer_spec

CLASSIFIERS = ["logreg", "logreg-river", "hat", "arf", "mlp"]


def _churn():
    rows = customer_rows(600, seed=3)
    labels = [r.pop("churn") for r in rows]
    return rows, labels


@pytest.fixture(scope="module")
def churn_spec() -> ModelSpec:
    rows, labels = _churn()
    return infer_spec(rows, labels, target="churn")


def test_spec_inferred_from_a_table(churn_spec: ModelSpec) -> None:
    kinds = {f.name: (f.kind, f.optional) for f in churn_spec.features}
    assert kinds == {"tenure": (FeatureKind.NUMERIC, True), "spend": (FeatureKind.NUMERIC, False),
                     "plan": (FeatureKind.CATEGORICAL, False), "region": (FeatureKind.CATEGORICAL, True),
                     "autopay": (FeatureKind.BOOLEAN, False)}
    assert churn_spec.task is Task.CLASSIFICATION and churn_spec.classes == ("no", "yes")
    assert ModelSpec.from_dict(churn_spec.to_dict()) == churn_spec


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_candidate_learns_raw_rows_and_accepts_exactly_the_spec(name: str, churn_spec: ModelSpec) -> None:
    """The contract every built-in candidate keeps on a table: raw rows with categories,
    gaps and unseen values are learned and predicted; afterwards the learner accepts
    exactly the spec's features (so promotion never changes what clients send)."""
    rows, labels = _churn()
    validator = RowValidator(churn_spec)
    learner, = build_candidates(name, churn_spec)
    for x, y in zip(rows, labels, strict=True):
        learner.learn_one(validator.row(x), y)
    odd = validator.row({"spend": 70.0, "plan": "enterprise", "autopay": False})  # unseen category, gaps
    proba = learner.predict_proba_one(odd)
    assert set(proba) == {"no", "yes"} and abs(sum(proba.values()) - 1) < 1e-6
    assert learner.n_features_in == list(churn_spec.feature_names)
    restored = type(learner).from_bytes(learner.to_bytes())
    assert restored.predict_proba_one(odd) == pytest.approx(proba)
    assert learner.clone().predict_proba_one(odd) == {}


def test_validator_refuses_with_the_feature_and_what_is_accepted(churn_spec: ModelSpec) -> None:
    v = RowValidator(churn_spec)
    cases = [
        ({"tenure": "3", "spend": 1.0, "plan": "pro", "autopay": True}, RowProblem.WRONG_TYPE, "numeric"),
        ({"spend": 1.0, "plan": "pro", "autopay": True, "colour": "red"}, RowProblem.UNKNOWN_FEATURE, "colour"),
        ({"spend": 1.0, "plan": "x" * 300, "autopay": True}, RowProblem.OVERSIZED, "300 characters"),
        ({"spend": 1.0, "autopay": True}, RowProblem.MISSING_FEATURE, "'plan'"),
        ({"spend": float("nan"), "plan": "pro", "autopay": True}, RowProblem.NAN, "'spend'"),
        ({"spend": 1.0, "plan": "pro", "autopay": "yes"}, RowProblem.WRONG_TYPE, "boolean"),
    ]
    for row, problem, text in cases:
        with pytest.raises(RowError) as info:
            v.row(row)
        assert info.value.problem is problem and text in info.value.detail, (row, info.value.detail)
    with pytest.raises(RowError) as info:
        v.label(1.5)
    assert info.value.problem is RowProblem.WRONG_LABEL


def test_bootstrap_on_a_class_sorted_file_splits_at_random_and_beats_the_baseline() -> None:
    rows = customer_rows(1200, seed=5)
    events = [(dict(r), r["churn"]) for r in rows]
    for x, _ in events:
        del x["churn"]
    result = train_candidates(events, BootstrapConfig(split=Split.RANDOM, target="churn", augment_copies=0))
    assert "stratified" in result.split
    assert result.champion.validation["f1_macro"] > result.baseline["f1_macro"] + 0.2
    assert result.spec.feature("plan").kind is FeatureKind.CATEGORICAL


def test_bootstrap_in_time_order_on_a_sorted_file_warns_or_refuses() -> None:
    rows = customer_rows(1200, seed=5)
    events = [({k: v for k, v in r.items() if k != "churn"}, r["churn"]) for r in rows]
    try:
        result = train_candidates(events, BootstrapConfig(split=Split.TIME, augment_copies=0))
    except BootstrapRefused as e:
        assert "trivial baseline" in str(e)
    else:
        assert any("sorted by class" in n for n in result.notices), result.notices


def test_bootstrap_refuses_a_champion_no_better_than_the_trivial_model() -> None:
    import random

    rng = random.Random(0)
    events = [({"noise": rng.random()}, "a" if rng.random() < 0.9 else "b") for _ in range(400)]
    with pytest.raises(BootstrapRefused, match="trivial baseline"):
        train_candidates(events, BootstrapConfig(candidates=("logreg",), split=Split.RANDOM, augment_copies=0))
    forced = train_candidates(events, BootstrapConfig(candidates=("logreg",), split=Split.RANDOM,
                                                      augment_copies=0, force=True))
    assert any("--force" in n for n in forced.notices)


def test_numeric_target_is_inferred_as_regression() -> None:
    rows = house_rows(300)
    labels = [r.pop("price") for r in rows]
    spec = infer_spec(rows, labels, target="price")
    assert spec.task is Task.REGRESSION and spec.classes is None


def test_candidate_names_are_known() -> None:
    assert set(CLASSIFIERS) <= set(CANDIDATES)


def test_a_hand_written_spec_file_gets_its_stats_from_the_data(tmp_path) -> None:
    (tmp_path / "spec.yaml").write_text(
        "task: classification\ntarget: churn\nfeatures:\n"
        "  - {name: tenure, kind: numeric, optional: true}\n  - {name: spend}\n"
        "  - {name: plan, kind: categorical}\n  - {name: region, kind: categorical, optional: true}\n"
        "  - {name: autopay, kind: boolean}\n")
    spec = ModelSpec.load(tmp_path / "spec.yaml")
    rows = customer_rows(600, seed=9)
    events = [({k: v for k, v in r.items() if k != "churn"}, r["churn"]) for r in rows]
    result = train_candidates(events, BootstrapConfig(candidates=("logreg",), split=Split.RANDOM, augment_copies=0),
                              spec=spec)
    assert set(result.spec.feature("plan").categories) == {"basic", "plus", "pro", "team"}
    assert result.spec.classes == ("no", "yes")
    assert result.champion.validation["f1_macro"] > result.baseline["f1_macro"]
