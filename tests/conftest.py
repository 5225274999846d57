"""Shared test helpers: a bootstrapped registry with a small River champion.

Tests build real collaborators (registry on a temp dir, learners) rather than mocks; only
the process boundaries (broker, trainer subprocess) live in ``tests/integration``.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: PyTorch's intra-op threads (one per core in each worker) would
    # fight for the same cores and made the tiny test networks 3-5x slower. Set before torch
    # is imported; the processes tests start inherit it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`make test` runs two pytest-xdist workers with ``--dist loadgroup``: every integration
    test goes to one worker, in file order, one at a time — they start brokers, trainers and
    servers and some of them time kills between checkpoints — while the other worker takes
    the in-process tests (the long replays are CPU-bound). On two cores that halves the wait
    without running two process-heavy tests side by side."""
    for item in items:
        if item.get_closest_marker("integration") is not None:
            item.add_marker(pytest.mark.xdist_group("integration"))


MODEL = "agr"
STREAM = "agrawal"
BOOTSTRAP_EVENTS = 500


def stream_events(n: int, seed: int = 7, skip: int = BOOTSTRAP_EVENTS) -> list[tuple[dict, object]]:
    """The events after the bootstrap part of the test stream (deterministic)."""
    from training.streams import iter_stream

    return list(itertools.islice(iter_stream(STREAM, n + skip, seed), skip, None))


def bootstrap_registry(root: Path, model: str = MODEL, seed: int = 7) -> tuple[list[str], list]:
    """Register a logistic-regression champion trained on the stream's first events.

    Returns the champion's feature names and classes.
    """
    from training.learners.candidates import logistic_regression
    from training.registry import Registry
    from training.streams import iter_stream

    learner = logistic_regression()
    for x, y in iter_stream(STREAM, BOOTSTRAP_EVENTS, seed):
        learner.learn_one(x, y)
    registry = Registry(root)
    info = registry.publish(model, learner, note="bootstrap (tests)")
    registry.promote(model, info.version, "bootstrap champion")
    return list(learner.n_features_in), list(learner.classes)


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    root = tmp_path / "registry"
    bootstrap_registry(root)
    return root


@pytest.fixture
def make_registry():  # noqa: ANN201
    """`bootstrap_registry(root, model)` as a fixture, so tests need not import conftest."""
    return bootstrap_registry


@pytest.fixture
def stream():  # noqa: ANN201
    """`stream_events(n, seed)`: the test stream after its bootstrap part."""
    return stream_events


@pytest.fixture
def processes(tmp_path: Path):  # noqa: ANN201
    """A `ProcessGroup` logging to ``tmp_path/logs``; every process it started is stopped at
    teardown (see `tests.helpers` for why there is one way to start processes)."""
    from service.demo.processes import ProcessGroup

    group = ProcessGroup(tmp_path / "logs")
    try:
        yield group
    finally:
        group.stop_all()
