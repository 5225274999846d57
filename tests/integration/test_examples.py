"""The examples of `examples/`, each run through the real commands at small sizes, as their
READMEs tell a user to run them: the package on PYTHONPATH, allowed by
PERENNIAL_ALLOWED_MODULES, and nothing of it imported by the test process.

- `cnn_digits`: pre-train the CNN (tiny), `perennial check` it (flat pixels, and an image
  tensor spec), write the digits as images (JSON Lines), bootstrap it from them with the
  example's candidates file (the spec: one tensor [1, 8, 8]), let `perennial train` fine-tune
  it from the images `perennial produce` sends through the real broker until it republishes
  the champion, and have `perennial serve` answer batched `/predict` calls of images and an
  OIP gRPC FP32 [n, 1, 8, 8] tensor with that fine-tuned version.
- `river_pipeline`: write the table, `perennial check` the pipeline, bootstrap it from the
  CSV, and serve raw rows with a category the table never had and a gap.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, run_perennial, wait_for
from tests.integration.serve_process import serve_in

pytestmark = pytest.mark.integration

EXAMPLES = ROOT / "examples"


def example_env(example: str, package: str, tmp_path: Path) -> dict[str, str]:
    """What the example's README exports, plus this test's own spool."""
    return {
        "PYTHONPATH": os.pathsep.join([str(EXAMPLES / example), os.environ.get("PYTHONPATH", "")]),
        "PERENNIAL_ALLOWED_MODULES": package,
        "OMP_NUM_THREADS": "1",  # a small net on a shared 2-core machine: one thread is fastest
        "PERENNIAL_SPOOL_DIR": str(tmp_path / "spool"),
    }


def run_python(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """An example's own script, as a user runs it from the repository root."""
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, **env})


def assert_ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_cnn_digits_pretrained_then_fine_tuned_from_kafka_and_served_batched(
        broker: str, tmp_path: Path, model_name: str, processes, checkpoints) -> None:
    from streaming.settings import TrainerSettings
    from training.lineage import Origin
    from training.registry import Registry
    from training.streams.digits import digits_phase_dataset

    env = example_env("cnn_digits", "digits_cnn", tmp_path)
    weights = tmp_path / "cnn.pt"
    out = assert_ok(run_python(["-m", "digits_cnn.pretrain", str(weights), "--examples", "600", "--epochs", "2"], env))
    assert weights.is_file() and "training accuracy" in out

    for spec in ([], ["--spec", str(EXAMPLES / "cnn_digits" / "image_spec.yaml")]):  # [n, 64], then [n, 1, 8, 8]
        out = assert_ok(run_perennial("check", "digits_cnn.model:cnn", "--events", "120", *spec, env=env))
        assert "all 6 properties hold" in out and "FAIL" not in out

    # the example's candidates file, its weights pointing at this test's pre-trained file
    entries = yaml.safe_load((EXAMPLES / "cnn_digits" / "candidates.yaml").read_text())
    entries["cnn"]["params"]["weights"] = str(weights)
    candidates = tmp_path / "candidates.yaml"
    candidates.write_text(yaml.safe_dump(entries))

    # the images as JSON Lines, [1][8][8] each: a bootstrap slice and the stream that follows
    registry_dir = tmp_path / "registry"
    boot, n_events = 300, 400
    boot_file, stream_file = tmp_path / "boot.jsonl", tmp_path / "stream.jsonl"
    total = ["--events", str(boot + n_events)]
    assert_ok(run_python(["-m", "digits_cnn.make_images", str(boot_file), *total, "--to", str(boot)], env))
    assert_ok(run_python(["-m", "digits_cnn.make_images", str(stream_file), *total, "--skip", str(boot)], env))
    out = assert_ok(run_perennial("bootstrap", "--stream", str(boot_file), "--target", "digit", "--model", model_name,
                                  "--registry", str(registry_dir), "--candidates-file", str(candidates), env=env))
    assert f"registered {model_name} v1 (cnn)" in out, out
    assert any(line.split()[:3] == ["image", "tensor", "shape"] for line in out.splitlines()), out
    registry = Registry(registry_dir)
    champion = registry.info(model_name, registry.alias(model_name, "champion"))
    assert champion.factory == "digits_cnn.model:cnn" and champion.factory_params["weights"] == str(weights)

    # labelled traffic on the broker, then the real trainer fine-tunes the champion from it
    assert_ok(run_perennial("produce", "--stream", str(stream_file), "--target", "digit", "--model", model_name,
                            "--label-delay", "0", "--bootstrap-servers", broker, env=env))
    settings = TrainerSettings(model=model_name, bootstrap_servers=broker, registry_dir=registry_dir,
                               checkpoint_dir=tmp_path / "checkpoints", metrics_port=0)
    processes.perennial("train", "train", "--model", model_name, "--bootstrap-servers", broker,
                        "--registry", str(registry_dir), "--checkpoint-dir", str(settings.checkpoint_dir),
                        "--metrics-port", "0", "--candidates-file", str(candidates),
                        env={**env, "PERENNIAL_CHECKPOINT_EVERY_EVENTS": "200", "PERENNIAL_CHECKPOINT_INTERVAL_S": "1",
                             "PERENNIAL_REFRESH_EVERY": "200"})
    wait_for(lambda: checkpoints.learned(settings) >= n_events, f"{n_events} labels learned",
             guard_s=300, alive=processes.check_alive)
    refreshed = [v for v in registry.versions(model_name) if v.origin is Origin.REFRESH]
    assert refreshed and refreshed[-1].factory == "digits_cnn.model:cnn", registry.versions(model_name)
    fine_tuned = registry.alias(model_name, "champion")
    assert fine_tuned == refreshed[-1].version  # the learning champion republished, still the user's CNN

    served = serve_in(processes, registry_dir, broker, env)
    client = served.http
    xs, ys = digits_phase_dataset(phase=1, n=96)
    images = [[[[x[f"px{r * 8 + c}"] for c in range(8)] for r in range(8)]] for x in xs]  # [1][8][8]

    def predict(instances: list) -> dict:
        r = client.post("/predict", json={"model": model_name, "instances": instances})
        assert r.status_code == 200, r.text
        return r.json()

    # concurrent requests of 32 instances, the batcher's case: an instance is the image as
    # nested lists (the README's form), its 64 values flat, or {"features": {"image": ...}}
    requests = [images[:32], [[v for row in img[0] for v in row] for img in images[32:64]],
                [{"features": {"image": img}} for img in images[64:]]]
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(predict, requests))
    labels = [p["label"] for a in answers for p in a["predictions"]]
    assert [a["version"] for a in answers] == [fine_tuned] * 3 and len(labels) == len(ys)
    assert set(labels) <= set(range(10))
    # far above chance (0.1) on digits the stream never showed: the pre-trained weights serve
    assert sum(p == y for p, y in zip(labels, ys, strict=True)) / len(ys) > 0.5

    # the Open Inference Protocol over gRPC: one FP32 input [n, 1, 8, 8], as the metadata says
    import numpy as np
    import tritonclient.grpc as tgrpc

    grpc = tgrpc.InferenceServerClient(served.grpc)
    meta = grpc.get_model_metadata(model_name)
    assert [(i.name, i.datatype, list(i.shape)) for i in meta.inputs] == [("image", "FP32", [-1, 1, 8, 8])]
    batch = tgrpc.InferInput("image", [len(images), 1, 8, 8], "FP32")
    batch.set_data_from_numpy(np.asarray(images, dtype=np.float32))
    assert [int(v) for v in grpc.infer(model_name, [batch]).as_numpy("label")] == labels


def test_river_pipeline_table_checked_bootstrapped_and_served_raw(tmp_path: Path, model_name: str,
                                                                  processes) -> None:
    from training.registry import Registry

    env = example_env("river_pipeline", "acme_tables", tmp_path)
    csv_path = tmp_path / "loans.csv"
    assert "wrote" in assert_ok(run_python([str(EXAMPLES / "river_pipeline" / "make_table.py"), str(csv_path),
                                            "--rows", "1500"], env))
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",")[-1] == "outcome" and any(",," in line for line in lines)  # gaps, as shipped

    out = assert_ok(run_perennial("check", "acme_tables.models:loan_pipeline", "--params",
                                  '{"encoding": "native"}', env=env))
    assert "all 6 properties hold" in out and "FAIL" not in out

    registry_dir = tmp_path / "registry"
    out = assert_ok(run_perennial("bootstrap", "--stream", str(csv_path), "--target", "outcome", "--model",
                                  model_name, "--registry", str(registry_dir), "--candidates-file",
                                  str(EXAMPLES / "river_pipeline" / "candidates.yaml"), "--candidates", "loans",
                                  env=env))
    assert f"registered {model_name} v1 (loans)" in out and "stratified by class" in out, out
    info = Registry(registry_dir).info(model_name, 1)
    assert info.factory == "acme_tables.models:loan_pipeline" and info.factory_params["encoding"] == "native"

    client = serve_in(processes, registry_dir, "", env).http  # '': no prediction log, no broker needed
    raw = [
        {"amount": 12000, "term": "36m", "income": None, "purpose": "crypto", "home": "rent",  # unseen, gap
         "employed": False, "prior_defaults": 1},
        {"amount": 3000, "term": "60m", "home": "own", "employed": True, "prior_defaults": 0},  # both absent
        {"amount": 25000, "term": "36m", "income": 52000.5, "purpose": "car", "home": "mortgage",
         "employed": True, "prior_defaults": 0},
    ]
    r = client.post("/predict", json={"model": model_name, "instances": [{"features": x} for x in raw]})
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert len(predictions) == len(raw)
    for p in predictions:
        assert p["label"] in ("default", "late", "repaid")
        assert abs(sum(p["probabilities"].values()) - 1.0) < 1e-6
