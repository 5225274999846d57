"""Who may teach the model: the trust rules of ``POST /feedback``, checked before a label is kept.

Why: feedback is training data. Without rules, anyone who can reach the service can move the
served model (8,000 labels "1" in a second did, in the adversarial pass). So, in order:

1. **JSON only** (`check_content_type`): ``application/json`` or ``application/*+json``,
   else 415 — an HTML form or a ``text/plain`` fetch from a web page cannot post labels
   without a CORS preflight the service never grants.
2. **A bearer token when one is configured** (`FeedbackAuth`): ``PERENNIAL_FEEDBACK_TOKEN``
   holds one or more comma-separated tokens; without ``Authorization: Bearer <token>`` 401,
   with a wrong one 403, compared in constant time against every configured token.
3. **Without a token configured, only labels for predictions this process made**
   (`IssuedPredictions`): a label-only record whose ``prediction_id`` this service issued
   (bounded memory, each id labeled once). A record that brings its own ``features`` injects
   training data, so it needs a token (403 otherwise).
4. **A per-client rate limit** (`RateLimiter`): a token bucket of records per client address;
   over it, 429 with ``Retry-After``.
5. **Records that fit**: labels and features checked by the model spec's validator
   (`service.feedback_validation.check_feedback`), at most ``max_record_bytes`` encoded
   (`check_record_size`; Kafka's 1 MiB).

>>> bearer_token("bearer abc"), bearer_token("Basic abc"), bearer_token(None)
('abc', None, None)
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from service.errors import Kind, ServingError

JSON_TYPES = "application/json or application/<something>+json"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme in any case), or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def tokens_match(given: str, accepted: Sequence[str]) -> bool:
    """Constant-time comparison against every accepted token (no early exit on the first match)."""
    ok = False
    for token in accepted:
        ok |= hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))
    return ok


def check_content_type(content_type: str | None) -> None:
    """415 unless the body is declared as JSON.

    >>> check_content_type("application/json; charset=utf-8")
    >>> check_content_type("text/plain")
    Traceback (most recent call last):
    ...
    service.errors.ServingError: Content-Type 'text/plain' is not accepted; send application/json or application/<something>+json
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    raise ServingError(Kind.UNSUPPORTED_MEDIA, f"Content-Type {content_type or '(none)'!r} is not accepted; send {JSON_TYPES}")


class FeedbackAuth:
    """The configured feedback tokens; ``check`` says whether a request is trusted."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = [t for t in (t.strip() for t in tokens) if t]

    @classmethod
    def from_setting(cls, value: str | None) -> FeedbackAuth:
        return cls((value or "").split(","))

    @property
    def required(self) -> bool:
        return bool(self.tokens)

    def check(self, authorization: str | None) -> bool:
        """True for a request with a valid token; False when no token is configured (untrusted)."""
        if not self.required:
            return False
        token = bearer_token(authorization)
        if token is None:
            raise ServingError(Kind.UNAUTHORIZED, "/feedback needs 'Authorization: Bearer <token>' "
                               "(a token of PERENNIAL_FEEDBACK_TOKEN)")
        if not tokens_match(token, self.tokens):
            raise ServingError(Kind.FORBIDDEN, "wrong feedback token")
        return True


class IssuedPredictions:
    """The most recent prediction ids this process answered, each usable for one label.

    Bounded (oldest forgotten first). Per process: with several workers or replicas a label
    must reach the process that made the prediction, or come with a feedback token (README).
    The ids of one request (``<base>-0`` … ``<base>-<n-1>``, `service.dataplane.prediction_ids`)
    are kept as one entry, so remembering a request costs the same for 1 or 1,000 instances;
    any other id is kept on its own.

    >>> ids = IssuedPredictions(capacity=2)
    >>> ids.add("m", ["a", "b", "c"]); ids.model_of("a"), ids.model_of("c")
    (None, 'm')
    >>> ids.consume(["c"]); ids.model_of("c") is None
    True
    >>> ids = IssuedPredictions(capacity=10)
    >>> ids.add("m", ["f00-0", "f00-1", "f00-2"]); ids.model_of("f00-2"), ids.model_of("f00-3"), ids.model_of("f00-01")
    ('m', None, None)
    >>> ids.consume(["f00-1"]); ids.model_of("f00-1"), ids.model_of("f00-0")
    (None, 'm')
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        # key -> [model, n, labeled indexes]: n == 0 for a single id, else the ids key-0 … key-(n-1)
        self._ids: OrderedDict[str, list] = OrderedDict()
        self._count = 0  # ids remembered (a range counts its n)
        self._lock = threading.Lock()

    def add(self, model: str, ids: Sequence[str]) -> None:
        n = len(ids)
        base = ids[0][:-2] if n and ids[0].endswith("-0") else None
        with self._lock:
            if base and (n == 1 or ids[-1] == f"{base}-{n - 1}"):
                self._ids[base] = [model, n, set()]
                self._count += n
            else:
                for pid in ids:
                    if self._ids.get(pid) is None:
                        self._count += 1
                    self._ids[pid] = [model, 0, None]
            while self._count > self.capacity and self._ids:
                _, (_, size, _) = self._ids.popitem(last=False)
                self._count -= max(size, 1)

    def _find(self, prediction_id: str) -> tuple[list, int] | None:
        """The entry of an issued, not yet labeled id and its index (-1 for a single id)."""
        entry = self._ids.get(prediction_id)
        if entry is not None and entry[1] == 0:
            return entry, -1
        base, _, index = prediction_id.rpartition("-")
        entry = self._ids.get(base) if base else None
        if entry is None or not index.isdigit() or (index != "0" and index[0] == "0"):
            return None
        i = int(index)
        if i >= entry[1] or i in entry[2]:
            return None
        return entry, i

    def model_of(self, prediction_id: str) -> str | None:
        if not isinstance(prediction_id, str):
            return None
        with self._lock:
            found = self._find(prediction_id)
            return found[0][0] if found else None

    def consume(self, ids: Sequence[str]) -> None:
        with self._lock:
            for pid in ids:
                found = self._find(pid)
                if found is None:
                    continue
                entry, i = found
                if i < 0:
                    del self._ids[pid]
                    self._count -= 1
                else:
                    entry[2].add(i)


class RateLimiter:
    """A token bucket of records per client address: ``rate`` per second, up to ``burst`` at once.

    A request costs its number of records (at most ``burst``, so the largest request can
    pass when the bucket is full). Buckets of the least recently seen clients are forgotten
    beyond ``max_clients``, so the table stays bounded. ``rate == 0`` disables the limit.

    >>> now = [0.0]
    >>> limiter = RateLimiter(rate=10, burst=20, clock=lambda: now[0])
    >>> limiter.take("c", 20); limiter.wait_s("c", 1)
    0.1
    """

    def __init__(self, rate: float, burst: int, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.max_clients, self._clock = rate, burst, max_clients, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)
        self._lock = threading.Lock()

    def _level(self, client: str, now: float) -> float:
        tokens, at = self._buckets.get(client, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.rate)

    def wait_s(self, client: str, cost: int) -> float:
        """Seconds until ``cost`` records would be allowed (0 when they are now)."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            missing = min(cost, self.burst) - self._level(client, self._clock())
        return max(0.0, round(missing / self.rate, 6))

    def take(self, client: str, cost: int) -> None:
        """Spend ``cost`` records of ``client``'s bucket, or raise 429 with Retry-After."""
        if self.rate <= 0:
            return
        cost = min(cost, self.burst)
        with self._lock:
            now = self._clock()
            level = self._level(client, now)
            if level < cost:
                wait = (cost - level) / self.rate
                raise ServingError(
                    Kind.RATE_LIMITED,
                    f"client {client} is over the feedback rate limit ({self.rate:g} records/s, bursts of "
                    f"{self.burst}); retry in {wait:.2f}s",
                    retry_after=max(1, math.ceil(wait)),
                )
            self._buckets[client] = (level - cost, now)
            self._buckets.move_to_end(client)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)


def check_trust(records: Sequence[dict], trusted: bool, issued: IssuedPredictions, listed: bool) -> list[str]:
    """Refuse what an untrusted request may not send; the prediction ids it labels (to consume)."""
    if trusted:
        return []
    ids: list[str] = []
    for i, record in enumerate(records):
        where = f"feedback record {i}" if listed else "feedback"
        if record.get("features") is not None:
            raise ServingError(
                Kind.FORBIDDEN, f"{where} brings its own 'features', which is training data: it needs a feedback "
                "token (PERENNIAL_FEEDBACK_TOKEN). Without one, send label-only records "
                "{model, prediction_id, label} for predictions this service made"
            )
        pid, model = record.get("prediction_id"), record.get("model")
        issued_for = issued.model_of(pid)
        if issued_for is None or pid in ids:
            raise ServingError(
                Kind.NOT_FOUND, f"{where}: prediction_id {pid!r} was not issued by this service process, was "
                f"labeled already, or is older than its {issued.capacity} most recent predictions; label "
                "predictions you got from this service once each, or send feedback with a token"
            )
        if issued_for != model:
            raise ServingError(
                Kind.INVALID, f"{where}: prediction_id {pid!r} is a prediction of model {issued_for!r}, not {model!r}"
            )
        ids.append(pid)
    return ids


def check_record_size(encoded_size: int, max_record_bytes: int, where: str) -> None:
    """A record must fit below Kafka's message limit; labels and features are the model spec
    validator's (`service.feedback_validation.check_feedback`)."""
    if encoded_size > max_record_bytes:
        raise ServingError(
            Kind.TOO_LARGE, f"{where} is {encoded_size} bytes as JSON; at most {max_record_bytes} bytes per record "
            "are accepted (PERENNIAL_MAX_RECORD_BYTES, below Kafka's 1 MiB message limit)"
        )

