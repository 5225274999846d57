"""benchmarks/gpu_serving.py is the one script a lent GPU machine runs (issues 3 and 10); it
runs on the CPU too, so it is exercised here before it meets a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_the_gpu_serving_check_runs_and_reports_every_batch_size(tmp_path, model):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_serving.py"), "--model", model,
                           "--seconds", "0.03", "--json", str(out)], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["model"] == model and [r["batch"] for r in report["rows"]] == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert all(r["plane"] > 0 and r["torch_e2e"] > 0 for r in report["rows"])
    if model == "cnn":
        assert "issue 10: data plane / raw torch forward at batch >= 64" in done.stdout
