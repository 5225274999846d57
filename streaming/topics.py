"""Kafka names derived from a model name, in one place so producer, trainer and service agree.

>>> feedback_topic("fraud"), predictions_topic("fraud"), dlq_topic("fraud"), group_id("fraud")
('fraud.feedback', 'fraud.predictions', 'fraud.feedback.dlq', 'perennial-trainer-fraud')
"""

from __future__ import annotations


def feedback_topic(model: str) -> str:
    """Labeled feedback (with features, or label-only with a prediction id)."""
    return f"{model}.feedback"


def predictions_topic(model: str) -> str:
    """The prediction log the service writes; label-only feedback joins against it."""
    return f"{model}.predictions"


def dlq_topic(model: str) -> str:
    """Dead letters of both input topics, original bytes plus reason headers."""
    return f"{model}.feedback.dlq"


def group_id(model: str) -> str:
    """Consumer group of the model's trainers; a second member is a hot standby."""
    return f"perennial-trainer-{model}"


def model_topics(model: str) -> list[str]:
    """Every topic a model's pipeline uses, created up front by the trainer and the producer."""
    return [feedback_topic(model), predictions_topic(model), dlq_topic(model)]


def key(model: str) -> bytes:
    """Message key: the model name, so all of a model's events share a partition and an order."""
    return model.encode("utf-8")
