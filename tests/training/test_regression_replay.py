"""Replay of a regression stream, at reduced size: the JSON contract in the task's metrics and
the quality bar (drifting: at most online-only's error, well below static's, promotions after
the drifts; stationary: no rollback, at most one promotion)."""

import json
import subprocess
import sys

import pytest

from training.replay import ReplayConfig, run_replay


@pytest.fixture(scope="module")
def drifting():
    # 12k events, global switches at 4k and 8k; the task's default candidates (linear, hat, arf)
    return run_replay(ReplayConfig(stream="friedman-drift", events=12_000, bootstrap_events=1000))


@pytest.mark.slow  # a replay of tens of thousands of events: `make test` runs it
def test_regression_replay_json_is_in_the_tasks_metrics(drifting):
    assert drifting["task"] == "regression"
    assert set(drifting["prequential"]) == {"mae", "rmse", "r2"}
    for name in ("static", "online_only"):
        assert set(drifting["baselines"][name]) == {"mae", "rmse", "r2"}
    assert {"linear", "hat", "arf"} <= set(drifting["learners"])
    assert all({"end", "mae", "static_mae", "online_only_mae", "learners"} <= set(w) for w in drifting["windows"])
    assert drifting["true_drifts"] == [4000, 8000]
    assert drifting["bootstrap"]["selected_by"] == "validation MAE"
    json.dumps(drifting)


@pytest.mark.slow  # a replay of tens of thousands of events: `make test` runs it
def test_regression_system_adapts_better_than_the_baselines(drifting):
    mae = drifting["prequential"]["mae"]
    assert mae <= drifting["baselines"]["online_only"]["mae"]
    assert mae <= 0.8 * drifting["baselines"]["static"]["mae"]
    assert drifting["drifts"], "no drift detected on the champion"
    assert any(d > 4000 for d in drifting["drifts"])
    assert any(p["at"] > drifting["drifts"][0] for p in drifting["promotions"]), "no promotion after a drift"
    for p in drifting["promotions"]:
        assert "MAE" in p["reason"] and "Wilcoxon" in p["reason"]


@pytest.mark.slow  # a replay of tens of thousands of events: `make test` runs it
def test_stationary_regression_stream_does_not_flap():
    result = run_replay(ReplayConfig(stream="friedman", events=10_000, bootstrap_events=1000))
    assert result["rollbacks"] == []
    assert len(result["promotions"]) <= 1


@pytest.mark.slow  # a replay through the CLI in a subprocess: `make test` runs it
def test_cli_replays_a_regression_stream_with_its_default_candidates(tmp_path):
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    proc = subprocess.run(
        [sys.executable, "-m", "service.cli", "replay", "friedman", "--events", "3000", "--bootstrap-events", "600",
         "--json", str(out_json), "--plot", str(out_png), "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "candidates linear,hat,arf" in proc.stdout and "MAE" in proc.stdout
    result = json.loads(out_json.read_text())
    assert result["task"] == "regression" and "mae" in result["baselines"]["online_only"]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
