"""Feedback records checked before they are spooled: the envelope, the label, the features.

The label must be of the model's task (and a known class when the spec fixes them), and
self-contained ``features`` a valid raw row of the model's spec (its `RowValidator`), so a
label the trainer could not use is refused at the door with the reason, not dead-lettered
later. Who may send what (tokens, issued ids, rates) is `service.feedback_rules`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping

from pydantic import ValidationError

from service.errors import Kind, ServingError
from service.validation import _kind, _short, refused
from streaming.schemas import FeedbackWire
from training.rows import RowError, RowValidator


def check_feedback(
    body: object, max_items: int, validators: Mapping[str, RowValidator], clock: Callable[[], float]
) -> list[dict]:
    """Validate feedback (one object or a list) into ``FeedbackWire``-shaped dicts.

    ``validators`` maps each served model to its champion's validator: the label must be of
    the model's task (and a known class when the spec fixes them), self-contained
    ``features`` a valid raw row (written back validated: spec order, null for missing).
    ``event_id`` is assigned when absent (the trainer deduplicates on it); ``timestamp``
    defaults to now, so label delay can be measured downstream.
    """
    items = body if isinstance(body, list) else [body]
    if not items:
        raise ServingError(Kind.INVALID, f"feedback list is empty; send 1 to {max_items} records")
    if len(items) > max_items:
        raise ServingError(Kind.TOO_LARGE, f"{len(items)} feedback records; at most {max_items} per request")
    out = []
    for i, item in enumerate(items):
        where = "feedback" if not isinstance(body, list) else f"feedback record {i}"
        if not isinstance(item, dict):
            raise ServingError(Kind.MALFORMED, f"{where} is {_kind(item)}; expected {{model, prediction_id, label}}")
        record = {"event_id": uuid.uuid4().hex, "timestamp": clock(), **item}
        features = record.pop("features", None)
        if features is None and record.get("prediction_id") is None:
            raise ServingError(Kind.INVALID, f"{where} needs 'prediction_id' (or self-contained 'features')")
        if "label" not in record:
            raise ServingError(Kind.INVALID, f"{where} needs 'label'")
        label = record["label"]
        try:  # the envelope here; the label and the row are the model's validator's to judge
            wire = FeedbackWire.model_validate({**record, "label": 0})
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ServingError(Kind.INVALID, f"{where}: {loc or 'record'}: {first['msg']} (got {_short(first.get('input'))})") from None
        validator = validators.get(wire.model)
        if validator is None:
            raise ServingError(Kind.NOT_FOUND, f"{where} is for unknown model {wire.model!r}; served models: {sorted(validators)}")
        if wire.timestamp is not None and not math.isfinite(wire.timestamp):
            raise ServingError(Kind.INVALID, f"{where}: timestamp must be a finite number")
        try:
            label = validator.label(label)
        except RowError as e:
            raise refused(e, f"{where}: ") from None
        checked = {**wire.model_dump(exclude_none=True), "label": label}
        if features is not None:
            if type(features) is not dict and type(features) is not list:
                raise ServingError(Kind.INVALID, f"{where}: features must be an object {{name: value}} or a list of "
                                   f"{len(validator.names)} values; got {_kind(features)}")
            try:
                checked["features"] = validator.row(features)
            except RowError as e:
                raise refused(e, f"{where}: features: ") from None
        out.append(checked)
    return out
