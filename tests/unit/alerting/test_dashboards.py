"""Every metric the dashboards and alert rules query is one the code really exports.

A misspelled metric in PromQL is not an error anywhere: Grafana draws an empty panel and
Prometheus never fires the alert. So this test extracts the metric names from every expression
we ship and checks them against the sample names a real ``Metrics`` registry exposes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from alerting.engine import STREAM_DETECTOR
from alerting.models import Alert, AlertEvent, AlertTransition, alert_name
from alerting.notifiers import NotificationConfig
from alerting.notifiers.alertmanager import AlertmanagerConfig, AlertmanagerNotifier
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.telemetry import STAGES, export_known_series
from monitor.core.metrics import Metrics
from monitor.inference.detectors.registry import detector_types
from tests.conftest import REPO

ALERTING_DIR = REPO / "alerting"
DASHBOARDS = sorted((ALERTING_DIR / "dashboards").glob("*.json"))
RULE_FILES = sorted((ALERTING_DIR / "rules").glob("*.yaml"))
# Every detector alerting can open an alert for: the plugins, and ingest's stream findings.
DETECTORS = sorted([*detector_types(), STREAM_DETECTOR])

# Words that look like identifiers in PromQL but are not metric names.
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "atan2", "inf", "nan", "start", "end",
}
_LABEL_LISTS = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_IDENTIFIER = re.compile(r"(?<![\w:$.])([A-Za-z_:][\w:]*)")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*$", re.DOTALL)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects.

    Strips what can hold other identifiers (strings, label matchers, ranges, label lists after
    ``by``/``on``...), then keeps identifiers that are neither functions (followed by ``(``)
    nor keywords.
    """
    if match := _LABEL_VALUES.match(expr):  # Grafana's variable query: label_values(expr, label)
        expr = match.group(1)
    expr = _STRINGS.sub('""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = _LABEL_LISTS.sub(" ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " 0 ", expr)  # Grafana variables left outside matchers
    names = set()
    for match in _IDENTIFIER.finditer(expr):
        name = match.group(1)
        rest = expr[match.end():].lstrip()
        if rest.startswith("(") or name.lower() in PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def exposed_labels(metrics: Metrics) -> dict[str, set[str]]:
    """Sample name -> its label names, as the registry exposes them once every family has one
    child.

    Labelled families show no samples until a label set is used, so each gets one; the names
    then carry the suffixes prometheus_client adds (``_total``, ``_bucket``, ``_sum``...).
    """
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(**{name: "x" for name in metric._labelnames})
    labels: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


def exposed_sample_names(metrics: Metrics) -> set[str]:
    return set(exposed_labels(metrics))


# A process of every stage with one channel and one notifier, as ``vqm run`` starts it.
APP_CONFIG = VqmConfig(
    channels=[ChannelConfig(id="news", url="http://origin/news.m3u8")],
    notifications=NotificationConfig.model_validate(
        {"notifiers": {"am": {"type": "alertmanager", "url": "http://am:9093"}}}
    ),
)


def app_metrics() -> Metrics:
    """The registry a vqm process builds, with what it exports before anything happens."""
    metrics = Metrics(CollectorRegistry())
    export_known_series(metrics, APP_CONFIG, STAGES, revision="test")
    return metrics


_SELECTOR = re.compile(r"\b([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")


def unknown_labels(expr: str, labels: dict[str, set[str]]) -> set[str]:
    """``metric:label`` for every label a selector matches on or a ``by`` groups by that the
    metric (or, for ``by``, none of the expression's metrics) does not carry.

    A misspelled label is as silent as a misspelled metric: the panel is just empty.
    """
    stripped = _STRINGS.sub('""', expr)
    metrics = metric_names(expr)
    missing = set()
    for metric, matchers in _SELECTOR.findall(_STRINGS.sub(_blank_string, expr)):
        for label in _MATCHER.findall(matchers):
            if label not in labels.get(metric, set()) | TARGET_LABELS:
                missing.add(f"{metric}:{label}")
    carried = set().union(*(labels.get(m, set()) for m in metrics)) | TARGET_LABELS
    for clause in re.findall(r"\bby\s*\(([^)]*)\)", stripped):
        for label in filter(None, (part.strip() for part in clause.split(","))):
            if label not in carried:
                missing.add(f"by:{label}")
    return missing


def _blank_string(match: re.Match[str]) -> str:
    """A string literal with its content blanked, so a ``}`` or ``=`` in it parses as nothing."""
    return match.group(0)[0] * 2


def dashboard_exprs(node: Any) -> Iterator[str]:
    """Every PromQL text in a dashboard: panel targets and template variable queries."""
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node["expr"]
        if node.get("type") == "query" and isinstance(node.get("definition"), str):
            yield node["definition"]
        for value in node.values():
            yield from dashboard_exprs(value)
    elif isinstance(node, list):
        for value in node:
            yield from dashboard_exprs(value)


def rule_exprs(path: Path) -> Iterator[str]:
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule["expr"]


def unknown_metrics(exprs: list[str], known: set[str]) -> dict[str, set[str]]:
    """Expression -> the names in it that the code does not export (empty when all is well)."""
    found = {expr: metric_names(expr) - known for expr in exprs}
    return {expr: names for expr, names in found.items() if names}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


# Series Prometheus writes itself for every target it scrapes, and the labels it adds to all.
SCRAPE_SERIES = {"up"}
TARGET_LABELS = {"job", "instance"}


@pytest.fixture(scope="module")
def known() -> set[str]:
    return exposed_sample_names(app_metrics()) | SCRAPE_SERIES


@pytest.fixture(scope="module")
def known_labels() -> dict[str, set[str]]:
    return exposed_labels(app_metrics())


def test_the_registry_exposes_suffixed_sample_names(known: set[str]) -> None:
    assert {"vqm_channel_up", "vqm_ingest_errors_total", "vqm_active_alerts"} <= known
    assert {"vqm_detection_latency_seconds_bucket", "vqm_processing_seconds_count"} <= known
    assert "vqm_ingest_errors" not in known  # the bare counter name is not a series


def test_metric_names_are_extracted_from_selectors_ranges_and_functions() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (channel, le) (rate(vqm_a_bucket{channel=~"$channel"}'
        "[$__rate_interval]))) > 10 and on (channel) time() - vqm_b offset 5m > bool 3e2"
    )
    assert metric_names(expr) == {"vqm_a_bucket", "vqm_b"}
    assert metric_names("label_values(vqm_channel_up, channel)") == {"vqm_channel_up"}
    assert metric_names('sum(vqm_c{detector="freeze", kind="by"}) or vector(0)') == {"vqm_c"}


def test_the_checker_catches_a_misspelled_metric_in_a_dashboard(known: set[str]) -> None:
    dashboard = {"panels": [{"targets": [
        {"expr": 'sum(vqm_channel_up{channel="$channel"})'},
        {"expr": "rate(vqm_ingest_error_total[5m])"},
        {"expr": "vqm_chanel_up == 0"},
    ]}]}
    bad = unknown_metrics(list(dashboard_exprs(dashboard)), known)
    assert set().union(*bad.values()) == {"vqm_ingest_error_total", "vqm_chanel_up"}


def test_the_project_ships_three_dashboards_and_a_rules_file() -> None:
    assert [p.name for p in DASHBOARDS] == ["channel.json", "fleet.json", "pipeline.json"]
    assert [p.name for p in RULE_FILES] == ["vqm.yaml"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_queries_only_metrics_the_code_exports(
    path: Path, known: set[str]
) -> None:
    exprs = list(dashboard_exprs(load(path)))
    assert len(exprs) >= 5
    assert unknown_metrics(exprs, known) == {}


def test_the_label_checker_catches_a_misspelled_label(known_labels: dict[str, set[str]]) -> None:
    assert unknown_labels('sum by (notifier) (vqm_outbox_pending{job="vqm"})', known_labels) == {
        "by:notifier"
    }
    bad = 'sum by (detector) (vqm_active_alerts{chanel="$channel", severity!="x{y=z"})'
    assert unknown_labels(bad, known_labels) == {"vqm_active_alerts:chanel"}
    good = 'max by (name) (vqm_detector_measurement{channel="a", name=~"b|c"})'
    assert unknown_labels(good, known_labels) == set()


@pytest.mark.parametrize("path", [*DASHBOARDS, *RULE_FILES], ids=lambda p: p.name)
def test_every_panel_and_rule_uses_only_labels_its_metrics_carry(
    path: Path, known_labels: dict[str, set[str]]
) -> None:
    exprs = dashboard_exprs(load(path)) if path.suffix == ".json" else rule_exprs(path)
    bad = {e: names for e in exprs if (names := unknown_labels(e, known_labels))}
    assert bad == {}


def test_the_pipeline_dashboard_has_a_paging_health_row() -> None:
    """Delivered, failed, dropped and pending: whether pages reach anyone at all."""
    panels = load(ALERTING_DIR / "dashboards" / "pipeline.json")["panels"]
    assert "Paging" in [p["title"] for p in panels if p["type"] == "row"]
    queried = set().union(*(metric_names(e) for e in dashboard_exprs(panels)))
    assert {
        "vqm_notifications_delivered_total",
        "vqm_notification_failures_total",
        "vqm_notifications_dropped_total",
        "vqm_outbox_pending",
    } <= queried


def test_the_channel_dashboard_shows_the_channels_loudness_and_detectors() -> None:
    panels = load(ALERTING_DIR / "dashboards" / "channel.json")["panels"]
    exprs = list(dashboard_exprs(panels))
    loudness = [e for e in exprs if 'detector="loudness"' in e]
    for name in ("integrated_lufs", "true_peak_dbtp", "range_lu"):
        assert any(name in e for e in loudness), name
    for metric in ("vqm_detector_errors_total", "vqm_processing_seconds_bucket"):
        assert any(metric in metric_names(e) and '$channel' in e for e in exprs), metric
    assert any("by (detector, severity)" in e for e in exprs)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_alert_rule_queries_only_metrics_the_code_exports(
    path: Path, known: set[str]
) -> None:
    exprs = list(rule_exprs(path))
    assert exprs
    assert unknown_metrics(exprs, known) == {}


def test_rules_have_severity_summary_description_and_runbook_url() -> None:
    defects = {rule["alert"] for rule in defect_rules().values()}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if rule["alert"] not in defects:
                    assert rule["labels"]["severity"] in {"critical", "major", "warning"}, rule
                assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule


@pytest.mark.parametrize("detector", DETECTORS)
def test_a_defect_rule_takes_the_severity_vqm_resolved_from_the_series(detector: str) -> None:
    """No severity of the rule's own: the series carries the channel config's, and keeps it."""
    rule = defect_rules()[detector]
    assert rule["labels"] == {"severity": "{{ $labels.severity }}"}
    assert rule["expr"].startswith("max by (channel, detector, severity) (vqm_active_alerts{")


def test_there_is_one_defect_rule_per_detector() -> None:
    exprs = list(rule_exprs(ALERTING_DIR / "rules" / "vqm.yaml"))
    for detector in DETECTORS:
        assert sum(f'detector="{detector}"' in e for e in exprs) == 1, detector


def defect_rules() -> dict[str, dict[str, Any]]:
    """Detector -> the rule over its ``vqm_active_alerts`` series."""
    rules = {}
    for group in yaml.safe_load((ALERTING_DIR / "rules" / "vqm.yaml").read_text())["groups"]:
        for rule in group["rules"]:
            if match := re.search(r'vqm_active_alerts\{detector="(\w+)"\}', rule["expr"]):
                rules[match.group(1)] = rule
    return rules


def page(alert: Alert, **settings: str) -> dict[str, Any]:
    """vqm's own Alertmanager page for ``alert``: labels and annotations."""
    config = AlertmanagerConfig.model_validate({"url": "http://am:9093", **settings})
    notifier = AlertmanagerNotifier("am", config, None)  # type: ignore[arg-type]  # never sends
    return notifier.payload(AlertEvent(transition=AlertTransition.OPENED, alert=alert))


def page_labels(alert: Alert) -> dict[str, str]:
    """The labels vqm's own Alertmanager page for ``alert`` carries."""
    return page(alert)["labels"]  # type: ignore[no-any-return]


def defect(detector: str) -> Alert:
    return Alert(id="a", channel_id="news", detector=detector, start=0, end=1,
                 opened_at=0, updated_at=0)  # fmt: skip


def page_alertname(detector: str) -> str:
    """The ``alertname`` vqm's own page for a defect of ``detector`` carries."""
    return page_labels(defect(detector))["alertname"]


@pytest.mark.parametrize("detector", DETECTORS)
def test_the_rule_of_a_detector_is_named_as_vqm_pages_it(detector: str) -> None:
    """Both paging paths reach Alertmanager; one name lets one route, group or silence both."""
    rule = defect_rules()[detector]
    assert rule["alert"] == page_alertname(detector) == alert_name(detector)


@pytest.mark.parametrize("detector", DETECTORS)
def test_the_page_of_a_detector_links_the_runbook_its_rule_links(detector: str) -> None:
    linked = defect_rules()[detector]["annotations"]["runbook_url"]
    assert page(defect(detector))["annotations"]["runbook_url"] == linked
    base = "https://git.example.internal/noc/vqm/-/blob/main/"
    prefixed = page(defect(detector), runbook_base_url=base)["annotations"]["runbook_url"]
    assert prefixed == base + linked


def test_alert_names_are_the_detector_key_in_camel_case() -> None:
    assert alert_name("freeze") == "VqmFreeze"
    assert alert_name("block_corruption") == "VqmBlockCorruption"
    assert alert_name("stream") == "VqmStream"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_take_the_prometheus_datasource_as_an_input(path: Path) -> None:
    dashboard = load(path)
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_have_a_channel_variable_and_a_recent_schema(path: Path) -> None:
    dashboard = load(path)
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["channel"]["definition"] == "label_values(vqm_channel_up, channel)"
    assert variables["channel"]["query"]["query"] == "label_values(vqm_channel_up, channel)"


def test_dashboard_uids_and_panel_ids_are_unique() -> None:
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    for path in DASHBOARDS:
        ids = [panel["id"] for panel in load(path)["panels"]]
        assert len(set(ids)) == len(ids), path.name


RUNBOOK = REPO / "docs" / "runbook.md"


def runbook_sections() -> dict[str, str]:
    """Anchor (as repository browsers make them from ``## Heading``) -> the section's text."""
    parts = re.split(r"^## (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"): body
        for heading, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def all_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r["alert"])
def test_every_alert_links_its_own_runbook_section(rule: dict[str, Any]) -> None:
    """The link resolves in the repository, to a section that says what to do and how to mute."""
    path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
    assert (REPO / path).resolve() == RUNBOOK.resolve()
    assert anchor == rule["alert"].lower()
    section = runbook_sections()[anchor]
    for part in ("**What it means.**", "**First checks.**", "**Silence it.**"):
        assert part in section, (rule["alert"], part)
    assert f"alertname={rule['alert']}" in section  # the silence names this alert
