"""Settings of the streaming trainer: flags override ``PERENNIAL_*`` env, which overrides defaults.

Defaults work on a laptop against `perennial broker`; the same code points at a Kafka cluster
by setting ``PERENNIAL_BOOTSTRAP_SERVERS``. The Kafka timeouts are tuned so a consumer-group
join takes about three seconds on the embedded broker (kafka-python's defaults take much
longer there) and a crashed trainer's standby takes over within ``session_timeout_ms``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """Connection and client tuning shared by the trainer, the producer and benchmarks."""

    model_config = SettingsConfigDict(env_prefix="PERENNIAL_", extra="ignore")

    bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        description="Comma-separated Kafka bootstrap servers (the embedded broker's default address).",
    )
    partitions: int = Field(1, ge=1, description="Partitions of topics the trainer/producer creates.")
    replication_factor: int = Field(1, ge=1, description="Replication factor of created topics (3 on a real cluster).")
    create_topics: bool = Field(True, description="Create missing topics at start (off if an operator manages them).")
    session_timeout_ms: int = Field(6000, ge=1000, description="Group session timeout: how fast a dead trainer is noticed.")
    heartbeat_interval_ms: int = Field(2000, ge=100, description="Heartbeat period; about a third of the session timeout.")
    max_poll_interval_ms: int = Field(300000, ge=1000, description="Longest pause between polls before the group evicts us.")
    request_timeout_ms: int = Field(30000, ge=1000, description="Kafka request timeout.")
    max_poll_records: int = Field(2000, ge=1, description="Records per poll; one poll is one learn batch.")
    poll_timeout_ms: int = Field(200, ge=1, description="How long a poll waits for records when the topics are idle.")
    connect_timeout_s: float = Field(10.0, gt=0, description="How long a command waits at start for a bootstrap server to accept a connection before it stops with an error.")


class LoopSettings(BaseSettings):
    """Knobs of the learning loop, shared by `perennial train`, `replay` and `bootstrap`."""

    model_config = SettingsConfigDict(env_prefix="PERENNIAL_", extra="ignore")

    window: int = Field(1000, ge=10, description="Events per sliding metrics window (online accuracy/F1, replay plot).")
    check_every: int = Field(100, ge=1, description="Events between two promotion / rollback tests.")
    refresh_every: int = Field(10000, ge=0, description="Events between republications of the learning champion (0 disables).")
    promotion_min_events: int = Field(1000, ge=0, description="Events a challenger must have been scored on before promotion.")
    promotion_window: int = Field(2000, ge=10, description="Recent paired events the promotion test compares.")
    promotion_margin: float = Field(0.01, ge=0, description="Accuracy gain (0..1) a challenger must show over the champion.")
    promotion_alpha: float = Field(0.001, gt=0, lt=1, description="Significance level of the paired McNemar test.")
    rollback_guard_events: int = Field(3000, ge=0, description="Events after a promotion during which the paired rollback test runs.")
    drift_delta: float = Field(0.002, gt=0, lt=1, description="ADWIN confidence: smaller means fewer, later drift alarms.")
    max_fresh_challengers: int = Field(2, ge=0, description="Post-drift challengers alive at once (the oldest is retired).")

    def loop_config(self):
        from training.drift import DriftConfig
        from training.promotion import PromotionPolicy
        from training.system import LoopConfig

        return LoopConfig(
            window=self.window, check_every=self.check_every, refresh_every=self.refresh_every,
            max_fresh_challengers=self.max_fresh_challengers,
            policy=PromotionPolicy(min_events=self.promotion_min_events, window=self.promotion_window,
                                   margin=self.promotion_margin, alpha=self.promotion_alpha,
                                   guard_events=self.rollback_guard_events),
            drift=DriftConfig(delta=self.drift_delta),
        )


class TrainerSettings(KafkaSettings, LoopSettings):
    """Everything `perennial train` needs; one object per process (see DESIGN "Conventions")."""

    model: str = Field("", description="Model to train: topics <model>.feedback/.predictions, group perennial-trainer-<model>.")
    registry_dir: Path = Field(Path(".perennial/registry"), description="Model registry root (shared volume in production).")
    candidates: str = Field(
        "", description="Challengers trained beside the champion when bootstrap registered none: built-in names "
        "(training.learners.candidates), import paths module:factory (from modules in PERENNIAL_ALLOWED_MODULES), or "
        "names from the candidates file; empty: the file's entries, else logreg,hat (classification) or linear,hat (regression)."
    )
    candidates_file: str = Field("", description="YAML or JSON file of named candidates, name: {factory, params}.")
    checkpoint_dir: Path = Field(
        Path(".perennial/checkpoints"),
        description="Checkpoint root, shared by the active trainer and its hot standby; one folder per model.",
    )
    checkpoint_key: SecretStr | None = Field(
        None,
        description="HMAC key signing checkpoints (they hold pickles); falls back to PERENNIAL_REGISTRY_KEY, then a dev key.",
    )
    checkpoint_every_events: int = Field(10000, ge=1, description="Checkpoint (then commit offsets) after this many consumed records.")
    checkpoint_interval_s: float = Field(10.0, gt=0, description="... or after this many seconds with anything new, whichever first.")
    checkpoints_kept: int = Field(2, ge=1, description="Checkpoint generations kept; an unreadable newest falls back to an older one.")
    recent_event_ids: int = Field(100000, ge=0, description="Learned event ids remembered (and checkpointed) to skip duplicates.")
    join_ttl_s: float = Field(3600.0, gt=0, description="How long a prediction record waits for its label before it expires.")
    join_grace_s: float = Field(30.0, ge=0, description="How long label-only feedback waits for a prediction that has not arrived yet.")
    join_max_predictions: int = Field(200000, ge=1, description="Bound on prediction records held for joining; the oldest expire first.")
    max_clock_skew_s: float = Field(
        300.0, gt=0, description="Record timestamps further ahead of this trainer's clock are ignored by the join's "
        "clock (counted in perennial_record_timestamps_ignored_total): one producer with a wrong clock must not "
        "expire every waiting prediction and label.",
    )
    join_max_pending: int = Field(50000, ge=1, description="Bound on label-only feedback waiting for its prediction; the oldest miss first.")
    dlq_recall_max: int = Field(
        100000, ge=0, description="Dead letters read back per dead-letter partition when a trainer takes over "
        "without a checkpoint that says where its letters end (so a record dead-lettered before a crash is not "
        "dead-lettered again); with a checkpoint only the letters written since it are read.",
    )
    max_event_bytes: int = Field(65536, ge=256, description="Larger records are dead-lettered as 'oversized'.")
    max_features: int = Field(4096, ge=1, description="More features than this is 'oversized'.")
    allow_new_classes: bool = Field(False, description="Accept labels the champion has never seen (else 'unknown_class').")
    allow_insecure_secrets: bool = Field(False, description="Start even with a placeholder or the development key while Kafka is not on loopback (demos); off: refuse.")
    allow_missing_features: bool = Field(False, description="Accept events lacking some of the champion's features (else 'missing_feature').")
    fetch_process: bool = Field(
        True, description="Fetch and validate records in a second process while this one learns (about 2x the "
        "events/s on 2+ cores); off: one process does both (one core, or debugging).",
    )
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus /metrics port of the trainer (0 disables).")
    metrics_host: str = Field(
        "127.0.0.1", min_length=1,
        description="Address the trainer's /metrics binds. Loopback by default, so a laptop's trainer is not "
        "reachable from the network; in production (a container scraped by Prometheus) set 0.0.0.0 or the pod's "
        "address, as deploy/docker-compose.yml and deploy/k8s/configmap.yaml do.",
    )
    stats_interval_s: float = Field(1.0, gt=0, description="How often window accuracy/F1 and lag gauges are refreshed.")
    prometheus_url: str = Field("", description="Prometheus base URL for the serving-side promotion guard ('' disables it).")
    guard_period_s: float = Field(300.0, gt=0, description="How long after a promotion the serving-side guard watches it.")
    guard_interval_s: float = Field(15.0, gt=0, description="Seconds between two evaluations of the guard's PromQL checks.")
    guard_warmup_s: float = Field(45.0, ge=0, description="Seconds after a promotion before the first check: longer than the service's watch interval plus Prometheus' scrape interval, or the check sees the old version.")
    guard_checks: str = Field("", description="Guard checks as a JSON list of {name, query, max_value|min_value, no_data}; '' uses the defaults.")

    def check_secrets(self) -> None:
        """Refuse a placeholder registry key or the development checkpoint key beyond loopback."""
        from streaming.secrets import refuse_insecure_secrets

        refuse_insecure_secrets({"PERENNIAL_REGISTRY_KEY / PERENNIAL_CHECKPOINT_KEY": self.hmac_key().decode("utf-8", "replace")},
                                [self.bootstrap_servers], self.allow_insecure_secrets)

    def hmac_key(self) -> bytes:
        """The checkpoint signing key: own setting, else the registry's, else a public dev key."""
        import os

        if self.checkpoint_key is not None and self.checkpoint_key.get_secret_value():
            return self.checkpoint_key.get_secret_value().encode()
        registry_key = os.environ.get("PERENNIAL_REGISTRY_KEY")
        if registry_key:
            return registry_key.encode()
        return b"perennial-development-key-NOT-SECRET"

    @classmethod
    def from_flags(cls, **flags: object) -> TrainerSettings:
        """Settings with CLI flags (None means 'not given') over env over defaults."""
        return cls(**{k: v for k, v in flags.items() if v is not None})
