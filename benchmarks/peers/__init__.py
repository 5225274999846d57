"""The peers `benchmarks/serving.py` races Perennial against, each serving the same learner.

* `model`: the registry's champion, loaded once, called per instance (shared by all peers);
* `starlette_app`: uvicorn + Starlette, one route (the Python limit);
* `bentoml_service`: the same route mounted in a BentoML 1.4 service configured as Perennial's;
* `mlserver_runtime`: an MLServer custom runtime (``MLModel``) over OIP REST and gRPC, run from
  the bench venv (`benchmarks/bench_env.py`).
"""
