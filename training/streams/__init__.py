"""Built-in streams, CSV and JSON Lines files, behind one function: `iter_stream`.

A stream is an iterator of ``(features, label)`` pairs. Names accepted by every command
that takes ``--stream NAME`` (``replay``, ``bootstrap``, ``produce``, ``demo``):

================  ============================================================
agrawal-drift     River's Agrawal generator, three abrupt function switches
agrawal           Agrawal, one function (stationary control); agrawal-fN picks function N (0-9)
sea-drift         River's SEA generator cycling its four concepts, 10% noise
digits-rotate     scikit-learn digits, rotated further at each phase, augmented
phishing          River's bundled phishing data (1,250 events)
shuttle           River's bundled shuttle data (58,000 events)
friedman-drift    regression: River's FriedmanDrift, two abrupt global drifts
friedman          regression: River's Friedman #1, one concept (stationary control)
PATH.csv          a CSV file; ``target`` names the label column
PATH.jsonl        a JSON Lines file (one object per line): text, tensors (nested lists)
================  ============================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from training.spec import Task
from training.streams import tabular
from training.streams.csv_stream import iter_csv
from training.streams.jsonl_stream import SUFFIXES as JSONL_SUFFIXES
from training.streams.jsonl_stream import iter_jsonl

Event = tabular.Event


@dataclass(frozen=True)
class StreamInfo:
    name: str
    default_events: int
    n_phases: int  # >1: abrupt drift at evenly spaced positions
    kind: str  # "tabular" or "image"
    description: str
    task: Task = Task.CLASSIFICATION


BUILTIN: dict[str, StreamInfo] = {
    "agrawal-drift": StreamInfo("agrawal-drift", 100_000, len(tabular.AGRAWAL_PHASES), "tabular",
                                "Agrawal with three abrupt function switches"),
    "agrawal": StreamInfo("agrawal", 50_000, 1, "tabular", "Agrawal, one function (no drift)"),
    "sea-drift": StreamInfo("sea-drift", 100_000, len(tabular.SEA_PHASES), "tabular",
                            "SEA cycling four concepts, 10% label noise"),
    "digits-rotate": StreamInfo("digits-rotate", 20_000, 4, "image",
                                "handwritten digits rotated further at each phase"),
    "phishing": StreamInfo("phishing", 1_250, 1, "tabular", "River's bundled phishing data"),
    "shuttle": StreamInfo("shuttle", 58_000, 1, "tabular", "River's bundled shuttle data"),
    "friedman-drift": StreamInfo("friedman-drift", 60_000, tabular.FRIEDMAN_PHASES, "tabular",
                                 "Friedman regression with two abrupt global drifts", Task.REGRESSION),
    "friedman": StreamInfo("friedman", 30_000, 1, "tabular", "Friedman regression, one concept (no drift)",
                           Task.REGRESSION),
}


def _agrawal_function(name: str) -> int | None:
    if name.startswith("agrawal-f") and name[9:].isdigit() and 0 <= int(name[9:]) <= 9:
        return int(name[9:])
    return None


def stream_info(name: str) -> StreamInfo:
    """What a stream is; CSV paths get a generic description."""
    if name in BUILTIN:
        return BUILTIN[name]
    function = _agrawal_function(name)
    if function is not None:
        return StreamInfo(name, 50_000, 1, "tabular", f"Agrawal, function {function} only (no drift)")
    if name.endswith(JSONL_SUFFIXES):
        return StreamInfo(name, 0, 1, "tabular", f"JSON Lines file {name}")
    if name.endswith(".csv") or Path(name).is_file():
        return StreamInfo(name, 0, 1, "tabular", f"CSV file {name}")
    raise ValueError(
        f"unknown stream {name!r}; use one of {', '.join(BUILTIN)} or a path to a .csv or .jsonl file"
    )


def iter_stream(name: str, n_events: int | None = None, seed: int = 42, target: str = "label") -> Iterator[Event]:
    """Iterate ``(features, label)`` of a built-in stream, a CSV or a JSON Lines file.

    >>> x, y = next(iter_stream("agrawal-drift", 10))
    >>> sorted(x)[:3], y in (0, 1)
    (['age', 'car', 'commission'], True)
    """
    info = stream_info(name)
    n = n_events if n_events is not None else (info.default_events or None)
    if name == "agrawal-drift":
        return tabular.agrawal_drift(n, seed)
    if name == "agrawal":
        return tabular.agrawal_stationary(n, seed)
    if _agrawal_function(name) is not None:
        return tabular.agrawal_stationary(n, seed, function=_agrawal_function(name))
    if name == "sea-drift":
        return tabular.sea_drift(n, seed)
    if name == "digits-rotate":
        from training.streams.digits import digits_rotate

        return digits_rotate(n_events=n, n_phases=info.n_phases, seed=seed)
    if name == "friedman-drift":
        return tabular.friedman_drift(n, seed)
    if name == "friedman":
        return tabular.friedman(n, seed)
    if name in ("phishing", "shuttle"):
        return tabular.bundled(name, n)
    if name.endswith(JSONL_SUFFIXES):
        return iter_jsonl(name, target=target, n_events=n)
    return iter_csv(name, target=target, n_events=n)
