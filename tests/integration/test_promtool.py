"""The shipped Prometheus rules are valid and behave as their promtool unit tests say."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from alerting.config import AlertingConfig
from alerting.engine import AlertEngine
from alerting.models import AlertEvent
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.metrics import Metrics
from monitor.core.state import MemoryStateStore
from monitor.inference.detectors.registry import parse_detector_config
from tests.unit.alerting.test_dashboards import dashboard_exprs, page_labels
from tests.unit.alerting.test_engine import detection

pytestmark = pytest.mark.integration

RULES_DIR = Path(__file__).resolve().parents[2] / "alerting" / "rules"
PROMTOOL = shutil.which("promtool")

requires_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not on PATH (Debian package 'prometheus'; `make system-deps` installs it)",
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=RULES_DIR
    )


def _rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yaml"))


def _test_files() -> list[Path]:
    return sorted((RULES_DIR / "tests").glob("*.yaml"))


def test_the_project_ships_rule_files_and_rule_tests() -> None:
    assert _rule_files(), f"no rule files in {RULES_DIR}"
    assert _test_files(), f"no promtool tests in {RULES_DIR / 'tests'}"


@requires_promtool
@pytest.mark.parametrize("rule_file", _rule_files(), ids=lambda p: p.name)
def test_promtool_check_rules_accepts_every_rule_file(rule_file: Path) -> None:
    result = _promtool("check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr


@requires_promtool
@pytest.mark.parametrize("test_file", _test_files(), ids=lambda p: p.name)
def test_promtool_rule_tests_pass(test_file: Path) -> None:
    result = _promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


@requires_promtool
def test_promtool_rule_tests_fail_when_a_rule_misbehaves(tmp_path: Path) -> None:
    """Guards against tests that pass vacuously: break one threshold and promtool must notice."""
    rules = (RULES_DIR / "vqm.yaml").read_text()
    broken = rules.replace("vqm_channel_up == 0", "vqm_channel_up == 2")
    assert broken != rules
    (tmp_path / "vqm.yaml").write_text(broken)
    tests_dir = tmp_path / "tests"
    tests_dir.mkdir()
    for test_file in _test_files():
        (tests_dir / test_file.name).write_text(test_file.read_text())
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", *(str(p) for p in sorted(tests_dir.glob("*.yaml")))],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "VqmChannelDown" in result.stdout + result.stderr


@requires_promtool
def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    """Grafana only reports bad PromQL when a panel is opened; promtool parses them all now.

    Each expression becomes a recording rule, with Grafana's variables given concrete values.
    """
    dashboards = sorted((RULES_DIR.parent / "dashboards").glob("*.json"))
    rules = []
    for path in dashboards:
        for i, expr in enumerate(dashboard_exprs(json.loads(path.read_text()))):
            if expr.startswith("label_values("):
                continue
            rules.append({"record": f"dashboard:{path.stem}:{i}", "expr": _grafana_free(expr)})
    assert rules
    rule_file = tmp_path / "dashboards.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = _promtool("check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr


def _grafana_free(expr: str) -> str:
    return expr.replace("$__rate_interval", "5m").replace("$channel", "news")


# news is critical but pages its freezes as warning; sport has the default severity (major).
SEVERITY_CONFIG = VqmConfig(
    channels=[
        ChannelConfig(
            id="news",
            url="http://origin/news.m3u8",
            severity="critical",
            detectors=[parse_detector_config({"type": "freeze", "severity": "warning"})],
        ),
        ChannelConfig(id="sport", url="http://origin/sport.m3u8"),
    ],
    alerting=AlertingConfig(flap_window=0),
)


async def _pages_and_series(config: VqmConfig) -> tuple[list[dict[str, str]], dict[str, float]]:
    """Open freeze and black alerts on every channel through the real engine.

    Returns the labels vqm's own Alertmanager pages carry and the ``vqm_active_alerts``
    series /metrics then shows (promtool's series notation, with their values).
    """
    pages: list[AlertEvent] = []

    async def record(event: AlertEvent) -> None:
        pages.append(event)

    metrics = Metrics(CollectorRegistry())
    engine = AlertEngine(config, MemoryStateStore(), metrics, [record])
    for channel in config.channels:
        for detector in ("freeze", "black"):
            await engine.handle_detection(detection(0, True, detector, channel.id))
    labels = [page_labels(event.alert) for event in pages]
    series = {
        "vqm_active_alerts{" + ", ".join(f'{k}="{v}"' for k, v in sorted(s.labels.items())) + "}":
        s.value
        for family in metrics.registry.collect() if family.name == "vqm_active_alerts"
        for s in family.samples
    }  # fmt: skip
    return labels, series


def _expected_alerts(pages: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One promtool alert test per alert name: each page's name, channel, detector, severity."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for page in pages:
        wanted = {k: page[k] for k in ("channel", "detector", "severity")}
        by_name.setdefault(page["alertname"], []).append({"exp_labels": wanted})
    return [
        {"eval_time": "30s", "alertname": name, "exp_alerts": alerts}
        for name, alerts in sorted(by_name.items())
    ]


def _rules_without_annotations(target: Path) -> None:
    """The rule file less its annotations, which vqm_test.yaml checks, so labels alone count."""
    rules = yaml.safe_load((RULES_DIR / "vqm.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    target.write_text(yaml.safe_dump(rules))


@requires_promtool
async def test_rules_fire_with_the_name_and_severity_of_vqms_own_pages(tmp_path: Path) -> None:
    """The channels file's severities, through the engine's metrics, reach the rules' alerts.

    Both paging paths end in Alertmanager: the rule's alert for a defect must carry the
    same alertname and severity as vqm's page for it, or one is routed and silenced apart.
    """
    pages, series = await _pages_and_series(SEVERITY_CONFIG)
    assert {(p["channel"], p["detector"], p["severity"]) for p in pages} == {
        ("news", "freeze", "warning"), ("news", "black", "critical"),
        ("sport", "freeze", "major"), ("sport", "black", "major"),
    }  # fmt: skip
    _rules_without_annotations(tmp_path / "vqm.yaml")
    test = {
        "rule_files": ["vqm.yaml"],
        "evaluation_interval": "15s",
        "tests": [{
            "interval": "15s",
            "input_series": [{"series": k, "values": f"{v:g}x4"} for k, v in series.items()],
            "alert_rule_test": _expected_alerts(pages),
        }],
    }  # fmt: skip
    (tmp_path / "severity_test.yaml").write_text(yaml.safe_dump(test))
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", "severity_test.yaml"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
