"""A CSV file is a stream like the built-in ones: raw rows in file order — cells as the values
they spell, empty cells missing (None) — and errors that name the file, the line and what to
pass instead."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from training.replay import ReplayConfig, run_replay
from training.streams import iter_stream, stream_info


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_rows_become_features_and_labels_in_file_order(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "loans.csv", ["amount", "purpose", "age", "outcome"], [
        [1200.5, "car", 31, "repaid"],
        [300, "", 45, "default"],      # an empty cell is missing, not zero
        [50, "holiday", "", "repaid"],
    ])
    events = list(iter_stream(str(path), target="outcome"))
    assert events == [
        ({"amount": 1200.5, "purpose": "car", "age": 31}, "repaid"),
        ({"amount": 300, "purpose": None, "age": 45}, "default"),
        ({"amount": 50, "purpose": "holiday", "age": None}, "repaid"),
    ]
    assert list(iter_stream(str(path), 2, target="outcome")) == events[:2]
    assert stream_info(str(path)).kind == "tabular"


def test_integer_labels_stay_integers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "b.csv", ["x", "label"], [[0.1, 0], [0.9, 1]])
    assert [y for _, y in iter_stream(str(path))] == [0, 1]


@pytest.mark.parametrize(("header", "rows", "target", "message"), [
    (["x", "y"], [[1, 0]], "label", r"no target column 'label'; columns are \['x', 'y'\]; pass --target"),
    (["x", "label"], [[1, 0], [2, ""]], "label", r"b\.csv:3: empty label in column 'label'"),
], ids=["no target column", "empty label"])
def test_bad_files_are_refused_with_file_line_and_remedy(tmp_path: Path, header, rows, target, message) -> None:  # noqa: ANN001
    path = write_csv(tmp_path / "b.csv", header, rows)
    with pytest.raises(ValueError, match=message):
        list(iter_stream(str(path), target=target))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="CSV stream .*nope.csv does not exist"):
        list(iter_stream(str(tmp_path / "nope.csv")))


def test_replay_runs_over_a_csv_stream(tmp_path: Path) -> None:
    rows = [[*(x[k] for k in sorted(x)), y] for x, y in iter_stream("agrawal", 1_200, seed=5)]
    names = sorted(next(iter_stream("agrawal", 1, seed=5))[0])
    path = write_csv(tmp_path / "history.csv", [*names, "approved"], rows)
    result = run_replay(ReplayConfig(stream=str(path), target="approved", bootstrap_events=300,
                                     bootstrap=_small()))
    assert result["events"] == 900 and result["bootstrap_events"] == 300
    assert result["prequential"]["accuracy"] > 0.6


def _small():  # noqa: ANN202
    from training.bootstrap import BootstrapConfig

    return BootstrapConfig(candidates=("logreg",))
