"""examples/text through the real commands, as its README runs it: a user's text pipelines
(outside the project's package, allowed by PERENNIAL_ALLOWED_MODULES) pass `perennial check`
on the example's spec; bootstrap infers the review column as text from JSON Lines and
refuses a built-in learner by the feature's name; `perennial serve` answers review strings
on /predict and as OIP BYTES over gRPC, shaped as its metadata says; `perennial produce`
sends the reviews that follow — with words bootstrap never saw — and `perennial train` learns
them, so the served model reads the new words."""

from __future__ import annotations

import os
import sys

import httpx
import pytest

from tests.helpers import ROOT, run_perennial
from tests.integration.serve_process import KEY, ServeProcess

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "text"
MODELS = "reviews_text.models:tfidf,reviews_text.models:bayes"
BOOT, STREAM = 800, 2200  # the vocabulary shifts at review 1,500: 700 reviews into the stream


@pytest.fixture
def user_env(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(EXAMPLE), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("PERENNIAL_ALLOWED_MODULES", "reviews_text")
    monkeypatch.setenv("PERENNIAL_REGISTRY_KEY", KEY)
    monkeypatch.setenv("PERENNIAL_REFRESH_EVERY", "300")  # the served champion follows the stream


def make_reviews(path, *args: str) -> None:
    import subprocess

    subprocess.run([sys.executable, str(EXAMPLE / "make_reviews.py"), "--out", str(path), *args],
                   check=True, capture_output=True)


def predict(client: httpx.Client, reviews: list[str]) -> dict:
    r = client.post("/predict", json={"model": "reviews", "instances": [
        {"features": {"review": text, "product": "kettle"}} for text in reviews]})
    assert r.status_code == 200, r.text
    return r.json()


NEW_WORDS = {"honestly, the kettle looks nice, it is fire, and goated": "pos",
             "so, setup was quick, it is mid, and straight garbage": "neg",
             "okay, price was fair, it is a banger": "pos",
             "tl;dr, the box was fine, it is trash, and a flop": "neg"}


def test_the_text_example_checks_bootstraps_serves_and_learns_new_words(
        user_env, tmp_path, broker, trainer_cli, checkpoints, kio, processes):
    import tritonclient.grpc as tgrpc

    from streaming.settings import TrainerSettings

    boot, stream = tmp_path / "boot.jsonl", tmp_path / "stream.jsonl"
    make_reviews(boot, "--n", str(BOOT))
    make_reviews(stream, "--skip", str(BOOT), "--n", str(STREAM))
    registry = tmp_path / "registry"

    checked = run_perennial("check", "reviews_text.models:tfidf", "--spec", str(EXAMPLE / "spec.yaml"))
    assert checked.returncode == 0 and "all 6 properties hold" in checked.stdout, checked.stdout + checked.stderr

    refused = run_perennial("bootstrap", "--stream", str(boot), "--target", "sentiment", "--model", "reviews",
                            "--registry", str(registry), "--candidates", "logreg")
    assert refused.returncode == 2 and "text feature(s) ['review']" in refused.stderr, refused.stderr

    done = run_perennial("bootstrap", "--stream", str(boot), "--target", "sentiment", "--model", "reviews",
                         "--registry", str(registry), "--candidates", MODELS)
    assert done.returncode == 0, done.stdout + done.stderr
    spec_lines = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()
                  if line.startswith("  ") and len(line.split()) > 1 and line.split()[0] in ("review", "product")}
    assert spec_lines == {"review": "text", "product": "categorical"}, done.stdout

    server = ServeProcess(tmp_path, broker).start()
    try:
        with httpx.Client(base_url=server.base, timeout=30) as client:
            before = predict(client, list(NEW_WORDS))
            assert before["version"] == 1
            # OIP over gRPC: the inputs exactly as the model's metadata declares them
            grpc = tgrpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
            meta = grpc.get_model_metadata("reviews")
            assert [(i.name, i.datatype, list(i.shape)) for i in meta.inputs] == [
                ("review", "BYTES", [-1, 1]), ("product", "BYTES", [-1, 1])]
            import numpy as np

            inputs = []
            for spec_input, values in zip(meta.inputs, (list(NEW_WORDS), ["kettle"] * len(NEW_WORDS)), strict=True):
                tensor = tgrpc.InferInput(spec_input.name, [len(values), 1], "BYTES")
                tensor.set_data_from_numpy(np.asarray(values, dtype=object).reshape(-1, 1))
                inputs.append(tensor)
            labels = grpc.infer("reviews", inputs).as_numpy("label")
            assert [v.decode() for v in labels] == [p["label"] for p in before["predictions"]]

            settings = TrainerSettings(model="reviews", bootstrap_servers=broker, registry_dir=registry,
                                       checkpoint_dir=tmp_path / "checkpoints", metrics_port=0, candidates=MODELS,
                                       checkpoint_every_events=500, checkpoint_interval_s=1.0)
            trainer_cli(settings)
            produced = run_perennial("produce", "--stream", str(stream), "--target", "sentiment", "--model",
                                     "reviews", "--label-delay", "0", "--bootstrap-servers", broker)
            assert produced.returncode == 0, produced.stdout + produced.stderr
            kio.wait_for(lambda: checkpoints.learned(settings) >= STREAM, f"{STREAM} reviews learned",
                         alive=processes.check_alive)

            def reads_new_words():
                out = predict(client, list(NEW_WORDS))
                right = [p["label"] for p in out["predictions"]] == list(NEW_WORDS.values())
                return out if right and out["version"] > 1 else None

            kio.wait_for(reads_new_words, "the served model reading the new words", guard_s=120, every_s=1.0)
    finally:
        server.stop()
