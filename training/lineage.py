"""Where a registry version came from, as a typed field of its metadata.

Readers decide by this field, never by parsing the free-text ``note``: the trainer starts
its challengers from the versions whose origin is `Origin.BOOTSTRAP_CANDIDATE` beside its
champion, and rewording a note cannot silently change that. Registries written before the
field existed are read through `legacy_origin`, the one place that still looks at notes.
"""

from __future__ import annotations

from enum import StrEnum


class Origin(StrEnum):
    """How a version was made. Stored as its value in ``metadata.json``.

    >>> Origin("refresh") is Origin.REFRESH
    True
    """

    BOOTSTRAP = "bootstrap"  # the champion `perennial bootstrap` selected on validation
    BOOTSTRAP_CANDIDATE = "bootstrap_candidate"  # trained beside it; ``parent`` is that champion
    PROMOTION = "promotion"  # a challenger the loop promoted; ``parent`` is the champion it replaced
    REFRESH = "refresh"  # the learning champion's snapshot; ``parent`` is the version it continues
    MANUAL = "manual"  # published by other code (tests, notebooks, an operator's script)


def legacy_origin(note: str) -> Origin:
    """The origin of a version written before ``origin`` was recorded, from its note.

    >>> legacy_origin("bootstrap challenger (hat)")
    <Origin.BOOTSTRAP_CANDIDATE: 'bootstrap_candidate'>
    >>> legacy_origin("promotion: challenger better by 0.04 (p=0.001)")
    <Origin.PROMOTION: 'promotion'>
    >>> legacy_origin("hand-made")
    <Origin.MANUAL: 'manual'>
    """
    if note.startswith("bootstrap challenger"):
        return Origin.BOOTSTRAP_CANDIDATE
    if note.startswith("bootstrap"):
        return Origin.BOOTSTRAP
    if note.startswith("promotion"):
        return Origin.PROMOTION
    if note == "refresh":
        return Origin.REFRESH
    return Origin.MANUAL
