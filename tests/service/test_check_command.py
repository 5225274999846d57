"""`perennial check`, in process through `service.cli.main`: one line per property, exit 1
when any fails (one FAIL line per broken property), exit 2 with one line for a factory that
cannot be used."""

from __future__ import annotations

import pytest

from service.cli import main


def check(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["check", *argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_a_good_learner_passes_every_property(capsys):
    code, out, _ = check(capsys, "tests.training.toy_learners:counting", "--events", "100")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("perennial check tests.training.toy_learners:counting (classification, ")
    assert sum(line.startswith("  PASS  ") for line in lines) == 6
    assert any(line.startswith("  INFO  throughput: learn ") and "events/s" in line for line in lines)
    assert lines[-1] == "all 6 properties hold"


@pytest.mark.parametrize(("factory", "broken"), [
    ("peeking", "predicting does not change the model"),
    ("sticky_clone", "a clone is untrained"),
    ("forgetful_snapshot", "a snapshot round-trip predicts identically"),
])
def test_a_broken_learner_fails_with_one_message_for_its_broken_property(capsys, factory, broken):
    code, out, _ = check(capsys, f"tests.training.toy_learners:{factory}", "--events", "100")
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("  FAIL  ")]
    assert len(failed) == 1 and failed[0].startswith(f"  FAIL  {broken}: ")
    assert out.splitlines()[-1] == "1 of 6 properties failed"


@pytest.mark.parametrize(("argv", "says"), [
    (["nosuch_pkg_i10.models:net"], "cannot import module 'nosuch_pkg_i10.models'"),
    (["tests.training.toy_learners:nope"], "has no 'nope'"),
    (["svm"], "unknown candidate 'svm'"),
    (["training.learners.torch_module_examples:small_net", "--params", "[1]"], "--params must be a JSON object"),
])
def test_a_factory_that_cannot_be_used_is_one_line_with_exit_2(capsys, argv, says):
    code, out, err = check(capsys, *argv)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_built_in_name_is_checked_too(capsys):
    code, out, _ = check(capsys, "logreg", "--events", "100")
    assert code == 0 and "LinearLearner 'logreg'" in out


def test_the_checked_module_is_allowed_for_the_check_only(capsys, monkeypatch):
    import os

    monkeypatch.delenv("PERENNIAL_ALLOWED_MODULES", raising=False)
    check(capsys, "tests.training.toy_learners:counting", "--events", "50")
    assert "PERENNIAL_ALLOWED_MODULES" not in os.environ
