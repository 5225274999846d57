"""What the trainer reports on its /metrics, read back for the demo's live status line."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass
class TrainerStatus:
    learned: float = 0
    drifts: float = 0
    promotions: float = 0
    rollbacks: float = 0
    champion_version: str | None = None
    # id -> (role, window accuracy; regression: window MAE)
    learners: dict[str, tuple[str, float]] = field(default_factory=dict)
    drifts_by_learner: dict[str, float] = field(default_factory=dict)

    def line(self, champion_fallback: int | None = None) -> str:
        """One status line. ``champion_fallback`` (the registry's alias) stands in for the
        champion's version until the trainer reports it, so no line says ``v?``."""
        def order(item):
            return (item[1][0] != "champion", item[0])

        accs = "  ".join(f"{lid}{'*' if role == 'champion' else ''} {acc:.3f}"
                         for lid, (role, acc) in sorted(self.learners.items(), key=order))
        champion = self.champion_version or (str(champion_fallback) if champion_fallback is not None else "?")
        return (f"learned {self.learned:,.0f} | champion v{champion} | "
                f"drifts {self.drifts:.0f} promotions {self.promotions:.0f} rollbacks {self.rollbacks:.0f} | {accs}")


def scrape(url: str, model: str, timeout_s: float = 2.0) -> TrainerStatus | None:
    """Parse the trainer's exposition; None while it is not up yet."""
    try:
        text = httpx.get(url, timeout=timeout_s).text
    except httpx.HTTPError:
        return None
    status = TrainerStatus()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") not in (None, model):
                continue
            name = sample.name
            if name == "perennial_model_events_learned":
                status.learned = sample.value
            elif name == "perennial_drift_detected_total":
                status.drifts += sample.value
                learner = labels.get("learner", "?")
                status.drifts_by_learner[learner] = status.drifts_by_learner.get(learner, 0) + sample.value
            elif name == "perennial_promotions_total":
                status.promotions = sample.value
            elif name == "perennial_rollbacks_total":
                status.rollbacks = sample.value
            elif name == "perennial_champion_info" and sample.value == 1:
                status.champion_version = labels.get("version")
            elif name in ("perennial_online_accuracy", "perennial_online_mae"):
                status.learners[labels["learner"]] = (labels["role"], sample.value)
    return status
