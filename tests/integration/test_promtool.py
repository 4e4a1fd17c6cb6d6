"""The shipped Prometheus rules are valid and behave as their promtool unit tests say."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.alerting.test_dashboards import dashboard_exprs

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
