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
    root = Path(__file__).resolve().parents[2]  # the folder that holds the `service` package
    return [
        sys.executable, "-m", "bentoml", "serve", "service.bento:Perennial",
        "--working-dir", str(root), "--host", settings.host, "--port", str(settings.port),
    ]


def run(args: argparse.Namespace) -> int:
    env = {FLAG_TO_ENV[k]: str(v) for k, v in vars(args).items() if k in FLAG_TO_ENV and v is not None}
    registry = env.get("PERENNIAL_REGISTRY_DIR") or os.environ.get("PERENNIAL_REGISTRY_DIR") or ".perennial/registry"
    # BentoML starts its workers in the working dir; a relative registry must stay relative to *here*.
    env["PERENNIAL_REGISTRY_DIR"] = str(Path(registry).resolve())
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    argv = server_argv(env)  # a bad setting raises pydantic's ValidationError: one line in `perennial`
    os.environ.update(env)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return 0  # not reached
