"""Start `perennial serve` as a real process.

`serve_in` starts it in a test's `ProcessGroup` (stopped with the group) and waits until it is
ready; `ServeProcess` is for the tests that stop, kill and restart one server (own registry,
own spool, a broker port that may not be answering yet, a short delivery timeout).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import httpx

from service.demo.processes import stop_process_group
from streaming.broker import free_port

KEY = "issue12-test-key"


class Served(NamedTuple):
    http: httpx.Client  # a client of its HTTP port
    grpc: str  # host:port of its OIP gRPC server


def serve_in(processes, registry_dir: Path, bootstrap_servers: str, env: dict[str, str]) -> Served:  # noqa: ANN001
    """`perennial serve` in the test's process group (``processes``), on free ports; returns
    its addresses once it answers ready (or fails with the log of a process that died)."""
    from tests.helpers import wait_for

    port, grpc_port = free_port(), free_port()
    processes.perennial("serve", "serve", "--registry", str(registry_dir), "--host", "127.0.0.1",
                        "--port", str(port), "--grpc-port", str(grpc_port), "--bootstrap-servers", bootstrap_servers,
                        env={**env, "PERENNIAL_WATCH_INTERVAL_S": "0.5"})
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

    def ready() -> bool:
        try:
            return client.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, "perennial serve ready", guard_s=180, alive=processes.check_alive)
    return Served(client, f"127.0.0.1:{grpc_port}")


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
