"""Start `perennial serve` as a real process for the issue-12 tests (own registry, own spool).

Not a fixture module: tests build a `ServeProcess` with the settings they need (a broker port
that may not be answering yet, a short delivery timeout, a feedback token) and restart it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.demo.processes import stop_process_group
from streaming.broker import free_port

KEY = "issue12-test-key"


def bootstrap(root: Path, model: str, versions: int = 2) -> list[str]:
    """Publish ``versions`` logistic regressions of model ``model``; promote the first. Feature names."""
    from training.learners.candidates import logistic_regression
    from training.reference import reference_histograms
    from training.registry import Registry
    from training.streams import iter_stream

    data = list(iter_stream("agrawal", 600, 11))
    registry = Registry(root, key=KEY)
    learner = logistic_regression()
    for v in range(versions):
        for x, y in data[v * 50 : (v + 1) * 50 + 300]:
            learner.learn_one(x, y)
        registry.publish(model, learner, reference=reference_histograms([x for x, _ in data]), note=f"v{v + 1}")
    registry.promote(model, 1, "test bootstrap")
    return list(learner.n_features_in)


class ServeProcess:
    def __init__(self, work: Path, bootstrap_servers: str, **env: str) -> None:
        self.work, self.bootstrap_servers, self.env = work, bootstrap_servers, env
        self.port, self.grpc_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> ServeProcess:
        env = {**os.environ, "PERENNIAL_REGISTRY_KEY": KEY, "PERENNIAL_SPOOL_DIR": str(self.work / "spool"),
               "PERENNIAL_WATCH_INTERVAL_S": "0.5", **self.env}
        self.starts += 1
        self.log_path = self.work / f"serve-{self.starts}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--registry", str(self.work / "registry"),
             "--host", "127.0.0.1", "--port", str(self.port), "--grpc-port", str(self.grpc_port),
             "--bootstrap-servers", self.bootstrap_servers],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while True:  # ready, or dead with the reason in its log
                assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
                try:
                    if client.get("/readyz").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.3)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown hook runs (the spool must not need one).
        BentoML's workers run in sessions of their own; each must go with its arbiter rather
        than serve on orphaned (checked here, for every test that kills a server)."""
        import psutil

        if self.proc is not None and self.proc.poll() is None:
            workers = psutil.Process(self.proc.pid).children(recursive=True)
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            _, alive = psutil.wait_procs(workers, timeout=20)
            assert not alive, f"server workers outlived a kill -9 of the server: {[p.pid for p in alive]}"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc, 30)
