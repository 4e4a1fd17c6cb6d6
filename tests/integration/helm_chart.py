"""The chart, rendered for the tests with the Helm v4 library the ``helm-python-sdk`` wheel embeds.

    release = render_ci("gpu")                  # helm/vqm/ci/gpu-values.yaml
    infer = release.deployment("infer")
    release.of_kind("ScaledObject")

Rendering is offline and in-process (no ``helm`` binary, no cluster): what ``helm template``
prints, split into one parsed resource per document, each with the template that made it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "vqm"
CI_DIR = CHART / "ci"
RELEASE = "noc"
NAMESPACE = "vqm"
NOTES = "vqm/templates/NOTES.txt"

# Kinds whose schemas come with their operators, not with Kubernetes: kubernetes-validate has
# none, so the tests check the fields their operators read instead.
CRD_KINDS = {
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
    "ScaledObject": "keda.sh/v1alpha1",
}


def ci_configs() -> list[str]:
    """The names of the chart's CI values files: ``ci/<name>-values.yaml``."""
    return sorted(p.name.removesuffix("-values.yaml") for p in CI_DIR.glob("*-values.yaml"))


def ci_values(config: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CI_DIR / f"{config}-values.yaml").read_text())
    return values


def project_version() -> str:
    with (REPO / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


@dataclass(frozen=True)
class Resource:
    """One rendered Kubernetes object and the template file it came from."""

    template: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.body["metadata"].get("labels") or {})

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.body["metadata"].get("annotations") or {})


@dataclass(frozen=True)
class Release:
    """A rendered release: every template's text and the resources parsed from it."""

    config: str
    values: dict[str, Any]
    manifests: dict[str, str]
    resources: list[Resource] = field(default_factory=list)

    @property
    def notes(self) -> str:
        return self.manifests.get(NOTES, "")

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.kind == kind]

    def one(self, kind: str, name: str) -> Resource:
        found = [r for r in self.of_kind(kind) if r.name == name]
        assert len(found) == 1, f"{self.config}: expected one {kind} {name}, found {len(found)}"
        return found[0]

    def deployment(self, component: str) -> Resource:
        return self.one("Deployment", f"{RELEASE}-vqm-{component}")

    def pod_specs(self) -> Iterator[tuple[Resource, dict[str, Any]]]:
        """Every pod template the release runs (the stages' Deployments and the topics Job)."""
        for resource in self.resources:
            if resource.kind in ("Deployment", "Job"):
                yield resource, resource.body["spec"]["template"]["spec"]


def render(values: dict[str, Any], config: str = "custom", release: str = RELEASE) -> Release:
    """Render the chart as ``helm install`` would, offline (``lookup`` finds nothing)."""
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=release, namespace=NAMESPACE, is_install=True)
    return parse(config, values, manifests)


def render_ci(config: str, release: str = RELEASE) -> Release:
    return render(ci_values(config), config, release)


def parse(config: str, values: dict[str, Any], manifests: dict[str, str]) -> Release:
    resources = [
        Resource(template, doc)
        for template, text in sorted(manifests.items())
        if template.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    return Release(config, values, manifests, resources)


def manifest_text(release: Release) -> str:
    """The release as one multi-document YAML stream, as ``helm template`` prints it."""
    parts = [
        f"# Source: {template}\n{text.strip()}\n"
        for template, text in sorted(release.manifests.items())
        if template.endswith(".yaml") and text.strip()
    ]
    return "---\n".join(parts)


def container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """The one container of a vqm pod."""
    containers = pod_spec["containers"]
    assert len(containers) == 1, [c["name"] for c in containers]
    return dict(containers[0])


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A container's EnvVars by name."""
    return {e["name"]: e for e in c.get("env", [])}
