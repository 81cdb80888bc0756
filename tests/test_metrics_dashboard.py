"""The Grafana dashboard (``deploy/grafana/salon.json``) against the metrics catalogue: every
metric a panel or a variable queries is one Salon exports, every business family has a
panel, cost panels are in a currency, and the dashboard is well-formed for Grafana."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from salon.config import PROJECT_ROOT
from salon.metrics.catalog import (
    BUSINESS_FAMILIES,
    FAMILIES,
    RECORD_WINDOWS,
    exported_names,
    sample_names,
)

DASHBOARD = PROJECT_ROOT / "deploy" / "grafana" / "salon.json"

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
                "quantile", "limitk", "limit_ratio"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless",
            "atan2", "inf", "nan", "Inf", "NaN"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NAME = re.compile(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: what is left once strings, label
    matchers, ranges, Grafana variables and label lists are taken out, and function and
    aggregation names (followed by a parenthesis) and keywords are skipped.
    """
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _VARIABLE.sub("", text)
    text = _LABEL_LIST.sub("", text)
    found = set()
    for match in _NAME.finditer(text):
        word = match.group(0)
        if text[match.end():].lstrip().startswith("(") or word in KEYWORDS or word in AGGREGATIONS:
            continue
        found.add(word)
    return found


def test_the_promql_reader_finds_metric_names_and_nothing_else() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, action) (rate(salon_action_duration_seconds_bucket'
            '{action!="x", outcome=~"a|b"}[$__rate_interval]))) / on (instance, job) group_left (process) '
            'salon_process_info * 1e3 + max without (instance, job) (salon_windows{state="open"} offset 5m) '
            '- time() > bool 0')
    assert metric_names(expr) == {"salon_action_duration_seconds_bucket", "salon_process_info", "salon_windows"}
    assert metric_names('sum(rate(process_cpu_seconds_total[5m])) and on() vector(1)') == {"process_cpu_seconds_total"}


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def expressions(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expression) for every query of the dashboard: panel targets and variables."""
    out = []
    for panel in panels(board["panels"]):
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", text.strip())
            assert match, f"variable {variable['name']}: {text}"
            out.append((f"variable {variable['name']}", match.group(1)))
    return out


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    exported = exported_names()
    unknown = {(where, name) for where, expr in expressions(dashboard()) for name in metric_names(expr)
               if name not in exported}
    assert not unknown, f"queried but not exported: {sorted(unknown)}"


def test_every_business_family_has_a_panel() -> None:
    queried = {name for _, expr in expressions(dashboard()) for name in metric_names(expr)}
    missing = [entry.name for entry in BUSINESS_FAMILIES if not set(sample_names(entry)) & queried]
    assert not missing, f"business families without a panel: {missing}"
    # And the processes' own families: the pipeline, the worker, the actions, the companion.
    for source in ("pipeline", "worker", "actions", "io"):
        shown = [e.name for e in FAMILIES if e.source == source and set(sample_names(e)) & queried]
        assert shown, f"no panel for the {source} families"


def test_cost_panels_are_in_a_currency() -> None:
    money = [p for p in panels(dashboard()["panels"])
             if any(re.search(r"_cost\b", t["expr"]) for t in p.get("targets", []))]
    assert len(money) >= 8
    for panel in money:
        unit = panel["fieldConfig"]["defaults"]["unit"]
        assert unit.startswith("currency"), f"{panel['title']}: {unit}"


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in panels(board["panels"])]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels(board["panels"]):
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            for used in re.findall(r"\$(\w+)", target["expr"]):
                assert used in variables or used.startswith("__"), f"{panel['title']}: ${used}"


def test_the_window_variable_offers_the_exported_windows() -> None:
    window = next(v for v in dashboard()["templating"]["list"] if v["name"] == "window")
    assert [o["value"] for o in window["options"]] == list(RECORD_WINDOWS)
    assert window["current"]["value"] in RECORD_WINDOWS
