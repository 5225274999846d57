"""Just enough PromQL reading to check which metrics and labels an expression uses.

Not a parser: it strips strings, label matchers, ranges and grouping clauses, and what is
left that looks like an identifier and is not a function call or a keyword is a metric name.
``promtool check rules`` validates the syntax itself (see test_grafana.py / test_prometheus.py).

>>> sorted(metric_names('sum by (model) (rate(a_total{x="y"}[5m])) / on (model) b or on() vector(0)'))
['a_total', 'b']
>>> sorted(metric_names('group by (model) ({__name__=~"c|d"})'))
['c', 'd']
>>> selectors('histogram_quantile(0.9, sum by (le) (rate(h_bucket{model=~"$model", le!=""}[1m])))')
[('h_bucket', ['model', 'le'])]
"""

from __future__ import annotations

import re

KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "atan2",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(\s*\()?")
_SELECTOR = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)?\s*\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')")
_GROUPING_LABELS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_PLAIN_ALTERNATION = re.compile(r"^[A-Za-z_:][\w:]*(\|[A-Za-z_:][\w:]*)*$")


def metric_names(expr: str) -> set[str]:
    """Names of the metrics (time series) that ``expr`` selects."""
    names: set[str] = set()
    for op, value in _NAME_MATCHER.findall(expr):
        if not _PLAIN_ALTERNATION.match(value):
            raise ValueError(f"__name__ matcher {value!r} is not a plain list of names a|b|c")
        names.update(value.split("|") if op == "=~" else [value])
    text = _STRING.sub('""', expr)
    text = _BRACES.sub(" ", text)
    while _BRACKETS.search(text):
        text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    for ident, call in _IDENT.findall(text):
        if call or ident.lower() in KEYWORDS:
            continue
        names.add(ident)
    return names


def selectors(expr: str) -> list[tuple[str, list[str]]]:
    """``(metric name, [label names matched])`` for each ``name{...}`` selector in ``expr``."""
    out = []
    for name, body in _SELECTOR.findall(expr):
        if not name:
            continue
        out.append((name, _MATCHER_LABEL.findall(body)))
    return out


def grouping_labels(expr: str) -> set[str]:
    """Label names used in ``by``/``without``/``on``/``ignoring``/``group_*`` clauses."""
    text = _STRING.sub('""', expr)
    labels: set[str] = set()
    for _kw, body in _GROUPING_LABELS.findall(text):
        labels.update(x.strip() for x in body.split(",") if x.strip())
    return labels
