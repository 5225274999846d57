"""Merging queued prediction records (`service.prediction_records.coalesce`): only records of
the same model, version and outputs, in order, within the size and time limits."""

from __future__ import annotations

from service.prediction_records import coalesce, merge


def record(ids: list[str], ts: float = 0.0, version: int = 1, classes: list[str] | None = ("0", "1")) -> dict:
    r = {"model": "m", "version": version, "timestamp": ts, "prediction_ids": ids,
         "features": [{"x": float(i)} for i, _ in enumerate(ids)]}
    if classes is None:
        r["values"] = [0.5] * len(ids)
    else:
        r.update(labels=[1] * len(ids), classes=list(classes), probabilities=[[0.25, 0.75]] * len(ids))
    return r


def item(ids: list[str], **kw) -> tuple[str, dict, int]:
    return ("m", record(ids, **kw), len(ids))


def test_a_record_alone_is_left_as_it_is():
    one = item(["a-0"])
    assert coalesce([one]) == [one] and coalesce([one])[0][1] is one[1]


def test_merged_lists_stay_parallel_and_in_order():
    model, merged, count = merge([item(["a-0", "a-1"], ts=1.0), item(["b-0"], ts=1.01)])
    assert (model, count, merged["timestamp"], merged["version"]) == ("m", 3, 1.0, 1)
    assert merged["prediction_ids"] == ["a-0", "a-1", "b-0"]
    for column in ("features", "labels", "probabilities"):
        assert len(merged[column]) == 3
    assert merged["features"][2] == {"x": 0.0} and merged["classes"] == ["0", "1"]


def test_only_records_of_the_same_version_and_outputs_are_merged():
    items = [item(["a-0"]), item(["b-0"]), item(["c-0"], version=2), item(["d-0"], version=2),
             item(["e-0"], version=2, classes=None), item(["f-0"], version=2, classes=("1", "0"))]
    groups = coalesce(items)
    assert [g[1]["prediction_ids"] for g in groups] == [["a-0", "b-0"], ["c-0", "d-0"], ["e-0"], ["f-0"]]
    assert (groups[0][0], groups[0][2]) == ("m", 2)


def test_merging_stops_at_the_prediction_and_time_limits():
    items = [item([f"{i}-0", f"{i}-1"], ts=i * 0.1) for i in range(6)]
    assert [g[2] for g in coalesce(items, max_predictions=5)] == [4, 4, 4]
    assert [g[1]["timestamp"] for g in coalesce(items, max_span_s=0.25)] == [0.0, 0.30000000000000004]
    whole = coalesce(items, max_span_s=1.0)
    assert len(whole) == 1 and whole[0][2] == 12
