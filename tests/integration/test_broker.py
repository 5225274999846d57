"""`perennial broker` starts the embedded broker, says it is memory-only, stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess

import pytest

from streaming.broker import free_port, wait_until_ready
from tests.helpers import ROOT, perennial_argv, run_perennial

pytestmark = pytest.mark.integration


def test_broker_cli_prints_address_and_stops_cleanly() -> None:
    port = free_port()
    # its stdout piped, not logged: the test reads what the command prints
    proc = subprocess.Popen(perennial_argv("broker", "--port", str(port), "--model", "x"),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = proc.stdout.readline()
        assert first.strip() == f"bootstrap servers: 127.0.0.1:{port}"
        assert "memory only" in proc.stdout.readline()
        wait_until_ready(f"127.0.0.1:{port}", timeout_s=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "broker stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_produce_cli_sends_predictions_then_labels(broker, model_name, kio) -> None:  # noqa: ANN001
    from streaming.topics import feedback_topic, predictions_topic

    out = run_perennial("produce", "--stream", "agrawal", "--model", model_name, "--events", "50",
                        "--label-delay", "0.2", "--bootstrap-servers", broker)
    assert out.returncode == 0, out.stderr
    assert "produced 50 prediction records and 50 labels" in out.stdout
    predictions = kio.read_topic(broker, predictions_topic(model_name), 50)
    labels = kio.read_topic(broker, feedback_topic(model_name), 50)
    assert len(predictions) == len(labels) == 50
    assert all(r.key == model_name.encode() for r in predictions + labels)
