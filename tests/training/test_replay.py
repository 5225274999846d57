"""Replay end to end: the JSON contract, the quality bar on a short drifting stream, the CLI.

The quality bar needs a long enough stream to adapt: marked ``slow`` (``make test-fast`` skips
it); the contract runs on a short stream.
"""

import json

import pytest

from tests.helpers import run_perennial
from training.bootstrap import BootstrapConfig
from training.replay import ReplayConfig, run_replay

REQUIRED = ["events", "events_per_second", "prequential", "windows", "drifts", "promotions",
            "rollbacks", "baselines", "learners"]


@pytest.fixture(scope="module")
def drifting():
    # 16k events, switches at 4k/8k/12k: short enough for the suite, long enough to adapt
    return run_replay(ReplayConfig(stream="agrawal-drift", events=16_000, bootstrap_events=1500))


def test_result_has_the_documented_fields_and_says_which_defaults_it_adapted():
    heard = []
    # two cheap candidates (the defaults' forest costs seconds here; the slow replays run it)
    result = run_replay(ReplayConfig(stream="agrawal-drift", events=3_000,
                                     bootstrap=BootstrapConfig(candidates=("logreg", "hat"))), notice=heard.append)
    for key in REQUIRED:
        assert key in result, key
    assert result["events"] == 2_500 and result["bootstrap_events"] == 500
    assert set(result["prequential"]) >= {"accuracy", "f1_macro"}
    assert all({"end", "accuracy"} <= set(w) for w in result["windows"])
    assert set(result["baselines"]) == {"static", "online_only"}
    assert {"logreg", "hat"} <= set(result["learners"])
    for p in result["promotions"]:
        assert {"at", "from_version", "to_version", "learner", "reason"} <= set(p)
    json.dumps(result)  # JSON-serialisable as is
    # a short stream: the defaults were adapted, and said so (not silently)
    assert result["window"] == 125
    assert heard == result["notices"]
    adapted = [n for n in heard if not n.startswith("bootstrap: ")]  # the bootstrap's own notices aside
    assert len(adapted) == 2
    assert "bootstrapping on the first 500 of 3,000 events" in adapted[0]
    assert "report window reduced from 1,000 to 125 events" in adapted[1]


@pytest.mark.slow
def test_system_adapts_better_than_the_baselines(drifting):
    acc = drifting["prequential"]["accuracy"]
    assert acc >= drifting["baselines"]["online_only"]["accuracy"]
    assert acc >= drifting["baselines"]["static"]["accuracy"] + 0.10
    best_single = max(m["accuracy"] for m in drifting["learners"].values() if m["standing"])
    assert acc >= best_single - 0.01
    assert drifting["drifts"], "no drift detected on the champion"
    assert any(p["at"] > drifting["drifts"][0] for p in drifting["promotions"]), "no promotion after a drift"


@pytest.mark.slow
def test_stationary_stream_does_not_flap():
    # function 6: the three candidates are within a few points of each other, the hard case
    result = run_replay(ReplayConfig(stream="agrawal-f6", events=8_000, bootstrap_events=1000))
    assert result["rollbacks"] == []
    assert len(result["promotions"]) <= 1


def test_cli_writes_json_and_plot(tmp_path):
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    proc = run_perennial("replay", "--stream", "phishing", "--json", str(out_json),
                         "--plot", str(out_png), "--no-progress", "--candidates", "logreg,hat", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Perennial (served champion)" in proc.stdout
    assert json.loads(out_json.read_text())["stream"] == "phishing"
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_rejects_unknown_stream_clearly():
    proc = run_perennial("replay", "--stream", "nope", timeout=60)
    assert proc.returncode == 2
    assert "unknown stream 'nope'" in proc.stderr


def test_bootstrap_cli_registers_a_champion_with_report(tmp_path):
    proc = run_perennial("bootstrap", "--stream", "phishing", "--model", "phish",
                         "--registry", str(tmp_path), "--events", "600", "--candidates", "logreg,hat", timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    from training.registry import Registry

    registry = Registry(tmp_path)
    assert registry.alias("phish", "champion") == 1
    info = registry.info("phish", 1)
    assert info.reference and "features" in info.reference
    report = json.loads((tmp_path / "phish" / "reports" / "v1" / "report.json").read_text())
    assert set(report["candidates"]) == {"logreg", "hat"}
    assert "confusion_matrix" in report["candidates"]["hat"]
    assert (tmp_path / "phish" / "reports" / "v1" / "loss_curves.png").exists()
