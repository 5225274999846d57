"""An MLServer custom runtime serving Perennial's champion: the same learner, per instance.

What an MLServer user writes for a River-style model: an ``MLModel`` whose ``load`` reads the
model and whose ``predict`` decodes the request's tensor with MLServer's own codecs, calls
``predict_proba_one`` per row and encodes the outputs Perennial's OIP answers (``label``
BYTES, ``probabilities`` FP32 ``[n, n_classes]``). Input: the single ``features`` tensor
``[n, n_features]`` in the learner's feature order, as Perennial's OIP takes it. It runs in
the bench venv (MLServer cannot share the project's venv, see `benchmarks/bench_env.py`),
with the project's source on ``PYTHONPATH`` so `benchmarks.peers.model` loads the registry's
artifact; `benchmarks/serving.py` writes the ``settings.json`` / ``model-settings.json`` that
name this class and starts ``mlserver start``.
"""

from __future__ import annotations

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.types import InferenceRequest, InferenceResponse

from benchmarks.peers.model import load_learner, predict_one


class PerennialRuntime(MLModel):
    """The registry's champion behind MLServer's OIP REST and gRPC."""

    async def load(self) -> bool:
        self._learner, self._features = load_learner()
        self._classes = list(self._learner.classes)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        rows = NumpyCodec.decode_input(payload.inputs[0]).reshape(-1, len(self._features))
        labels, probabilities = [], []
        for row in rows.tolist():
            label, proba = predict_one(self._learner, dict(zip(self._features, row, strict=True)))
            labels.append(str(label))
            probabilities.append([proba.get(c, 0.0) for c in self._classes])
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                StringCodec.encode_output("label", labels),
                NumpyCodec.encode_output("probabilities", np.asarray(probabilities, dtype=np.float32)),
            ],
        )
