"""deploy/grafana: provisioning and dashboards parse, follow Grafana's dashboard schema, match
their generator, query only declared metrics, and every query is valid PromQL."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from . import catalog
from .deploy_files import GRAFANA_DIR, compose, load_yaml, promtool, promtool_path
from .grafana_queries import (
    DASHBOARD_DIR,
    iter_panels,
    label_values_to_promql,
    load_dashboards,
    panel_queries,
    raw_queries,
    resolve,
    substitute,
)
from .promql import grouping_labels, metric_names, selectors

DATASOURCES = sorted((GRAFANA_DIR / "provisioning" / "datasources").glob("*.yml"))
PROVIDERS = sorted((GRAFANA_DIR / "provisioning" / "dashboards").glob("*.yml"))
DASHBOARDS = load_dashboards()

#: What issue 4 asks each dashboard to show: a panel title matching each pattern.
REQUIRED_PANELS = {
    "perennial-service": [r"request rate", r"latency", r"5xx|error|refused", r"served version", r"batch size"],
    "perennial-learning": [r"accuracy by learner and role", r"F1 by learner and role", r"drift", r"promotion",
                           # issue 9: error panels for regression models
                           r"MAE by learner and role", r"RMSE by learner and role", r"R² by learner and role",
                           r"live MAE per served version"],
    "perennial-data": [r"PSI", r"label delay", r"join hit rate", r"missing rate"],
    "perennial-pipeline": [r"consumed.*learned.*dead-lettered", r"lag", r"checkpoint"],
}


def _generator():
    spec = importlib.util.spec_from_file_location("perennial_grafana_generate", GRAFANA_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _datasource_uid() -> str:
    sources = [ds for path in DATASOURCES for ds in load_yaml(path)["datasources"]]
    prometheus = [ds for ds in sources if ds["type"] == "prometheus"]
    assert len(prometheus) == 1, f"expected one provisioned Prometheus datasource, got {prometheus}"
    return prometheus[0]["uid"]


# -- provisioning -----------------------------------------------------------------------------


def test_datasource_points_at_the_compose_prometheus() -> None:
    ds = [ds for path in DATASOURCES for ds in load_yaml(path)["datasources"]][0]
    assert ds["uid"] and ds["access"] == "proxy"
    prometheus = compose()["services"]["prometheus"]
    published = {int(p.split(":")[-1]) for p in prometheus.get("ports", [])}
    m = re.fullmatch(r"http://([\w.-]+):(\d+)/?", ds["url"])
    assert m, ds["url"]
    assert m.group(1) == "prometheus" and int(m.group(2)) in published | {9090}


def test_dashboard_provider_path_is_where_compose_mounts_the_dashboards() -> None:
    providers = [p for path in PROVIDERS for p in load_yaml(path)["providers"]]
    assert providers and all(p["type"] == "file" for p in providers)
    mounts = {}
    for volume in compose()["services"]["grafana"]["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = (Path(__file__).resolve().parents[2] / "deploy" / source).resolve()
    for p in providers:
        path = p["options"]["path"]
        assert path in mounts, f"provider path {path} is not a grafana volume in docker-compose.yml"
        assert mounts[path] == DASHBOARD_DIR.resolve()
    provisioning = mounts.get("/etc/grafana/provisioning")
    assert provisioning == (GRAFANA_DIR / "provisioning").resolve()


# -- dashboards -------------------------------------------------------------------------------


def test_four_dashboards_with_unique_uids() -> None:
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert sorted(uids) == sorted(REQUIRED_PANELS), uids
    assert len(set(uids)) == len(uids)
    assert all(len(u) <= 40 for u in uids), "Grafana uids are at most 40 characters"


def test_checked_in_dashboards_match_their_generator() -> None:
    generated = _generator().build_dashboards()
    assert sorted(generated) == sorted(DASHBOARDS), "dashboard files differ from the generator's list"
    for name, obj in generated.items():
        assert obj == DASHBOARDS[name], (
            f"deploy/grafana/dashboards/{name} is stale: run .venv/bin/python deploy/grafana/generate.py"
        )


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_schema(name: str) -> None:
    d = DASHBOARDS[name]
    uid = _datasource_uid()
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "time"):
        assert key in d, f"{name}: no {key}"
    assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36
    panels = list(iter_panels(d))
    assert panels, f"{name}: no panels"
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"
    cells: dict[tuple[int, int], str] = {}
    for p in panels:
        where = f"{name} / {p.get('title')!r}"
        assert p.get("title") and p.get("type"), where
        g = p["gridPos"]
        assert all(isinstance(g[k], int) for k in "hwxy"), f"{where}: gridPos {g}"
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["y"] >= 0 and g["x"] + g["w"] <= 24, where
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{where} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == uid, f"{where}: datasource uid is not the provisioned {uid!r}"
        targets = p.get("targets", [])
        assert targets, f"{where}: no query"
        refs = [t["refId"] for t in targets]
        assert len(set(refs)) == len(refs), f"{where}: duplicate refIds"
        for t in targets:
            assert t.get("expr", "").strip(), f"{where}: target {t.get('refId')} has no expr"
            assert t.get("datasource", p["datasource"])["uid"] == uid, f"{where}: target datasource"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_has_the_model_variable(name: str) -> None:
    variables = {v["name"]: v for v in DASHBOARDS[name]["templating"]["list"]}
    assert "model" in variables, f"{name}: no `model` template variable"
    var = variables["model"]
    assert var["type"] == "query" and var["datasource"]["uid"] == _datasource_uid()
    assert var.get("includeAll") and var.get("allValue") == ".*" and var.get("multi")


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_shows_what_the_issue_asks(name: str) -> None:
    d = DASHBOARDS[name]
    titles = [p["title"] for p in iter_panels(d)]
    for pattern in REQUIRED_PANELS[d["uid"]]:
        assert any(re.search(pattern, t, re.I) for t in titles), f"{name}: no panel matching {pattern!r} in {titles}"


def test_learning_dashboard_annotates_promotions_and_rollbacks() -> None:
    learning = next(d for d in DASHBOARDS.values() if d["uid"] == "perennial-learning")
    exprs = {a["name"]: a.get("expr", "") for a in learning["annotations"]["list"]}
    assert "perennial_promotions_total" in exprs.get("Promotions", "")
    assert "perennial_rollbacks_total" in exprs.get("Rollbacks", "")


# -- queries ----------------------------------------------------------------------------------

ALL_QUERIES = [q for d in DASHBOARDS.values() for q in raw_queries(d)]


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.where)
def test_query_uses_declared_metrics_and_labels(query) -> None:
    declared = catalog.declared()
    expr = resolve(query).expr
    used = metric_names(expr)
    assert used, f"{query.where}: selects no metric: {expr}"
    unknown = used - declared.keys()
    assert not unknown, f"{query.where}: {sorted(unknown)} not declared in streaming/metrics.py (nor BentoML's)"
    known = set(catalog.TARGET_LABELS) | {"le"}
    for name in used:
        known |= catalog.allowed_labels(name, declared[name])
    for name, labels in selectors(expr):
        allowed = catalog.allowed_labels(name, declared[name])
        assert set(labels) <= allowed, f"{query.where}: {name} has no label(s) {set(labels) - allowed}"
    assert grouping_labels(expr) <= known, f"{query.where}: unknown grouping labels {grouping_labels(expr) - known}"


@pytest.mark.parametrize("query", [q for q in ALL_QUERIES if q.kind == "panel"], ids=lambda q: q.where)
def test_panel_query_follows_the_model_variable(query) -> None:
    """A panel on a per-model metric filters by ``$model``, so the dropdown means something."""
    declared = catalog.declared()
    for name, labels in selectors(query.expr):
        if "model" in declared[name].labels:
            assert "model" in labels and "$model" in query.expr, f"{query.where}: {name} not filtered by $model"
    for name in metric_names(resolve(query).expr):
        if "model" in declared[name].labels:
            assert re.search(rf"\b{name}\{{", query.expr), f"{query.where}: {name} without a model matcher"


def test_every_task_metric_has_a_panel_and_no_panel_mixes_tasks() -> None:
    """Task-aware dashboards: each task's scores are shown, and a panel belongs to one task at
    most (the closed-loop test proves the classification ones, test_dashboard_tasks the
    regression ones, each against a model of its task)."""
    from streaming.metrics import TASK_METRICS

    shown: dict[str, set[str]] = {task: set() for task in TASK_METRICS}
    for q in ALL_QUERIES:
        task = catalog.task_of(q.expr)  # raises on a mix
        if task is not None:
            shown[task] |= metric_names(q.expr) & TASK_METRICS[task]
    assert shown == {task: set(names) for task, names in TASK_METRICS.items()}
    with pytest.raises(ValueError, match="mixes"):
        catalog.task_of("perennial_online_accuracy - perennial_online_mae")


@pytest.mark.skipif(promtool_path() is None, reason="promtool not found on PATH (apt-get install prometheus)")
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each resolved query (panels, variables, annotations) as a recording rule."""
    queries = panel_queries(kinds=("panel", "variable", "annotation"))
    group = {"name": "grafana-queries", "rules": [
        {"record": f"grafana:query_{i}:check", "expr": q.expr} for i, q in enumerate(queries)
    ]}
    import yaml

    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [group]}, width=10_000), encoding="utf-8")
    result = promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr + "\n" + "\n".join(
        f"query_{i}: {q.where}: {q.expr}" for i, q in enumerate(queries))


# -- the helper the closed-loop test uses -----------------------------------------------------


def test_helper_resolves_every_grafana_variable() -> None:
    queries = panel_queries(kinds=("panel", "variable", "annotation"))
    assert len(queries) >= 40
    for q in queries:
        assert "$" not in q.expr and "[[" not in q.expr, f"{q.where}: unresolved variable in {q.expr}"
        assert not q.expr.lstrip().startswith("label_values"), q.where
    concrete = panel_queries(variables={"model": "credit"})
    assert any('model=~"credit"' in q.expr for q in concrete)
    assert {q.kind for q in panel_queries()} == {"panel", "variable"}


def test_helper_refuses_unknown_variables() -> None:
    with pytest.raises(KeyError, match="nope"):
        substitute("x{a=\"$nope\"}")
    assert label_values_to_promql("label_values(up, job)") == "group by (job) (up)"
    assert label_values_to_promql("label_values(job)") == 'group by (job) ({__name__=~".+"})'
