"""Every Prometheus metric Perennial exports, declared in one place.

Names are a contract: dashboards (deploy/grafana) and alert rules (deploy/prometheus) are
built on them, and a test checks that every name they use is declared here. Conventions:
``perennial_`` prefix, base-unit suffixes (``_seconds``, ``_total``), few low-cardinality
labels (``model``, ``version``, ``learner``, ``role``, ``reason``, ``result``).

Metrics are grouped per process and bound to a ``CollectorRegistry`` passed in, so there is
no module-level global: tests and benchmarks build as many independent sets as they like.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

#: Metrics only a model of one task exports (the other task's models have no series of them):
#: the dashboards show both kinds of panel side by side, and the tests prove each panel's
#: query against a model of the task its metrics belong to.
TASK_METRICS: dict[str, frozenset[str]] = {
    "classification": frozenset({"perennial_online_accuracy", "perennial_online_f1", "perennial_served_accuracy"}),
    "regression": frozenset({"perennial_online_mae", "perennial_online_rmse", "perennial_online_r2",
                             "perennial_served_mae"}),
}


class TrainerMetrics:
    """Metrics of one streaming trainer process (`perennial train`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events_consumed = Counter(
            "perennial_events_consumed_total",
            "Feedback and prediction records read from Kafka.",
            ["model"], registry=registry,
        )
        self.events_learned = Counter(
            "perennial_events_learned_total",
            "Labeled events every learner was scored on and then learned from.",
            ["model"], registry=registry,
        )
        self.events_dead_lettered = Counter(
            "perennial_events_dead_lettered_total",
            "Invalid events sent to <model>.feedback.dlq, by reason.",
            ["model", "reason"], registry=registry,
        )
        self.label_join = Counter(
            "perennial_label_join_total",
            "Label-only feedback joined to its prediction record: hit, late (waited), miss, expired.",
            ["model", "result"], registry=registry,
        )
        self.online_accuracy = Gauge(
            "perennial_online_accuracy",
            "Prequential accuracy over the sliding window, per learner and role.",
            ["model", "learner", "role"], registry=registry,
        )
        self.online_f1 = Gauge(
            "perennial_online_f1",
            "Prequential macro-F1 over the sliding window, per learner and role.",
            ["model", "learner", "role"], registry=registry,
        )
        # regression learners: error over the same sliding window (a regressor exports these
        # instead of accuracy and F1)
        self.online_mae = Gauge(
            "perennial_online_mae",
            "Prequential mean absolute error over the sliding window, per regression learner and role.",
            ["model", "learner", "role"], registry=registry,
        )
        self.online_rmse = Gauge(
            "perennial_online_rmse",
            "Prequential root mean squared error over the sliding window, per regression learner and role.",
            ["model", "learner", "role"], registry=registry,
        )
        self.online_r2 = Gauge(
            "perennial_online_r2",
            "Prequential coefficient of determination (R²) over the sliding window, per regression learner and role.",
            ["model", "learner", "role"], registry=registry,
        )
        self.timestamps_ignored = Counter(
            "perennial_record_timestamps_ignored_total",
            "Record timestamps the join's clock ignored: further ahead of the trainer's clock than "
            "max_clock_skew_s (one bad producer must not expire the join store).",
            ["model"], registry=registry,
        )
        self.drift_detected = Counter(
            "perennial_drift_detected_total",
            "Concept drifts detected on a learner's error stream.",
            ["model", "learner"], registry=registry,
        )
        self.promotions = Counter(
            "perennial_promotions_total", "Challengers promoted to champion.", ["model"], registry=registry,
        )
        self.rollbacks = Counter(
            "perennial_rollbacks_total", "Champions rolled back to the previous one.", ["model"], registry=registry,
        )
        self.fetcher_restarts = Counter(
            "perennial_fetcher_restarts_total",
            "Times the trainer's fetcher process was lost (crashed, killed, could not reach Kafka) and started again.",
            ["model"], registry=registry,
        )
        self.champion_info = Gauge(
            "perennial_champion_info",
            "1 for the current champion's version and learner; the previous series is removed.",
            ["model", "version", "learner"], registry=registry,
        )
        self.consumer_lag = Gauge(
            "perennial_consumer_lag",
            "Records between the trainer's position and the partition end.",
            ["model", "partition"], registry=registry,
        )
        self.checkpoint_seconds = Histogram(
            "perennial_checkpoint_seconds",
            "Time to write a durable checkpoint (learners, evaluator, offsets).",
            ["model"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.learn_seconds = Histogram(
            "perennial_learn_seconds",
            "Time to score and learn one batch of events across all learners.",
            ["model"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.model_events_learned = Gauge(
            "perennial_model_events_learned",
            "Events the model has learned since bootstrap; restored from the checkpoint, survives restarts.",
            ["model"], registry=registry,
        )
        self.label_delay = Histogram(
            "perennial_label_delay_seconds",
            "Time from a served prediction to its label arriving at the trainer.",
            ["model"], buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400),
            registry=registry,
        )
        self.served_accuracy = Gauge(
            "perennial_served_accuracy",
            "Accuracy of what the service answered, per served version, from joined feedback (rolling window).",
            ["model", "version"], registry=registry,
        )
        self.served_mae = Gauge(
            "perennial_served_mae",
            "Mean absolute error of what the service answered, per served version, from joined feedback "
            "(rolling window; regression).",
            ["model", "version"], registry=registry,
        )
        self.last_refresh_timestamp = Gauge(
            "perennial_champion_refresh_timestamp_seconds",
            "Unix time the champion snapshot was last published to the registry.",
            ["model"], registry=registry,
        )


class ServiceMetrics:
    """Metrics of the serving process (`perennial serve`), beside BentoML's own.

    Each gauge's ``multiprocess_mode`` says how the workers of ``perennial serve --workers N``
    combine (`service.metrics_exposition`): the lowest served version and readiness (a swap
    or a load is done when every worker is done), the sum of the spools, the latest drift."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.predictions = Counter(
            "perennial_predictions_total",
            "Predictions served, by model and version.",
            ["model", "version"], registry=registry,
        )
        self.request_errors = Counter(
            "perennial_request_errors_total",
            "Requests refused, by transport (http, grpc) and reason.",
            ["model", "transport", "reason"], registry=registry,
        )
        self.inference_seconds = Histogram(
            "perennial_inference_seconds",
            "Model forward time per batch.",
            ["model"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.batch_size = Histogram(
            "perennial_batch_size",
            "Instances per model forward.",
            ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=registry,
        )
        self.feature_drift_psi = Gauge(
            "perennial_feature_drift_psi",
            "Population stability index of served traffic per feature, against the champion's reference.",
            ["model", "feature"], registry=registry, multiprocess_mode="livemostrecent",
        )
        self.feature_missing_ratio = Gauge(
            "perennial_feature_missing_ratio",
            "Share of served rows with the feature missing (null or absent), over the drift window.",
            ["model", "feature"], registry=registry, multiprocess_mode="livemostrecent",
        )
        self.feature_reference_missing_ratio = Gauge(
            "perennial_feature_reference_missing_ratio",
            "Share of the champion's training rows with the feature missing (its drift reference).",
            ["model", "feature"], registry=registry, multiprocess_mode="livemax",
        )
        self.served_version = Gauge(
            "perennial_served_version",
            "Version of the champion currently served.",
            ["model"], registry=registry, multiprocess_mode="livemin",
        )
        self.model_swaps = Counter(
            "perennial_model_swaps_total",
            "Hot swaps to a new champion, by result (loaded, refused).",
            ["model", "result"], registry=registry,
        )
        self.prediction_log_dropped = Counter(
            "perennial_prediction_log_dropped_total",
            "Prediction records dropped because the log buffer was full or the broker was down.",
            ["model"], registry=registry,
        )
        self.prediction_log_spooled = Counter(
            "perennial_prediction_log_spooled_total",
            "Prediction records kept in the local spool because Kafka did not take them (sent when it answers).",
            ["model"], registry=registry,
        )
        self.feedback_accepted = Counter(
            "perennial_feedback_accepted_total",
            "Feedback records answered 2xx: written (fsynced) to the local spool, to be delivered to <model>.feedback.",
            ["model"], registry=registry,
        )
        self.feedback_delivered = Counter(
            "perennial_feedback_delivered_total",
            "Feedback records Kafka acknowledged on <model>.feedback (and removed from the spool).",
            ["model"], registry=registry,
        )
        self.feedback_refused = Counter(
            "perennial_feedback_refused_total",
            "Feedback records refused at the door (the client keeps them), by reason.",
            ["model", "reason"], registry=registry,
        )
        self.feedback_undeliverable = Counter(
            "perennial_feedback_undeliverable_total",
            "Accepted feedback records Kafka refused permanently; set aside in the spool's undeliverable.log.",
            ["model"], registry=registry,
        )
        self.spool_records = Gauge(
            "perennial_spool_records",
            "Records in the local spool not yet acknowledged by Kafka, by log (feedback, predictions).",
            ["log"], registry=registry, multiprocess_mode="livesum",
        )
        self.spool_bytes = Gauge(
            "perennial_spool_bytes",
            "Bytes in the local spool not yet acknowledged by Kafka, by log (feedback, predictions).",
            ["log"], registry=registry, multiprocess_mode="livesum",
        )
        self.champion_fallbacks = Counter(
            "perennial_champion_fallbacks_total",
            "Times the champion did not verify or load and the previous version was served instead.",
            ["model"], registry=registry,
        )
        self.ready = Gauge(
            "perennial_service_ready", "1 when every model has a loaded champion.", registry=registry,
            multiprocess_mode="livemin",
        )
