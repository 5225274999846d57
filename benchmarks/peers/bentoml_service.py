"""A bare Starlette route mounted in a BentoML 1.4 service: BentoML's own ceiling.

The route of `starlette_app` (the same code), mounted the way Perennial mounts its routes
(``@bentoml.asgi_app``), the learner held by the service and found per request through
``bentoml.get_current_service()`` as Perennial finds its runtime, and the *same* BentoML
configuration as ``service/bento.py``: the access log off and every URL excluded from the
tracing middleware — both given in the ``@bentoml.service`` config, where a 1.4 service reads
them (``api_server.logging`` in ``BENTOML_CONFIG_OPTIONS`` is overridden by the service's
defaults, which is why the old baseline's option did nothing) — one worker, the same traffic
timeout; BentoML's request metrics stay on, as in Perennial. Run by `benchmarks/serving.py`::

    PEER_REGISTRY=... .venv/bin/python -m bentoml serve benchmarks.peers.bentoml_service:Plain \\
        --working-dir . --timeout-keep-alive 5
"""

from __future__ import annotations

import bentoml

from benchmarks.peers.model import Learner, load_learner
from benchmarks.peers.starlette_app import build_app

#: ``service/bento.py``'s ``bentoml_config`` with Perennial's defaults (access log and tracing
#: off), copied rather than imported: importing ``service.bento`` builds Perennial's service.
PERENNIAL_BENTOML_CONFIG: dict = {"logging": {"access": {"enabled": False}},
                                  "tracing": {"excluded_urls": [".*"]}}


def _learner() -> Learner:
    return bentoml.get_current_service().learner


@bentoml.asgi_app(build_app(_learner), path="/", name="plain-routes")
@bentoml.service(name="plain", workers=1, traffic={"timeout": 300}, **PERENNIAL_BENTOML_CONFIG)
class Plain:
    """Holds the learner; nothing else."""

    def __init__(self) -> None:
        self.learner, _ = load_learner()
