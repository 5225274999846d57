"""The one place where inference happens; HTTP, OIP-over-HTTP and gRPC only translate to it.

Why one data plane (MLServer's ``handlers/dataplane.py``): validation, prediction ids,
metrics, the prediction log and drift must behave the same whichever door a request came
through, so they live here and the transports stay thin. Every refusal is a `ServingError`
whose kind fixes the HTTP status and gRPC code, and is counted in
``perennial_request_errors_total{model,transport,reason}``.

Coroutines run on the server's event loop; model forwards run in the batcher's worker thread;
registry calls (admin, listing) run in a thread so a slow volume never stalls the loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio.to_thread
import numpy as np

from service.batch import Batch
from service.errors import Kind, ServingError
from service.feedback_rules import (
    FeedbackAuth,
    IssuedPredictions,
    RateLimiter,
    bearer_token,
    check_content_type,
    check_record_size,
    check_trust,
    tokens_match,
)
from service.feedback_validation import check_feedback
from service.model_holder import Champion, ModelHolder
from service.prediction_log import KafkaEventLog, encode_record
from service.predictions import InferResult, prediction_ids, predictions
from service.validation import (
    TENSOR_INPUT,
    TensorInput,
    batch_from_inputs,
    batch_from_instances,
)
from streaming.metrics import ServiceMetrics
from training.registry import IntegrityError, RegistryError, VersionNotFoundError

log = logging.getLogger(__name__)

class DataPlane:
    """Validate, predict, count, log — for every transport."""

    def __init__(
        self,
        holder: ModelHolder,
        metrics: ServiceMetrics,
        event_log: KafkaEventLog,
        *,
        max_instances: int = 1024,
        admin_token: str | None = None,
        log_predictions: bool = True,
        clock: Callable[[], float] = time.time,
        feedback_auth: FeedbackAuth | None = None,
        issued: IssuedPredictions | None = None,
        rate_limiter: RateLimiter | None = None,
        max_record_bytes: int = 1_000_000,
    ) -> None:
        self.holder = holder
        self.metrics = metrics
        self.event_log = event_log
        self.max_instances = max_instances
        self._admin_token = admin_token
        self._log_predictions = log_predictions and event_log.enabled
        self._clock = clock
        self.feedback_auth = feedback_auth or FeedbackAuth(())
        self.issued = issued or IssuedPredictions()
        self.rate_limiter = rate_limiter or RateLimiter(rate=0, burst=1)
        self.max_record_bytes = max_record_bytes

    # -- errors -----------------------------------------------------------------------------

    def refuse(self, error: ServingError, model: object, transport: str) -> ServingError:
        """Count a refusal (unknown model names are not used as labels) and return it."""
        label = model if isinstance(model, str) and model in self.holder.served() else ""
        self.metrics.request_errors.labels(model=label, transport=transport, reason=error.kind.reason).inc()
        return error

    def internal(self, exc: BaseException, model: object, transport: str) -> ServingError:
        """An unexpected exception (a bug): logged with its traceback, counted as reason ``internal``
        (what the promotion guard's ``internal_errors`` check watches), answered without details."""
        log.error("internal error answering a %s request for model %r", transport, model, exc_info=exc)
        error = ServingError(Kind.INTERNAL, f"internal error ({type(exc).__name__}); it is logged and counted")
        return self.refuse(error, model, transport)

    def champion(self, model: object, version: object = None) -> Champion:
        if not isinstance(model, str) or not model:
            raise ServingError(Kind.MALFORMED, f"'model' must be a non-empty string naming a served model, got {model!r}")
        champ = self.holder.get(model)
        if version not in (None, "", champ.version, str(champ.version)):
            raise ServingError(
                Kind.NOT_FOUND, f"model {model!r} version {version!r} is not served; the champion is version {champ.version}"
            )
        return champ

    # -- inference --------------------------------------------------------------------------

    async def predict(self, model: object, instances: object, transport: str = "http") -> dict:
        """The ``POST /predict`` operation: ``{model, version, predictions: [...]}``, each
        prediction ``{prediction_id, label, probabilities}`` or, for regression,
        ``{prediction_id, value}`` (`service.predictions`; the HTTP route writes the same
        answer as JSON with `service.predictions.predict_json`)."""
        result = await self.predict_result(model, instances, transport)
        champ = result.champion
        return {"model": champ.model, "version": champ.version, "predictions": predictions(result)}

    async def predict_result(self, model: object, instances: object, transport: str = "http") -> InferResult:
        """`predict`'s work: validate ``instances``, predict, count, log."""
        try:
            champ = self.champion(model)
            batch = batch_from_instances(instances, champ.validator, self.max_instances)
            return await self._infer(champ, batch)
        except ServingError as e:
            raise self.refuse(e, model, transport) from None
        except Exception as e:
            raise self.internal(e, model, transport) from e

    async def infer_inputs(
        self, model: object, inputs: list[TensorInput], missing: object = None,
        version: object = None, transport: str = "grpc",
    ) -> InferResult:
        """The OIP ``ModelInfer`` operation: one input per feature, or the single
        ``[batch, n_features]`` tensor of an all-numeric model; ``missing`` is the request
        parameter of that name (see `service.validation`)."""
        try:
            champ = self.champion(model, version)
            batch = batch_from_inputs(inputs, champ.validator, self.max_instances, missing)
            return await self._infer(champ, batch)
        except ServingError as e:
            raise self.refuse(e, model, transport) from None
        except Exception as e:
            raise self.internal(e, model, transport) from e

    async def infer_tensor(
        self, model: object, datatype: object, shape: object, data: np.ndarray | list | None,
        version: object = None, transport: str = "grpc",
    ) -> InferResult:
        """`infer_inputs` with the single ``features`` tensor (an all-numeric model's form)."""
        return await self.infer_inputs(model, [TensorInput(TENSOR_INPUT, datatype, shape, data)], None,
                                       version, transport)

    async def _infer(self, champ: Champion, batch: Batch) -> InferResult:
        champ.acquire()
        try:
            out = await champ.predict(batch)
        finally:
            champ.release()
        n = len(batch)
        ids = prediction_ids(n)
        if champ.is_classification:
            result = InferResult(champ, out, ids, index=out.argmax(axis=1))
        else:
            result = InferResult(champ, None, ids, values=out)
        champ.series.predictions.inc(n)
        self.issued.add(champ.model, ids)
        if self._log_predictions:
            self.event_log.log_predictions(champ.model, self._record(champ, batch, result), n)
        return result

    def _record(self, champ: Champion, batch: Batch, result: InferResult) -> dict:
        """The request's one prediction-log record (`streaming.schemas.PredictionBatchWire`):
        the validated raw rows (null for missing) and the outputs, as parallel lists."""
        record = {
            "model": champ.model,
            "version": champ.version,
            "timestamp": self._clock(),
            "prediction_ids": result.prediction_ids,
            "features": batch.rows,
        }
        if result.values is not None:
            record["values"] = result.values.tolist()
        else:
            record["labels"] = result.json_labels()
            record["classes"] = champ.class_keys
            record["probabilities"] = result.probabilities.tolist()
        return record

    # -- feedback ---------------------------------------------------------------------------

    def check_feedback_access(self, authorization: str | None, content_type: str | None,
                              transport: str = "http") -> bool:
        """Before the body is read: JSON only (415), the token when one is configured (401/403).

        Returns whether the request is trusted (it carried a valid feedback token).
        """
        try:
            check_content_type(content_type)
            return self.feedback_auth.check(authorization)
        except ServingError as e:
            self.metrics.feedback_refused.labels(model="", reason=e.kind.reason).inc()
            raise self.refuse(e, None, transport) from None

    async def feedback(self, body: object, transport: str = "http", *, trusted: bool = True,
                       client: str = "unknown") -> dict:
        """``POST /feedback``: one record or a list, made durable for ``<model>.feedback``.

        Answers only once the records are in the fsynced spool (see `service.prediction_log`);
        refusals are specific: 4xx for what the client must change, 429/503 with Retry-After for
        what it should retry unchanged.
        """
        first = body[0] if isinstance(body, list) and body else body
        model = first.get("model") if isinstance(first, dict) else None
        count = len(body) if isinstance(body, list) else 1
        try:
            try:
                self.rate_limiter.take(client, count)
                # labels and features through each model's spec validator (`check_feedback`)
                validators = {name: champ.validator for name, champ in self.holder.served().items()}
                records = check_feedback(body, self.max_instances, validators, self._clock)
                listed = isinstance(body, list)
                labeled = check_trust(records, trusted, self.issued, listed)
                for i, record in enumerate(records):
                    check_record_size(len(encode_record(record)), self.max_record_bytes,
                                      f"feedback record {i}" if listed else "feedback")
                by_model: dict[str, list[dict]] = {}
                for record in records:
                    by_model.setdefault(record["model"], []).append(record)
                await anyio.to_thread.run_sync(self._spool_feedback, by_model)
                self.issued.consume(labeled)
            except ServingError:
                raise
            except Exception as e:
                raise self.internal(e, model, transport) from e
        except ServingError as e:
            if e.kind is not Kind.INTERNAL:
                self.refuse(e, model, transport)
            label = model if isinstance(model, str) and model in self.holder.served() else ""
            self.metrics.feedback_refused.labels(model=label, reason=e.kind.reason).inc(count)
            raise
        for name, items in by_model.items():
            self.metrics.feedback_accepted.labels(model=name).inc(len(items))
        return {"accepted": len(records), "event_ids": [r["event_id"] for r in records]}

    def _spool_feedback(self, by_model: dict[str, list[dict]]) -> None:
        for name, items in by_model.items():
            self.event_log.send_feedback(name, items)

    # -- registry views and admin -----------------------------------------------------------

    async def list_models(self) -> dict:
        return await anyio.to_thread.run_sync(self._list_models)

    def _list_models(self) -> dict:
        """Every model in the registry; what cannot be read (a garbage alias file, a version whose
        metadata is corrupt) is reported as ``problems`` of that model instead of failing the list."""
        registry = self.holder.registry
        served = self.holder.served()
        out = []
        for name in registry.models():
            champ = served.get(name)
            problems: list[str] = []

            def read(what: str, fn, default=None, problems=problems):  # noqa: ANN001, ANN202
                try:
                    return fn()
                except Exception as e:  # one unreadable file must not hide the others
                    problems.append(f"{what}: {e}")
                    return default

            versions = read("versions", lambda name=name: registry.versions(name), [])
            out.append({
                "name": name,
                "champion": read("champion alias", lambda name=name: registry.alias(name, "champion")),
                "previous": read("previous alias", lambda name=name: registry.alias(name, "previous")),
                "served_version": champ.version if champ else None,
                "learner": champ.info.learner if champ else None,
                "feature_names": champ.features if champ else None,
                "classes": champ.json_classes if champ else None,
                "task": champ.task.value if champ else None,
                "spec": champ.spec.to_dict() if champ else None,
                "versions": [
                    {"version": v.version, "learner": v.learner, "parent": v.parent,
                     "created_at": v.created_at, "metrics": v.metrics, "note": v.note}
                    for v in versions
                ],
                "problems": problems,
            })
        return {"models": out, "refused": list(self.holder.refusals)}

    def check_admin(self, authorization: str | None) -> None:
        """Bearer-token check: 401 without a token, 403 with a wrong one or when disabled."""
        token = bearer_token(authorization)
        if token is None:
            raise ServingError(Kind.UNAUTHORIZED, "admin endpoints need 'Authorization: Bearer <token>'")
        if self._admin_token is None:
            raise ServingError(Kind.FORBIDDEN, "admin endpoints are disabled: PERENNIAL_ADMIN_TOKEN is not set")
        if not tokens_match(token, [self._admin_token]):
            raise ServingError(Kind.FORBIDDEN, "wrong admin token")

    async def admin(self, action: str, body: object, authorization: str | None) -> dict:
        """``POST /admin/promote`` ``{model, version, reason?}`` and ``/admin/rollback`` ``{model, reason?}``."""
        model = body.get("model") if isinstance(body, dict) else None
        try:
            self.check_admin(authorization)
            if not isinstance(body, dict) or not isinstance(model, str):
                raise ServingError(Kind.MALFORMED, "body must be a JSON object with a string 'model'")
            reason = body.get("reason") or f"{action} through the admin API"
            if not isinstance(reason, str):
                raise ServingError(Kind.MALFORMED, f"'reason' must be a string, got {reason!r}")
            if action == "promote":
                version = body.get("version")
                if isinstance(version, bool) or not isinstance(version, int):
                    raise ServingError(Kind.MALFORMED, f"'version' must be an integer, got {version!r}")
                return await anyio.to_thread.run_sync(self._promote, model, version, reason)
            return await anyio.to_thread.run_sync(self._rollback, model, reason)
        except ServingError as e:
            raise self.refuse(e, model, "http") from None
        except Exception as e:
            raise self.internal(e, model, "http") from e

    def _promote(self, model: str, version: int, reason: str) -> dict:
        with _registry_errors():
            self.holder.registry.promote(model, version, reason)
        self.holder.poll_once()  # swap now rather than at the next watch tick
        return {"model": model, "champion": version, "served_version": self._served(model)}

    def _rollback(self, model: str, reason: str) -> dict:
        with _registry_errors():
            version = self.holder.registry.rollback(model, reason)
        self.holder.poll_once()
        return {"model": model, "champion": version, "served_version": self._served(model)}

    def _served(self, model: str) -> int | None:
        champ = self.holder.served().get(model)
        return champ.version if champ else None


class _registry_errors:
    """Translate registry exceptions into serving errors (404 / 409)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            return False
        if isinstance(exc, VersionNotFoundError):
            raise ServingError(Kind.NOT_FOUND, str(exc)) from exc
        if isinstance(exc, IntegrityError):
            raise ServingError(Kind.CONFLICT, f"refused: {exc}") from exc
        if isinstance(exc, RegistryError):
            raise ServingError(Kind.CONFLICT, str(exc)) from exc
        if isinstance(exc, OSError):  # a read-only or full volume: the registry is fine, the write is not
            raise ServingError(
                Kind.UNAVAILABLE, f"the registry cannot be written ({exc.strerror or exc}: {exc.filename}); "
                "promote or roll back where the registry volume is writable (the trainer), or retry later"
            ) from exc
        return False
