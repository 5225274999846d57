"""`perennial serve`: the BentoML service (HTTP) and its OIP gRPC endpoint, as one server.

Flags become ``PERENNIAL_*`` environment variables, then this process *becomes* the BentoML
server (``exec`` of ``bentoml serve service.bento:Perennial``): BentoML's worker is a separate
process that reads its settings from the environment it inherits, and exec keeps one process
id for a supervisor to signal (SIGTERM stops the workers gracefully).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

FLAG_TO_ENV = {
    "registry": "PERENNIAL_REGISTRY_DIR",
    "host": "PERENNIAL_HOST",
    "port": "PERENNIAL_PORT",
    "grpc_port": "PERENNIAL_GRPC_PORT",
    "bootstrap_servers": "PERENNIAL_BOOTSTRAP_SERVERS",
    "workers": "PERENNIAL_WORKERS",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve every model's champion over HTTP (/predict, OIP v2) and gRPC (OIP v2)",
        description="Run the BentoML service and the OIP v2 gRPC server beside it. Flags override "
        "PERENNIAL_* environment variables (see service/settings.py for all of them, e.g. "
        "PERENNIAL_ADMIN_TOKEN, PERENNIAL_MAX_BATCH_SIZE).",
    )
    p.add_argument("--registry", help="model registry directory (default ./.perennial/registry)")
    p.add_argument("--host", help="interface to bind (default 0.0.0.0)")
    p.add_argument("--port", type=int, help="HTTP port (default 3000)")
    p.add_argument("--grpc-port", type=int, help="OIP v2 gRPC port (default 8001; 0 disables)")
    p.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (default 127.0.0.1:9092; '' disables)")
    p.add_argument("--workers", type=int, help="BentoML worker processes (default 1)")
    p.set_defaults(func=run)


def server_argv(env: dict[str, str]) -> list[str]:
    """The ``bentoml serve`` command line for the settings in ``env`` (validated first).

    Also puts BentoML options that follow from the settings into ``env``.
    """
    from service.settings import ServiceSettings

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        settings = ServiceSettings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if not settings.access_log:
        options = f"{env.get('BENTOML_CONFIG_OPTIONS', os.environ.get('BENTOML_CONFIG_OPTIONS', ''))} "
        env["BENTOML_CONFIG_OPTIONS"] = (options + "api_server.logging.access.enabled=false").strip()
    check_secrets(settings)
    root = Path(__file__).resolve().parents[2]  # the folder that holds the `service` package
    return [
        sys.executable, "-m", "service.commands.serve", "serve", "service.bento:Perennial",
        "--working-dir", str(root), "--host", settings.host, "--port", str(settings.port),
        "--timeout-keep-alive", str(settings.http_keep_alive_s),
    ]


def absolute_path_list(value: str) -> str:
    """A ``PYTHONPATH``-style list with each entry made absolute from the current directory.

    >>> import os; absolute_path_list(os.pathsep.join(["/opt/pkgs", "examples/x"])) == os.pathsep.join(
    ...     ["/opt/pkgs", os.path.abspath("examples/x")])
    True
    """
    return os.pathsep.join(os.path.abspath(p) if p else p for p in value.split(os.pathsep))


def check_secrets(settings) -> None:  # noqa: ANN001
    """Refuse a placeholder or development secret unless the service listens on loopback only."""
    from streaming.secrets import refuse_insecure_secrets

    refuse_insecure_secrets(
        {"PERENNIAL_REGISTRY_KEY": settings.registry_key, "PERENNIAL_ADMIN_TOKEN": settings.admin_token,
         "PERENNIAL_FEEDBACK_TOKEN": settings.feedback_token},
        [settings.host], settings.allow_insecure_secrets,
    )


def bentoml_main(argv: list[str]) -> None:
    """``bentoml`` CLI with a Prometheus multiprocess directory of this process's own.

    BentoML's default is one directory per BENTOML_HOME, wiped at every start: two
    ``perennial serve`` on one host would wipe (and mix) each other's metrics. The directory
    is removed again when the server exits.
    """
    import atexit
    import shutil
    import tempfile

    from bentoml._internal.configuration.containers import BentoMLContainer

    directory = tempfile.mkdtemp(prefix=f"perennial-prometheus-{os.getpid()}-")
    BentoMLContainer.prometheus_multiproc_dir.set(directory)
    atexit.register(shutil.rmtree, directory, True)
    from bentoml_cli.cli import cli

    cli(argv, prog_name="bentoml")


def run(args: argparse.Namespace) -> int:
    env = {FLAG_TO_ENV[k]: str(v) for k, v in vars(args).items() if k in FLAG_TO_ENV and v is not None}
    registry = env.get("PERENNIAL_REGISTRY_DIR") or os.environ.get("PERENNIAL_REGISTRY_DIR") or ".perennial/registry"
    # BentoML starts its workers in the working dir; a relative registry must stay relative to *here*.
    env["PERENNIAL_REGISTRY_DIR"] = str(Path(registry).resolve())
    spool = os.environ.get("PERENNIAL_SPOOL_DIR") or ".perennial/spool"
    env["PERENNIAL_SPOOL_DIR"] = str(Path(spool).resolve())  # likewise for the spool
    if os.environ.get("PYTHONPATH"):  # and a user's package on a relative PYTHONPATH (examples/...)
        env["PYTHONPATH"] = absolute_path_list(os.environ["PYTHONPATH"])
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    argv = server_argv(env)  # a bad setting raises pydantic's ValidationError: one line in `perennial`
    os.environ.update(env)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return 0  # not reached


if __name__ == "__main__":
    bentoml_main(sys.argv[1:])
