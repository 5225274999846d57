"""Generate Perennial's Grafana dashboards (deploy/grafana/dashboards/*.json).

The JSON files are checked in (Grafana's file provisioning reads them as they are); this
script is their source. After editing it, run::

    .venv/bin/python deploy/grafana/generate.py

and commit both. ``tests/deploy`` fails when the checked-in JSON differs from what this
script produces, when a panel has no query, and when a query uses a metric that
``streaming/metrics.py`` does not declare (BentoML's own ``bentoml_service_*`` HTTP metrics
and Prometheus' ``up`` aside).

Only the standard library is used, so the script runs anywhere. Every panel queries the
provisioned Prometheus datasource by uid (deploy/grafana/provisioning/datasources), and
every dashboard has a ``model`` variable (multi-select, "All" = ``.*``).

Queries that count rare events (errors, dead letters, drifts) end in ``or on() vector(0)``,
so a panel shows a flat zero instead of "No data" before the first event: the label child of
such a counter only exists once it has been incremented.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# run as a script (and loaded by path in tests): its sibling module is importable from here
sys.path.insert(0, str(Path(__file__).resolve().parent))

from panels import (  # noqa: E402
    NOT_PROBES,
    RI,
    ZERO,
    M,
    dashboard,
    quantiles,
    row,
    stat,
    timeseries,
)

OUT_DIR = Path(__file__).resolve().parent / "dashboards"

# -- the four dashboards --------------------------------------------------------------------


def service_dashboard() -> dict:
    http = f"bentoml_service_request_total{{{NOT_PROBES}}}"
    panels = [
        stat("Served version", "Champion version each model's service replicas serve now "
             "(highest across replicas; they converge within a watch interval).",
             [(f"max by (model) (perennial_served_version{{{M}}})", "{{model}}")], decimals=0),
        stat("Ready replicas", "Service replicas whose /v2/health/ready is 200 (a champion of every model loaded).",
             [("sum(perennial_service_ready)", "ready")], decimals=0),
        stat("HTTP 5xx ratio", "Share of HTTP requests answered 5xx over the last 5 minutes "
             "(alert PerennialHighErrorRate at 1%).",
             [(f'(sum(rate(bentoml_service_request_total{{http_response_code=~"5..",{NOT_PROBES}}}[5m])){ZERO})'
               f" / sum(rate({http}[5m]))", "5xx")],
             unit="percentunit", thresholds=[(0.001, "yellow"), (0.01, "red")]),
        stat("Requests in flight", "HTTP requests being served right now, all replicas.",
             [(f"sum(bentoml_service_request_in_progress){ZERO}", "in flight")], decimals=0),
        timeseries("HTTP request rate by endpoint", "Requests per second by endpoint (BentoML's counter; "
                   "health probes and /metrics left out).",
                   [(f"sum by (endpoint) (rate({http}[{RI}]))", "{{endpoint}}")], "reqps"),
        timeseries("Predictions by model and version", "Instances predicted per second, over HTTP and gRPC, "
                   "by the champion version that answered: a promotion shows as a hand-over between versions.",
                   [(f"sum by (model, version) (rate(perennial_predictions_total{{{M}}}[{RI}]))",
                     "{{model}} v{{version}}")], "ops", stack=True),
        timeseries("HTTP latency quantiles", "End-to-end HTTP request duration (BentoML histogram), all endpoints "
                   "but probes.",
                   quantiles("bentoml_service_request_duration_seconds", "le", (0.5, 0.95, 0.99), NOT_PROBES), "s"),
        timeseries("Model forward time", "Time of one batched model forward per model (p50, p99).",
                   quantiles("perennial_inference_seconds", "model, le", (0.5, 0.99), M, "{{model}} "), "s"),
        timeseries("Responses by status code", "HTTP responses per second by status code; 4xx are refused "
                   "requests (see the next panel for why), 5xx are server errors.",
                   [(f"sum by (http_response_code) (rate({http}[{RI}]))", "{{http_response_code}}")], "reqps"),
        timeseries("Refused requests by transport and reason", "Requests refused by Perennial's validation, "
                   "HTTP and gRPC, by reason (malformed, invalid, not_found, too_large, unavailable, ...).",
                   [(f"sum by (transport, reason) (rate(perennial_request_errors_total{{{M}}}[{RI}])){ZERO}",
                     "{{transport}} {{reason}}")], "reqps"),
        timeseries("Batch size", "Instances per model forward under adaptive batching: batches grow with load.",
                   quantiles("perennial_batch_size", "model, le", (0.5, 0.99), M, "{{model}} ")
                   + [(f"sum by (model) (rate(perennial_batch_size_sum{{{M}}}[{RI}])) / "
                       f"sum by (model) (rate(perennial_batch_size_count{{{M}}}[{RI}]))", "{{model}} mean")]),
        timeseries("Served version over time", "Champion version served per model; steps are hot swaps.",
                   [(f"max by (model) (perennial_served_version{{{M}}})", "{{model}}")], "none", steps=True),
        timeseries("Model swaps", "Hot swaps to a new champion version by result: loaded, or refused "
                   "(bad signature or artifact; the last good version keeps serving).",
                   [(f"sum by (model, result) (increase(perennial_model_swaps_total{{{M}}}[{RI}]))",
                     "{{model}} {{result}}")], "none", bars=True),
        timeseries("Feedback and prediction log", "Feedback records accepted by POST /feedback (durable in "
                   "the spool), delivered to Kafka and refused at the door; prediction records dropped "
                   "because the log buffer and its spool were full.",
                   [(f"sum by (model) (rate(perennial_feedback_accepted_total{{{M}}}[{RI}])){ZERO}",
                     "{{model}} feedback accepted"),
                    (f"sum by (model) (rate(perennial_feedback_delivered_total{{{M}}}[{RI}])){ZERO}",
                     "{{model}} feedback delivered"),
                    (f"sum by (model) (rate(perennial_feedback_refused_total{{{M}}}[{RI}])){ZERO}",
                     "{{model}} feedback refused"),
                    (f"sum by (model) (rate(perennial_prediction_log_dropped_total{{{M}}}[{RI}])){ZERO}",
                     "{{model}} log dropped")], "ops"),
        timeseries("Spool", "Records in the service's local spool that Kafka has not acknowledged yet: "
                   "zero while the broker answers, growing during an outage, drained in order after it.",
                   [("sum by (log) (perennial_spool_records) or on() vector(0)", "{{log}}")], "none"),
    ]
    return dashboard("perennial-service", "Perennial / Service",
                     "Serving: traffic, latency, errors, the served champion version, adaptive batching.", panels)


def learning_dashboard() -> dict:
    """The loop is task-agnostic, its scores are not: classification models are scored by
    accuracy and F1, regression models by MAE, RMSE and R². Both rows are always there; a
    model has series in the row of its task only (the other row shows "No data" for it)."""
    by_learner = "max by (model, role, learner) ({metric}{{{M}}})"
    learners = "{{model}} {{role}} {{learner}}"
    panels = [
        stat("Champion window accuracy", "Prequential accuracy of each classification model's champion over "
             "the sliding window.",
             [(f'max by (model) (perennial_online_accuracy{{{M},role="champion"}})', "{{model}}")],
             "percentunit", w=4),
        stat("Champion window MAE", "Prequential mean absolute error of each regression model's champion "
             "over the sliding window (in the target's unit).",
             [(f'max by (model) (perennial_online_mae{{{M},role="champion"}})', "{{model}}")], w=4),
        stat("Champion (trainer)", "The trainer's current champion: model, version and learner.",
             [(f"max by (model, version, learner) (perennial_champion_info{{{M}}})",
               "{{model}} v{{version}} {{learner}}")], "none", w=6, decimals=0),
        stat("Promotions / rollbacks (range)", "Automatic promotions and rollbacks in the selected time range.",
             [(f"sum(increase(perennial_promotions_total{{{M}}}[$__range]))", "promotions"),
              (f"sum(increase(perennial_rollbacks_total{{{M}}}[$__range]))", "rollbacks")], w=5, decimals=0),
        stat("Events learned", "Events each model has learned since bootstrap (survives restarts).",
             [(f"max by (model) (perennial_model_events_learned{{{M}}})", "{{model}}")], w=5),
        timeseries("Drift events", "Concept drifts detected on each learner's error stream (misclassifications, "
                   "or a rising absolute error for regression); a champion drift spawns a fresh challenger "
                   "trained only on post-drift data.",
                   [(f"sum by (model, learner) (increase(perennial_drift_detected_total{{{M}}}[{RI}])){ZERO}",
                     "{{model}} {{learner}}")], "none", w=8, bars=True),
        timeseries("Promotions and rollbacks", "Champion changes made by the trainer (also drawn as "
                   "annotations on every panel).",
                   [(f"sum by (model) (increase(perennial_promotions_total{{{M}}}[{RI}]))", "{{model}} promotions"),
                    (f"sum by (model) (increase(perennial_rollbacks_total{{{M}}}[{RI}]))", "{{model}} rollbacks")],
                   "none", w=8, bars=True),
        timeseries("Served version", "Version the service answers with; it follows the trainer's "
                   "champion alias (panel 'Champion (trainer)') within the registry watch interval.",
                   [(f"max by (model) (perennial_served_version{{{M}}})", "{{model}} served")],
                   "none", w=8, steps=True),
        row("Classification models: accuracy and F1"),
        timeseries("Window accuracy by learner and role", "Every learner is scored on each labeled event "
                   "before it learns from it, on the same events: champion, challengers and the previous "
                   "champion (kept for the rollback test).",
                   [(by_learner.format(metric="perennial_online_accuracy", M=M), learners)],
                   "percentunit", min_=0, max_=1),
        timeseries("Window macro-F1 by learner and role", "Macro-F1 over the same sliding window.",
                   [(by_learner.format(metric="perennial_online_f1", M=M), learners)],
                   "percentunit", min_=0, max_=1),
        timeseries("Champion accuracy vs best challenger", "Window accuracy of the champion and of the best "
                   "challenger: a challenger above the champion by the promotion margin is about to be promoted.",
                   [(f'max by (model) (perennial_online_accuracy{{{M},role="champion"}})', "{{model}} champion"),
                    (f'max by (model) (perennial_online_accuracy{{{M},role="challenger"}})',
                     "{{model}} best challenger")], "percentunit", min_=0, max_=1),
        timeseries("Live accuracy per served version", "Accuracy of what the service actually answered, "
                   "per version, from feedback joined to the prediction log (rolling window). The "
                   "serving-side promotion guard compares a promoted version with the one it replaced.",
                   [(f"max by (model, version) (perennial_served_accuracy{{{M}}})", "{{model}} v{{version}}")],
                   "percentunit", min_=0, max_=1),
        row("Regression models: MAE, RMSE and R²"),
        timeseries("Window MAE by learner and role", "Prequential mean absolute error of every learner over "
                   "the sliding window, scored before it learns from each event, on the same events (lower "
                   "is better; in the target's unit).",
                   [(by_learner.format(metric="perennial_online_mae", M=M), learners)], min_=0, w=8),
        timeseries("Window RMSE by learner and role", "Root mean squared error over the same window: it "
                   "weighs large misses more than MAE does.",
                   [(by_learner.format(metric="perennial_online_rmse", M=M), learners)], min_=0, w=8),
        timeseries("Window R² by learner and role", "Coefficient of determination over the same window: 1 is "
                   "perfect, 0 is no better than predicting the window's mean, below 0 is worse.",
                   [(by_learner.format(metric="perennial_online_r2", M=M), learners)], "none", max_=1, w=8),
        timeseries("Champion MAE vs best challenger", "Window MAE of the champion and of the best (lowest) "
                   "challenger: a challenger below the champion by the promotion margin, with a significant "
                   "paired test on the same events' losses, is about to be promoted.",
                   [(f'max by (model) (perennial_online_mae{{{M},role="champion"}})', "{{model}} champion"),
                    (f'min by (model) (perennial_online_mae{{{M},role="challenger"}})',
                     "{{model}} best challenger")], min_=0),
        timeseries("Live MAE per served version", "Mean absolute error of the values the service actually "
                   "answered, per version, from feedback joined to the prediction log (rolling window).",
                   [(f"max by (model, version) (perennial_served_mae{{{M}}})", "{{model}} v{{version}}")], min_=0),
    ]
    return dashboard("perennial-learning", "Perennial / Learning",
                     "The learning loop: prequential scores of every learner (accuracy and F1 for "
                     "classification, MAE, RMSE and R² for regression), drift, promotions and rollbacks.",
                     panels)


def data_dashboard() -> dict:
    join = f"perennial_label_join_total{{{M}}}"
    panels = [
        stat("Max feature PSI", "Largest population stability index of any served feature against the "
             "champion's training reference (0.1 moderate shift, 0.25 large).",
             [(f"max by (model) (perennial_feature_drift_psi{{{M}}})", "{{model}}")],
             thresholds=[(0.1, "yellow"), (0.25, "red")]),
        stat("Label join hit rate", "Labels joined to their prediction record (at once or after waiting) "
             "among all labels that reached the trainer, last 5 minutes.",
             [(f'sum by (model) (rate(perennial_label_join_total{{{M},result=~"hit|late"}}[5m])) / '
               f'sum by (model) (rate(perennial_label_join_total{{{M},result=~"hit|late|miss"}}[5m]))',
               "{{model}}")], "percentunit"),
        stat("Feedback accepted", "Feedback records accepted by POST /feedback per second.",
             [(f"sum by (model) (rate(perennial_feedback_accepted_total{{{M}}}[5m])){ZERO}", "{{model}}")],
             "ops"),
        stat("Predictions served", "Instances predicted per second (HTTP and gRPC).",
             [(f"sum by (model) (rate(perennial_predictions_total{{{M}}}[5m]))", "{{model}}")], "ops"),
        timeseries("Feature PSI", "PSI of each served feature over the service's sliding window, against the "
                   "champion's training reference: quantile bins for numeric features, category frequencies "
                   "for categorical ones (unseen categories in an 'other' bucket), false/true for booleans.",
                   [(f"max by (model, feature) (perennial_feature_drift_psi{{{M}}})", "{{model}} {{feature}}")],
                   thresholds=[(0.1, "yellow"), (0.25, "red")]),
        timeseries("Feature missing rate", "Share of served rows missing each feature (null or absent) over "
                   "the service's sliding window, and the share the champion's training data had.",
                   [(f"max by (model, feature) (perennial_feature_missing_ratio{{{M}}})",
                     "{{model}} {{feature}} served"),
                    (f"max by (model, feature) (perennial_feature_reference_missing_ratio{{{M}}})",
                     "{{model}} {{feature}} training")], "percentunit", min_=0, max_=1),
        timeseries("Missing rate above training", "Served missing rate minus the training data's, per feature "
                   "(alert PerennialFeatureMissingRate above 0.1): a column an upstream system stopped filling.",
                   [(f"max by (model, feature) (perennial_feature_missing_ratio{{{M}}} - "
                     f"perennial_feature_reference_missing_ratio{{{M}}})", "{{model}} {{feature}}")],
                   "percentunit", thresholds=[(0.05, "yellow"), (0.1, "red")]),
        timeseries("Label join outcomes", "Labels per second by join result: hit (prediction found), late "
                   "(label waited for its prediction), miss (no prediction within the grace period), expired "
                   "(a prediction that never got a label).",
                   [(f"sum by (model, result) (rate({join}[{RI}]))", "{{model}} {{result}}")], "ops", stack=True),
        timeseries("Label join hit rate", "Share of labels joined to their prediction record.",
                   [(f'sum by (model) (rate(perennial_label_join_total{{{M},result=~"hit|late"}}[{RI}])) / '
                     f'sum by (model) (rate(perennial_label_join_total{{{M},result=~"hit|late|miss"}}[{RI}]))',
                     "{{model}}")], "percentunit", min_=0, max_=1),
        timeseries("Label delay", "Time from a served prediction to its label reaching the trainer "
                   "(quantiles of perennial_label_delay_seconds, measured at the join). Learning from a "
                   "label cannot start earlier; a growing delay slows adaptation.",
                   quantiles("perennial_label_delay_seconds", "model, le", (0.5, 0.9, 0.99), M, "{{model}} "),
                   "s"),
        timeseries("Label join outcomes (share)", "Share of each join result among all: a growing 'late' "
                   "share means labels overtake their predictions, a growing 'expired' share means labels "
                   "arrive later than the join TTL (PERENNIAL_JOIN_TTL_S) or not at all.",
                   [(f"sum by (model, result) (rate({join}[{RI}])) / on (model) group_left "
                     f"sum by (model) (rate({join}[{RI}]))", "{{model}} {{result}}")],
                   "percentunit", min_=0, max_=1, stack=True),
        timeseries("Feedback vs predictions", "Labeled feedback accepted by the service against predictions "
                   "served: the label coverage of the stream the trainer learns from.",
                   [(f"sum by (model) (rate(perennial_predictions_total{{{M}}}[{RI}]))", "{{model}} predictions"),
                    (f"sum by (model) (rate(perennial_feedback_accepted_total{{{M}}}[{RI}])){ZERO}",
                     "{{model}} feedback")], "ops"),
    ]
    return dashboard("perennial-data", "Perennial / Data",
                     "The data: feature drift of served traffic, label joins and label coverage.", panels)


def pipeline_dashboard() -> dict:
    consumed = f"sum by (model) (rate(perennial_events_consumed_total{{{M}}}[5m]))"
    panels = [
        stat("Consumer lag", "Records between the trainer's position and the end of its partitions.",
             [(f"sum by (model) (max by (model, partition) (perennial_consumer_lag{{{M}}}))", "{{model}}")],
             thresholds=[(1000, "yellow"), (10000, "red")]),
        stat("Events learned / s", "Labeled events learned per second, last 5 minutes.",
             [(f"sum by (model) (rate(perennial_events_learned_total{{{M}}}[5m]))", "{{model}}")], "ops"),
        stat("Dead-letter ratio", "Dead-lettered among consumed records, last 5 minutes (alert at 1%).",
             [(f"(sum by (model) (rate(perennial_events_dead_lettered_total{{{M}}}[5m])) or {consumed} * 0)"
               f" / {consumed}", "{{model}}")],
             "percentunit", thresholds=[(0.001, "yellow"), (0.01, "red")]),
        stat("Trainers up", "Trainer processes Prometheus can scrape: the active one and hot standbys.",
             [('sum(up{job="perennial-trainer"})', "trainers")], decimals=0),
        timeseries("Consumed, learned and dead-lettered", "Records per second read from Kafka, labeled events "
                   "learned (test-then-train) and invalid records sent to <model>.feedback.dlq.",
                   [(f"sum by (model) (rate(perennial_events_consumed_total{{{M}}}[{RI}]))", "{{model}} consumed"),
                    (f"sum by (model) (rate(perennial_events_learned_total{{{M}}}[{RI}]))", "{{model}} learned"),
                    (f"sum by (model) (rate(perennial_events_dead_lettered_total{{{M}}}[{RI}])){ZERO}",
                     "{{model}} dead-lettered")], "ops"),
        timeseries("Dead letters by reason", "Invalid events by reason (not_json, missing_field, nan, "
                   "unknown_class, ...).",
                   [(f"sum by (model, reason) (increase(perennial_events_dead_lettered_total{{{M}}}[{RI}])){ZERO}",
                     "{{model}} {{reason}}")], "none", bars=True, stack=True),
        timeseries("Consumer lag by partition", "Lag per partition (the highest value reported by any "
                   "trainer replica; a standby reports none).",
                   [(f"max by (model, partition) (perennial_consumer_lag{{{M}}})", "{{model}} p{{partition}}")]),
        timeseries("Checkpoint time", "Time to write a durable checkpoint (learners, evaluator, offsets); "
                   "offsets are committed only after it.",
                   quantiles("perennial_checkpoint_seconds", "model, le", (0.5, 0.99), M, "{{model}} ")
                   + [(f"sum by (model) (rate(perennial_checkpoint_seconds_count{{{M}}}[{RI}])) * 60",
                       "{{model}} checkpoints/min")], "s"),
        timeseries("Learn time per batch", "Time to score and learn one polled batch across all learners.",
                   quantiles("perennial_learn_seconds", "model, le", (0.5, 0.99), M, "{{model}} "), "s"),
        timeseries("Fetcher restarts", "Times the trainer lost its fetcher process (the one that reads and "
                   "validates records) and started a new one; nothing is lost, but learning waits during each "
                   "back-off. Alert: more than 3 in 15 minutes.",
                   [(f"sum by (model) (increase(perennial_fetcher_restarts_total{{{M}}}[{RI}]))", "{{model}}")],
                   "none", bars=True),
        timeseries("Events learned since bootstrap", "Restored from the checkpoint, so it survives restarts "
                   "and a standby's takeover.",
                   [(f"max by (model) (perennial_model_events_learned{{{M}}})", "{{model}}")]),
    ]
    return dashboard("perennial-pipeline", "Perennial / Pipeline",
                     "The streaming trainer: Kafka consumption, learning throughput, dead letters, lag, "
                     "checkpoints.", panels)


def build_dashboards() -> dict[str, dict]:
    """File name → dashboard JSON object, for every dashboard."""
    return {
        "service.json": service_dashboard(),
        "learning.json": learning_dashboard(),
        "data.json": data_dashboard(),
        "pipeline.json": pipeline_dashboard(),
    }


def render(obj: dict) -> str:
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


def main(out_dir: Path = OUT_DIR) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, obj in build_dashboards().items():
        (out_dir / name).write_text(render(obj), encoding="utf-8")
        print(f"wrote {out_dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR))
