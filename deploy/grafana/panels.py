"""Building blocks of Perennial's Grafana dashboards: panels, targets, layout, variables.

`generate.py` composes the four dashboards from these; this module knows Grafana's JSON
model, that one knows what Perennial shows. Standard library only.
"""

from __future__ import annotations

DATASOURCE_UID = "perennial-prometheus"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39
M = 'model=~"$model"'
RI = "$__rate_interval"
NOT_PROBES = 'endpoint!~"/metrics|/v2/health/.*|/livez|/readyz|/healthz"'
ZERO = " or on() vector(0)"


# -- building blocks ------------------------------------------------------------------------


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> dict:
    return {
        "refId": ref,
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "editorMode": "code",
    }


def _targets(queries: list[tuple[str, str]], instant: bool = False) -> list[dict]:
    return [target(e, legend, chr(ord("A") + i), instant) for i, (e, legend) in enumerate(queries)]


def timeseries(title: str, description: str, queries: list[tuple[str, str]], unit: str = "short",
               *, w: int = 12, h: int = 8, min_: float | None = None, max_: float | None = None,
               bars: bool = False, stack: bool = False, thresholds: list[tuple[float, str]] | None = None,
               steps: bool = False) -> dict:
    defaults: dict = {
        "unit": unit,
        "custom": {
            "drawStyle": "bars" if bars else "line",
            "lineInterpolation": "stepAfter" if steps else "linear",
            "fillOpacity": 60 if bars else 10,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        },
    }
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    if thresholds:
        defaults["thresholds"] = _thresholds(thresholds)
        defaults["custom"]["thresholdsStyle"] = {"mode": "dashed"}
    return _panel("timeseries", title, description, _targets(queries), defaults, {
        "legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                   "calcs": ["lastNotNull", "max"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }, (w, h))


def stat(title: str, description: str, queries: list[tuple[str, str]], unit: str = "short",
         *, w: int = 6, h: int = 4, thresholds: list[tuple[float, str]] | None = None,
         decimals: int | None = None) -> dict:
    defaults: dict = {"unit": unit, "thresholds": _thresholds(thresholds or [])}
    if decimals is not None:
        defaults["decimals"] = decimals
    return _panel("stat", title, description, _targets(queries), defaults, {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "area",
        "textMode": "value_and_name",
        "justifyMode": "auto",
        "orientation": "auto",
    }, (w, h))


def table(title: str, description: str, queries: list[tuple[str, str]], *, w: int = 12, h: int = 6) -> dict:
    return _panel("table", title, description, [dict(t, format="table") for t in _targets(queries, instant=True)],
                  {}, {"showHeader": True}, (w, h),
                  transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}])


def row(title: str) -> dict:
    """A row header (expanded): it groups the panels laid out below it, up to the next row."""
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


def _panel(kind: str, title: str, description: str, targets: list[dict], defaults: dict, options: dict,
           size: tuple[int, int], **extra: object) -> dict:
    """What every panel has; `_size` is consumed by `layout`."""
    return {"type": kind, "title": title, "description": description, "datasource": DATASOURCE,
            "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []}, "options": options,
            **extra, "_size": size}


def _thresholds(steps: list[tuple[float, str]]) -> dict:
    return {"mode": "absolute",
            "steps": [{"color": "green", "value": None}] + [{"color": c, "value": v} for v, c in steps]}


def layout(panels: list[dict]) -> list[dict]:
    """Give panels ids and gridPos, filling rows of Grafana's 24-column grid left to right."""
    x = y = row_h = 0
    out = []
    for i, panel in enumerate(panels, start=1):
        w, h = panel.pop("_size")
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        out.append({"id": i, **panel, "gridPos": {"h": h, "w": w, "x": x, "y": y}})
        x, row_h = x + w, max(row_h, h)
    return out


def model_variable() -> dict:
    """The ``model`` variable: every model the service serves or a trainer trains."""
    query = 'label_values({__name__=~"perennial_served_version|perennial_model_events_learned"}, model)'
    return {
        "name": "model",
        "label": "Model",
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }


def event_annotations() -> list[dict]:
    """Promotions and rollbacks as annotations on every time series panel."""
    builtin = {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }

    def on_counter(name: str, metric: str, color: str, verb: str) -> dict:
        return {
            "name": name,
            "datasource": DATASOURCE,
            "enable": True,
            "hide": False,
            "iconColor": color,
            "expr": f"sum by (model) (increase({metric}{{{M}}}[1m])) > 0",
            "step": "1m",
            "titleFormat": name.rstrip("s"),
            "textFormat": "{{model}} " + verb,
            "tagKeys": "model",
            "useValueForTime": False,
        }

    return [
        builtin,
        on_counter("Promotions", "perennial_promotions_total", "green", "promoted a challenger to champion"),
        on_counter("Rollbacks", "perennial_rollbacks_total", "red", "rolled back to the previous champion"),
    ]


def dashboard(uid: str, title: str, description: str, panels: list[dict]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["perennial"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "version": 1,
        "links": [{"type": "dashboards", "tags": ["perennial"], "asDropdown": True, "title": "Perennial"}],
        "annotations": {"list": event_annotations()},
        "templating": {"list": [model_variable()]},
        "panels": layout(panels),
    }


def quantiles(metric: str, by: str, qs: tuple[float, ...], selector: str, legend_prefix: str = "") -> list:
    return [
        (f"histogram_quantile({q}, sum by ({by}) (rate({metric}_bucket{{{selector}}}[{RI}])))",
         f"{legend_prefix}p{round(q * 100)}")
        for q in qs
    ]
