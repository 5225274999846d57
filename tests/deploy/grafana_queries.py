"""Every PromQL query of the Grafana dashboards, ready to send to a real Prometheus.

Pure helper (standard library only) shared by ``tests/deploy`` and the closed-loop
integration test, which evaluates each query through Prometheus' HTTP API and fails when one
returns no series::

    from tests.deploy.grafana_queries import panel_queries   # or load this file by path

    for q in panel_queries():                       # panel targets, variables resolved
        result = prom_query(q.expr)                 # GET /api/v1/query?query=...
        assert result, f"{q.where}: no series for {q.expr}"

Grafana-only syntax is resolved on the way: template variables (``$model``, ``${model}``,
``${model:regex}``, ``[[model]]``) become a value (``.*`` for "All" by default, or a concrete
model name), Grafana's interval variables (``$__rate_interval``, ``$__interval``,
``$__range``, ...) become durations, and a query variable's ``label_values(selector, label)``
becomes the equivalent PromQL ``group by (label) (selector)``.

>>> substitute('rate(x{model=~"$model"}[$__rate_interval])')
'rate(x{model=~".*"}[1m])'
>>> substitute('up{model="${model}"}', {"model": "credit"})
'up{model="credit"}'
>>> label_values_to_promql('label_values({__name__=~"a|b"}, model)')
'group by (model) ({__name__=~"a|b"})'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "dashboards"

#: Values of Grafana's built-in variables, chosen for a Prometheus that scrapes every few
#: seconds: ``1m`` holds several samples, so ``rate()`` has two points to work with.
BUILTIN_DEFAULTS: dict[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
    "__interval_ms": "15000",
}
#: The dashboards' own variables, as Grafana's "All" option sends them.
VARIABLE_DEFAULTS: dict[str, str] = {"model": ".*"}

_VAR = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$", re.S)


@dataclass(frozen=True)
class Query:
    """One query of one dashboard: where it is (for messages) and its PromQL."""

    dashboard: str  # dashboard uid
    panel: str  # panel title, variable name or annotation name
    ref_id: str
    kind: str  # "panel", "variable" or "annotation"
    expr: str

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.kind} {self.panel!r} / {self.ref_id}"


def substitute(expr: str, variables: Mapping[str, str] | None = None) -> str:
    """``expr`` with every Grafana variable replaced; unknown variables raise ``KeyError``."""
    values = {**BUILTIN_DEFAULTS, **VARIABLE_DEFAULTS, **(variables or {})}

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}; known: {sorted(values)}")
        return values[name]

    return _VAR.sub(repl, expr)


def label_values_to_promql(query: str) -> str:
    """Grafana's ``label_values([selector, ]label)`` as a PromQL query with the same answer."""
    m = _LABEL_VALUES.match(query)
    if not m:
        return query
    selector = m.group("selector") or '{__name__=~".+"}'
    return f"group by ({m.group('label')}) ({selector})"


def load_dashboards(directory: Path = DASHBOARD_DIR) -> dict[str, dict]:
    """File name → parsed dashboard JSON, for every ``*.json`` in ``directory``."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))}


def iter_panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, including panels nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def raw_queries(dashboard: dict) -> Iterator[Query]:
    """The queries of a dashboard exactly as written (Grafana variables unresolved)."""
    uid = dashboard.get("uid", "?")
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield Query(uid, panel.get("title", ""), target.get("refId", ""), "panel", target["expr"])
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            q = var.get("query")
            text = q.get("query", "") if isinstance(q, dict) else (q or "")
            if text:
                yield Query(uid, var.get("name", ""), "var", "variable", text)
    for ann in dashboard.get("annotations", {}).get("list", []):
        if ann.get("expr"):
            yield Query(uid, ann.get("name", ""), "annotation", "annotation", ann["expr"])


def resolve(query: Query, variables: Mapping[str, str] | None = None) -> Query:
    """``query`` as PromQL a Prometheus server accepts."""
    expr = substitute(query.expr, variables)
    if query.kind == "variable":
        expr = label_values_to_promql(expr)
    return Query(query.dashboard, query.panel, query.ref_id, query.kind, expr)


def panel_queries(directory: Path = DASHBOARD_DIR, variables: Mapping[str, str] | None = None,
                  kinds: tuple[str, ...] = ("panel", "variable")) -> list[Query]:
    """Every query of every dashboard in ``directory``, of the given kinds, resolved.

    Annotations are left out by default: they are filters that return series only while an
    event happens (``increase(...) > 0``), so "no series" is their normal answer.
    """
    return [
        resolve(q, variables)
        for dashboard in load_dashboards(directory).values()
        for q in raw_queries(dashboard)
        if q.kind in kinds
    ]
