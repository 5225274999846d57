"""Errors of the data plane, each mapped once to an HTTP status and a gRPC code.

Transports never decide a status themselves: the data plane raises a `ServingError` whose
`kind` fixes both, so a wrong feature name is a 422 over HTTP and INVALID_ARGUMENT over gRPC
wherever it came from. Messages say what was wrong, with which value, and what is accepted.
"""

from __future__ import annotations

import enum


class Kind(enum.Enum):
    """Failure classes; value = (HTTP status, gRPC status code name, metrics reason)."""

    MALFORMED = (400, "INVALID_ARGUMENT", "malformed")  # not JSON, wrong shape of the envelope
    INVALID = (422, "INVALID_ARGUMENT", "invalid")  # well-formed but not acceptable values
    NOT_FOUND = (404, "NOT_FOUND", "not_found")  # unknown model or version
    TOO_LARGE = (413, "INVALID_ARGUMENT", "too_large")  # batch or body over the limit
    UNAUTHORIZED = (401, "UNAUTHENTICATED", "unauthorized")  # no bearer token
    FORBIDDEN = (403, "PERMISSION_DENIED", "forbidden")  # wrong token, or admin disabled
    CONFLICT = (409, "FAILED_PRECONDITION", "conflict")  # e.g. nothing to roll back to
    UNSUPPORTED_MEDIA = (415, "INVALID_ARGUMENT", "unsupported_media")  # not a JSON content type
    RATE_LIMITED = (429, "RESOURCE_EXHAUSTED", "rate_limited")  # over the per-client rate
    UNAVAILABLE = (503, "UNAVAILABLE", "unavailable")  # feedback spool full, registry read-only, not ready
    INTERNAL = (500, "INTERNAL", "internal")  # a bug: counted, so the promotion guard sees it

    @property
    def http_status(self) -> int:
        return self.value[0]

    @property
    def grpc_code(self) -> str:
        return self.value[1]

    @property
    def reason(self) -> str:
        return self.value[2]


class ServingError(Exception):
    """A request the service refuses, with a message a caller can act on.

    >>> e = ServingError(Kind.NOT_FOUND, "unknown model 'x'; served models: ['iris']")
    >>> e.kind.http_status, e.kind.grpc_code
    (404, 'NOT_FOUND')
    """

    def __init__(self, kind: Kind, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after  # seconds, for a Retry-After header on 429 / 503

    def to_json(self) -> dict[str, str]:
        return {"error": self.message, "reason": self.kind.reason}
