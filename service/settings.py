"""Settings of the serving process (`perennial serve`): one object, read once, passed down.

Precedence is flags, then ``PERENNIAL_*`` environment variables, then these defaults (which
work on a laptop). `perennial serve` turns its flags into environment variables before it
starts BentoML, because the BentoML worker is a separate process that builds its own
`ServiceSettings()` from the environment it inherits.

>>> ServiceSettings(admin_token="t").port
3000
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Everything the service process can be told; every field is an env var ``PERENNIAL_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PERENNIAL_", extra="ignore")

    registry_dir: Path = Field(
        Path(".perennial/registry"),
        description="Model registry root (a local path or a shared volume); every model in it is served.",
    )
    registry_key: SecretStr | None = Field(
        None,
        description="HMAC key that signed pickled artifacts; unsigned or mis-signed versions are refused.",
    )
    host: str = Field("0.0.0.0", description="Interface the HTTP and gRPC servers bind to.")
    port: int = Field(3000, ge=1, le=65535, description="HTTP port (BentoML: /predict, OIP v2, /metrics).")
    grpc_port: int = Field(
        8001, ge=0, le=65535, description="gRPC port of the OIP v2 GRPCInferenceService; 0 disables it."
    )
    bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        description="Kafka bootstrap servers (comma-separated) for the prediction log and feedback; "
        "an empty string disables both (feedback then answers 503).",
    )
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token for POST /admin/promote and /admin/rollback; unset disables them (403).",
    )
    max_batch_size: int = Field(
        256, ge=1, description="Most instances in one model forward (adaptive batching cap)."
    )
    max_latency_ms: int = Field(
        60_000,
        ge=1,
        description="Adaptive batching latency budget. Deliberately large: under overload requests "
        "queue rather than being shed with 503.",
    )
    batch_idle_wait: bool = Field(
        False,
        description="Let BentoML's batcher hold a request on an idle model, waiting for more to "
        "batch with (its default; adds up to ~20 ms per request at light load). Off: an idle "
        "model runs at once and requests arriving meanwhile form the next batch.",
    )
    max_instances: int = Field(
        1024, ge=1, description="Most instances accepted in one request (larger gets 413)."
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest accepted HTTP request body in bytes (larger gets 413)."
    )
    watch_interval_s: float = Field(
        1.0, gt=0, description="How often the registry's champion alias is polled for hot swap."
    )
    prediction_log_buffer: int = Field(
        10_000,
        ge=1,
        description="Prediction records held for the Kafka producer; when full, new ones are dropped and counted.",
    )
    prediction_log: bool = Field(True, description="Log every prediction to <model>.predictions.")
    drift_window: int = Field(
        2_000, ge=10, description="Served instances per model in the sliding window the PSI gauges are computed on."
    )
    drift_every: int = Field(
        200, ge=1, description="Recompute the PSI gauges every this many served instances per model."
    )
    device: str = Field(
        "auto", description="Device for PyTorch learners: auto (CUDA when present), cpu or cuda."
    )
    grpc_workers: int = Field(64, ge=1, description="Threads of the gRPC server.")
    access_log: bool = Field(
        False,
        description="BentoML's per-request access log line. Off by default: on 2 cores it costs "
        "about a third of HTTP throughput; request counts and latencies are in /metrics anyway.",
    )
    workers: int = Field(
        1, ge=1, description="BentoML worker processes; each loads every champion and its own gRPC server."
    )

    def token(self) -> str | None:
        """The admin token in clear, or None when admin endpoints are disabled."""
        return self.admin_token.get_secret_value() if self.admin_token else None
