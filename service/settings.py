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
    batching: str = Field(
        "auto", pattern="^(auto|always|never)$",
        description="Adaptive batching of model forwards: 'auto' (PyTorch learners only, where one "
        "tensor forward for many requests pays; other learners predict each request at once — a CPU "
        "model gains nothing from waiting for company), 'always' or 'never'.",
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
    drift_min_interval_s: float = Field(
        1.0, ge=0, description="...but at most once per this many seconds (gauges scraped every few seconds "
        "need no more; at 30,000 instances/s every 200 was 150 refreshes a second). A refresh held back is "
        "published within a second by the model watcher; 0: every drift_every instances.",
    )
    device: str = Field(
        "auto", description="Device for PyTorch learners: auto (CUDA when present), cpu or cuda."
    )
    access_log: bool = Field(
        False,
        description="BentoML's per-request access log line. Off by default: on 2 cores it costs "
        "about a third of HTTP throughput; request counts and latencies are in /metrics anyway.",
    )
    tracing: bool = Field(
        False,
        description="BentoML's OpenTelemetry request tracing (configure its exporter with BentoML's "
        "'tracing' options). Off: BentoML's tracing middleware passes every request through untouched.",
    )
    workers: int = Field(
        1, ge=1, description="BentoML worker processes; each loads every champion and its own gRPC server."
    )
    gc_threshold: int = Field(
        10_000, ge=0, description="The worker's cyclic garbage collector runs after this many container "
        "allocations not yet freed (Python's default: 700; 0 keeps it). A request allocates hundreds of "
        "short-lived dicts and lists that reference counting frees; at 700 the collector still ran ~100 "
        "times a second under load and its full passes over the worker's ~100k long-lived objects took "
        "about a tenth of the CPU (measured at 1 and 64 instances per request).",
    )

    spool_dir: Path = Field(
        Path(".perennial/spool"),
        description="Local durable spool: feedback (fsynced before the 2xx) and prediction records Kafka has "
        "not acknowledged yet; drained in order when it answers. Each process claims its own slot-N inside. "
        "In production a persistent volume, or a restart of the pod loses what it holds.",
    )
    feedback_spool_records: int = Field(
        100_000, ge=1, description="Most feedback records held in the spool; when full, /feedback answers 503 "
        "with Retry-After (the client keeps its labels)."
    )
    feedback_spool_bytes: int = Field(
        256 * 1024 * 1024, ge=1024, description="Most bytes of feedback held in the spool (503 beyond)."
    )
    prediction_spool_records: int = Field(
        100_000, ge=1, description="Most prediction records kept in the spool during a Kafka outage; beyond, "
        "they are dropped and counted (perennial_prediction_log_dropped_total)."
    )
    kafka_delivery_timeout_s: float = Field(
        120.0, gt=0, description="How long the Kafka producer tries one send before giving up; the spool then "
        "tries again, so nothing accepted is lost when an outage is longer."
    )
    kafka_acks: str = Field(
        "all", pattern="^(all|-1|0|1)$", description="Producer acks: 'all' (the default, every in-sync "
        "replica has the record before it leaves the spool), '1' or '0'."
    )
    kafka_compression: str = Field(
        "none", pattern="^(none|gzip|snappy|lz4|zstd)$", description="Producer compression of the feedback and "
        "prediction records. 'none' costs the serving process least; 'zstd' shrinks prediction records "
        "(repeated feature names) several times, for less network and broker work at some CPU here.",
    )
    max_record_bytes: int = Field(
        1_000_000, ge=1024, le=1_048_000, description="Largest feedback record accepted, encoded as JSON "
        "(larger gets 413); stays below Kafka's default 1 MiB message limit."
    )
    retry_after_s: int = Field(5, ge=1, description="Retry-After seconds sent with a 503 from /feedback.")
    feedback_token: SecretStr | None = Field(
        None,
        description="Bearer token(s), comma-separated, that /feedback requires when set (401 without, 403 "
        "wrong). Unset: only label-only records for predictions this process issued are accepted, and "
        "records with their own features are refused (403).",
    )
    issued_predictions: int = Field(
        100_000, ge=1, description="Prediction ids each process remembers so that untrusted feedback can "
        "label them (once each); older ones are forgotten."
    )
    feedback_rate: float = Field(
        1000.0, ge=0, description="Feedback records per second one client address may send (token bucket); "
        "over it, 429 with Retry-After. 0 disables the limit."
    )
    feedback_burst: int = Field(
        4000, ge=1, description="Feedback records one client may send at once before the rate applies."
    )
    http_idle_timeout_s: float = Field(
        30.0, gt=0, description="A connection that has not completed a request within this many seconds "
        "(idle, half-open, or sending its headers slowly) is closed."
    )
    http_keep_alive_s: int = Field(
        5, ge=1, description="Seconds an idle keep-alive connection is kept open after a response."
    )
    champion_retry_s: float = Field(
        10.0, gt=0, description="While a model serves something other than its champion alias (the champion "
        "did not verify or load), the watcher retries the champion this often."
    )
    allow_insecure_secrets: bool = Field(
        False, description="Start even with a placeholder or development secret on a non-loopback host (the "
        "demo). Off: such a secret outside 127.0.0.1 refuses to start."
    )

    def feedback_tokens(self) -> str | None:
        """The feedback token setting in clear (comma-separated), or None."""
        return self.feedback_token.get_secret_value() if self.feedback_token else None

    def token(self) -> str | None:
        """The admin token in clear, or None when admin endpoints are disabled."""
        return self.admin_token.get_secret_value() if self.admin_token else None
