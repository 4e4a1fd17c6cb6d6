"""The Helm chart (helm/vqm) renders, lints, passes its schema and Kubernetes' own, and runs vqm.

Rendered for real with the Helm v4 library inside the ``helm-python-sdk`` wheel, for every
``ci/*-values.yaml`` (default, GPU, KEDA, existing secrets, every optional feature), offline: no
``helm`` binary and no cluster. Each rendered core object is validated by
``kubernetes-validate --strict`` against the oldest Kubernetes the chart supports and the newest
the validator knows; operator resources (ServiceMonitor, PrometheusRule, ScaledObject) are checked
field by field. What the chart says about vqm is checked against vqm itself: probe paths against
the app's routes, container commands against the CLI, environment against the settings class,
the PrometheusRule against the rule file promtool tests, the channels file against vqm's loader.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import helm_python as helm
import httpx
import kubernetes_validate
import pytest
import typer
import yaml

from tests.integration.helm_chart import (
    CHART,
    CRD_KINDS,
    NAMESPACE,
    RELEASE,
    REPO,
    Release,
    Resource,
    ci_configs,
    ci_values,
    container,
    env_of,
    parse,
    project_version,
    render,
    render_ci,
)

pytestmark = pytest.mark.integration

CONFIGS = ci_configs()
# The chart's kubeVersion floor (Chart.yaml) and the newest Kubernetes kubernetes-validate knows.
KUBE_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
STAGES = ("ingest", "infer", "alert")
RULES = REPO / "alerting" / "rules" / "vqm.yaml"
DASHBOARDS = REPO / "alerting" / "dashboards"
CHECKOV_SKIPS = CHART / "checkov-skips.yaml"
# The kinds the chart renders that checkov has policies for (workloads first of all).
CHECKOV_KINDS = ("Deployment", "Job", "Service", "ServiceAccount", "Secret", "ConfigMap")
OPTIONAL_KINDS = (
    "Ingress",
    "ServiceMonitor",
    "PrometheusRule",
    "ScaledObject",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
)


@pytest.fixture(scope="module")
def releases() -> dict[str, Release]:
    """Every CI configuration rendered once for the module (rendering takes milliseconds, but
    the Go runtime's first load does not)."""
    return {config: render_ci(config) for config in CONFIGS}


def test_the_chart_ships_the_ci_configurations_the_issue_asks_for() -> None:
    assert {"default", "gpu", "keda", "existing-secret"} <= set(CONFIGS)


def test_the_chart_deploys_the_version_of_vqm_in_pyproject() -> None:
    """The image tag defaults to appVersion, so it must be the version `make image` tags."""
    with helm.Chart.load(CHART) as chart:
        assert chart.metadata["appVersion"] == project_version()


# --- lint and schema ------------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("config", CONFIGS)
def test_helm_lint_in_strict_mode_finds_nothing_above_info(config: str, kube_version: str) -> None:
    report = helm.lint(
        CHART, ci_values(config), strict=True, namespace=NAMESPACE, kube_version=f"v{kube_version}"
    )
    serious = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not serious, report


@pytest.mark.parametrize("config", CONFIGS)
def test_every_ci_configuration_passes_the_values_schema(config: str) -> None:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(ci_values(config))


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"infer": {"replicaz": 2}}, "replicaz"),
        ({"replicas": 2}, "replicas"),
        ({"alert": {"ingress": {"enable": True}}}, "enable"),
        ({"channels": {"config": {"channel": []}}}, "channel"),
    ],
)
def test_the_schema_refuses_a_mistyped_key_and_names_it(values: dict[str, Any], key: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(values)
    assert key in str(caught.value)


def test_the_schema_refuses_an_environment_vqm_does_not_know() -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema({"environment": "prod"})


def test_the_schema_knows_exactly_the_sections_of_vqms_channels_file() -> None:
    """channels.config refuses unknown top-level keys; the list must follow vqm's config model."""
    from monitor.app.config import VqmConfig

    schema = json.loads((CHART / "values.schema.json").read_text())
    sections = schema["properties"]["channels"]["properties"]["config"]["properties"]
    assert set(sections) == set(VqmConfig.model_fields)


def test_install_fails_with_a_message_naming_the_missing_connection_setting() -> None:
    with pytest.raises(helm.HelmRenderError, match="kafka.bootstrap"):
        render({"redis": {"url": "redis://redis:6379/0"}})
    with pytest.raises(helm.HelmRenderError, match="redis.url"):
        render({"kafka": {"bootstrap": "kafka:9092"}})


def test_install_refuses_two_autoscalers_for_inference() -> None:
    values = ci_values("default") | {
        "infer": {"autoscaling": {"enabled": True}, "keda": {"enabled": True}}
    }
    with pytest.raises(helm.HelmRenderError, match="cannot both be enabled"):
        render(values)


def test_install_refuses_a_placeholder_token_as_vqm_does() -> None:
    with pytest.raises(helm.HelmRenderError, match="placeholder"):
        render(ci_values("default") | {"auth": {"apiToken": "changeme"}})


# --- Kubernetes validity ----------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("config", CONFIGS)
def test_every_rendered_core_object_is_valid_kubernetes_in_strict_mode(
    releases: dict[str, Release], config: str, kube_version: str
) -> None:
    problems = []
    for resource in releases[config].resources:
        if resource.kind in CRD_KINDS:
            assert resource.body["apiVersion"] == CRD_KINDS[resource.kind]
            continue
        try:
            kubernetes_validate.validate(resource.body, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(f"{resource.template}: {resource.kind} {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{resource.template}: {exc.message} (a CRD? add it to CRD_KINDS)")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("config", CONFIGS)
def test_each_template_renders_at_most_one_resource(
    releases: dict[str, Release], config: str
) -> None:
    per_template: dict[str, int] = {}
    for resource in releases[config].resources:
        per_template[resource.template] = per_template.get(resource.template, 0) + 1
    assert all(n == 1 for n in per_template.values()), per_template


@pytest.mark.parametrize("config", CONFIGS)
def test_selectors_use_stable_app_kubernetes_io_labels_only(
    releases: dict[str, Release], config: str
) -> None:
    """A selector is immutable on a Deployment: a chart or app version in it breaks upgrades."""
    release = releases[config]
    for resource in release.resources:
        labels = resource.labels
        for key in ("name", "instance", "managed-by", "version", "part-of"):
            assert f"app.kubernetes.io/{key}" in labels, (resource.template, labels)
        for selector in _selectors(resource):
            assert selector, resource.template
            assert set(selector) <= {
                "app.kubernetes.io/name",
                "app.kubernetes.io/instance",
                "app.kubernetes.io/component",
            }, (resource.template, selector)
    pods = _pod_labels(release)
    for resource in release.resources:
        for selector in _selectors(resource):
            if resource.kind == "ServiceMonitor":
                continue  # selects Services, checked in the ServiceMonitor test
            matched = [p for p in pods if selector.items() <= p.items()]
            assert matched, f"{resource.template}: selector {selector} matches no pod"


def _selectors(resource: Resource) -> list[dict[str, str]]:
    spec = resource.body.get("spec") or {}
    if resource.kind in ("Deployment", "PodDisruptionBudget", "ServiceMonitor"):
        return [spec["selector"]["matchLabels"]]
    if resource.kind == "Service":
        return [spec["selector"]]
    if resource.kind == "NetworkPolicy":
        return [spec["podSelector"]["matchLabels"]]
    return []


def _pod_labels(release: Release) -> list[dict[str, str]]:
    return [r.body["spec"]["template"]["metadata"]["labels"] for r in release.of_kind("Deployment")]


# --- what the chart says about vqm, checked against vqm --------------------------------------


def _app_routes() -> set[str]:
    from prometheus_client import CollectorRegistry

    from alerting.api import ApiContext, create_app
    from monitor.app.config import VqmConfig
    from monitor.core.metrics import Metrics
    from monitor.core.state import MemoryStateStore

    ctx = ApiContext(
        config=VqmConfig(), state=MemoryStateStore(), metrics=Metrics(CollectorRegistry())
    )
    app = create_app(ctx)
    # The documented paths (included routers) and the ones outside the schema (/metrics).
    return set(app.openapi()["paths"]) | {r.path for r in app.routes if getattr(r, "path", None)}


@pytest.mark.parametrize("config", CONFIGS)
def test_probes_ask_for_paths_the_app_serves_on_the_named_api_port(
    releases: dict[str, Release], config: str
) -> None:
    routes = _app_routes()
    for deployment in releases[config].of_kind("Deployment"):
        c = container(deployment.body["spec"]["template"]["spec"])
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == {"http": releases[config].values.get("apiPort", 8080)}
        probes = {k: c[k] for k in ("livenessProbe", "readinessProbe", "startupProbe") if k in c}
        assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
        for kind, probe in probes.items():
            assert probe["httpGet"]["path"] in routes, (deployment.name, kind)
            assert probe["httpGet"]["port"] == "http", (deployment.name, kind)


async def test_the_probe_and_metrics_paths_answer_in_the_app() -> None:
    """Not only routes that exist: /healthz answers 200, /readyz answers its report (503 while
    a component is not ready), /metrics answers exposition text."""
    from prometheus_client import CollectorRegistry

    from alerting.api import ApiContext, create_app
    from monitor.app.config import VqmConfig
    from monitor.core.metrics import Metrics
    from monitor.core.state import MemoryStateStore

    async def not_ready() -> dict[str, bool]:
        return {"bus": False, "state": True}

    ctx = ApiContext(
        config=VqmConfig(),
        state=MemoryStateStore(),
        metrics=Metrics(CollectorRegistry()),
        readiness=not_ready,
    )
    transport = httpx.ASGITransport(app=create_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://pod") as client:
        assert (await client.get("/healthz")).status_code == 200
        readyz = await client.get("/readyz")
        assert readyz.status_code == 503 and readyz.json()["components"]["bus"] is False
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200 and "vqm_" in metrics.text


def _parse_vqm_command(command: list[str], args: list[str]) -> tuple[str, ...]:
    """Parse a container's command line with vqm's own CLI and return the subcommand's path,
    e.g. ("topics", "create"); raises on an unknown subcommand or option, or a bad value."""
    from monitor.app.cli import app

    assert command == ["vqm"], command
    cmd: Any = typer.main.get_command(app)  # typer's own click: duck-typed, not click.Group
    rest = list(args)
    path: list[str] = []
    while hasattr(cmd, "list_commands"):
        name, rest = rest[0], rest[1:]
        sub = cmd.get_command(cmd.context_class(cmd), name)
        assert sub is not None, f"vqm has no subcommand {' '.join([*path, name])!r}"
        path.append(name)
        cmd = sub
    cmd.make_context(" ".join(["vqm", *path]), rest)  # parses and converts every option
    return tuple(path)


def test_the_console_script_the_containers_run_is_vqms() -> None:
    with (REPO / "pyproject.toml").open("rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts["vqm"] == "monitor.app.cli:app"


@pytest.mark.parametrize("config", CONFIGS)
def test_every_container_runs_a_real_vqm_subcommand_with_valid_options(
    releases: dict[str, Release], config: str
) -> None:
    seen = set()
    for resource, pod in releases[config].pod_specs():
        c = container(pod)
        seen.add(_parse_vqm_command(c["command"], c["args"]))
        if resource.kind == "Deployment":
            assert c["args"][0] == resource.name.removeprefix(f"{RELEASE}-vqm-")
            assert c["args"][1:] == ["--config", "/etc/vqm/channels.yaml"]
    assert {(stage,) for stage in STAGES} | {("topics", "create")} == seen


@pytest.mark.parametrize("config", CONFIGS)
def test_pod_environment_is_vqms_settings_and_agrees_with_the_ports(
    releases: dict[str, Release], config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings ignores unknown VQM_ variables, so a misspelt one would be silently lost: every
    name must be a field, and the settings vqm builds from the pod's environment must listen
    where the probes and Services look."""
    from monitor.core.settings import Settings

    release = releases[config]
    for name in list(os.environ):
        if name.startswith("VQM_"):
            monkeypatch.delenv(name)
    for deployment in release.of_kind("Deployment"):
        c = container(deployment.body["spec"]["template"]["spec"])
        env = env_of(c)
        unknown = [
            n for n in env if n.startswith("VQM_") and n[4:].lower() not in Settings.model_fields
        ]
        assert not unknown, f"{deployment.name}: not vqm settings: {unknown}"
        for name, var in env.items():
            monkeypatch.setenv(name, _stand_in(var, deployment.name))
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        for name in env:
            monkeypatch.delenv(name)
        assert settings.api_host == "0.0.0.0"
        assert settings.api_port == c["ports"][0]["containerPort"]
        assert settings.environment == release.values.get("environment", "production")
        assert settings.kafka_bootstrap == release.values["kafka"]["bootstrap"]
        assert not settings.open_for_changes  # a pod's API is closed without the token
        component = deployment.name.removeprefix(f"{RELEASE}-vqm-")
        auth = release.values.get("auth", {})
        has_token = bool(auth.get("apiToken") or auth.get("existingSecret"))
        assert ("VQM_API_TOKEN" in env) == (component == "alert" and has_token), (
            f"{deployment.name}: only vqm alert gets the token"
        )
        if component == "infer":
            assert settings.providers


def _stand_in(var: dict[str, Any], pod: str) -> str:
    """The value a variable has in the pod: literal, or a stand-in for a reference."""
    if "value" in var:
        return str(var["value"])
    source = var["valueFrom"]
    if "fieldRef" in source:
        return f"{pod}-7d9f8c-x2x4q"
    if var["name"] == "VQM_REDIS_URL":
        return "redis://redis:6379/0"
    return "x" * 32


@pytest.mark.parametrize("config", CONFIGS)
def test_services_and_ingress_reach_the_named_port_of_the_pods_they_select(
    releases: dict[str, Release], config: str
) -> None:
    release = releases[config]
    pods = release.of_kind("Deployment")
    for service in release.of_kind("Service"):
        spec = service.body["spec"]
        selected = [
            d
            for d in pods
            if spec["selector"].items() <= d.body["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert selected, service.name
        for port in spec["ports"]:
            assert port["targetPort"] == "http"
    alert = release.one("Service", f"{RELEASE}-vqm-alert")
    assert alert.body["spec"]["selector"]["app.kubernetes.io/component"] == "alert"
    for ingress in release.of_kind("Ingress"):
        for rule in ingress.body["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend == {"name": alert.name, "port": {"name": "http"}}


@pytest.mark.parametrize("config", CONFIGS)
def test_every_pod_is_locked_down_and_writes_only_to_tmp(
    releases: dict[str, Release], config: str
) -> None:
    for resource, pod in releases[config].pod_specs():
        where = f"{config}: {resource.kind} {resource.name}"
        assert pod["automountServiceAccountToken"] is False, where
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        c = container(pod)
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"]["drop"] == ["ALL"], where
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] >= 10000, where
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]], where
        assert all(m.get("readOnly") for path, m in mounts.items() if path != "/tmp"), where
        assert {"cpu", "memory"} <= set(c["resources"]["requests"]), where
        assert "memory" in c["resources"]["limits"], where
        if resource.kind == "Deployment":
            # vqm exits within about 10 s of SIGTERM (README "Stopping and crashing").
            assert pod["terminationGracePeriodSeconds"] >= 15, where


def test_inference_has_a_startup_probe_that_covers_the_model_warm_up(
    releases: dict[str, Release],
) -> None:
    infer = container(releases["default"].deployment("infer").body["spec"]["template"]["spec"])
    startup = infer["startupProbe"]
    assert startup["httpGet"]["path"] == "/healthz"  # a broker outage must not restart pods
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    for stage in ("ingest", "alert"):
        c = container(releases["default"].deployment(stage).body["spec"]["template"]["spec"])
        assert "startupProbe" not in c


# --- the channels file and the secrets -------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS)
def test_the_channels_file_the_chart_renders_loads_with_vqms_own_loader(
    releases: dict[str, Release], config: str, tmp_path: Path
) -> None:
    """Helm turns every number in values into a float and back; vqm's strict loader must accept
    what comes out, in the ConfigMap every stage reads and in alert's Secret."""
    from monitor.app.config import load_config

    release = releases[config]
    files = {
        f"{r.kind} {r.name}": r.body["data"]["channels.yaml"]
        for r in release.resources
        if r.kind == "ConfigMap" and "channels.yaml" in r.body.get("data", {})
    }
    for r in release.of_kind("Secret"):
        if "channels.yaml" in r.body.get("data", {}):
            files[f"Secret {r.name}"] = base64.b64decode(r.body["data"]["channels.yaml"]).decode()
    if release.values.get("channels", {}).get("existingSecret"):
        assert not files
        return
    assert files
    expected = release.values.get("channels", {}).get("config", {"channels": []})
    for what, text in files.items():
        path = tmp_path / "channels.yaml"
        path.write_text(text)
        loaded = load_config(path)
        assert [c.id for c in loaded.channels] == [c["id"] for c in expected["channels"]], what
        if what.startswith("ConfigMap"):
            assert "notifications" not in yaml.safe_load(text), f"{what} carries paging secrets"
        cap = expected.get("ingest", {}).get("max_segment_bytes")
        if cap is not None:  # a large integer survives Helm's floats as an integer
            assert loaded.ingest.max_segment_bytes == cap, what


def _channels_volume(pod: dict[str, Any]) -> dict[str, Any]:
    return next(v for v in pod["volumes"] if v["name"] == "channels")


def test_paging_secrets_reach_vqm_alert_only(releases: dict[str, Release]) -> None:
    release = releases["all-features"]
    secret = release.one("Secret", f"{RELEASE}-vqm-channels")
    assert secret.body["data"]["channels.yaml"]
    for stage in STAGES:
        volume = _channels_volume(release.deployment(stage).body["spec"]["template"]["spec"])
        if stage == "alert":
            assert volume["secret"]["secretName"] == secret.name
        else:
            assert volume["configMap"]["name"] == f"{RELEASE}-vqm-channels"


def test_existing_secrets_are_referenced_and_the_chart_renders_no_secret(
    releases: dict[str, Release],
) -> None:
    release = releases["existing-secret"]
    values = release.values
    assert not release.of_kind("Secret")
    refs = set()
    for _, pod in release.pod_specs():
        c = container(pod)
        for var in c.get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.add((var["name"], ref["name"], ref["key"]))
        volume = _channels_volume(pod)
        assert volume["secret"]["secretName"] == values["channels"]["existingSecret"]
        assert volume["secret"]["items"] == [{"key": "channels.yaml", "path": "channels.yaml"}]
    assert refs == {
        ("VQM_REDIS_URL", values["redis"]["existingSecret"], values["redis"]["existingSecretKey"]),
        ("VQM_API_TOKEN", values["auth"]["existingSecret"], values["auth"]["existingSecretKey"]),
    }
    assert not [r for r in release.of_kind("ConfigMap") if "channels.yaml" in r.body["data"]]


def test_a_channels_change_rolls_the_pods_that_read_it() -> None:
    before = render_ci("keda")
    values = ci_values("keda")
    values["channels"]["config"]["channels"][0]["severity"] = "major"
    after = render(values)
    for stage in STAGES:
        a = before.deployment(stage).body["spec"]["template"]["metadata"]["annotations"]
        b = after.deployment(stage).body["spec"]["template"]["metadata"]["annotations"]
        assert a["checksum/config"] != b["checksum/config"], stage


# --- GPU, KEDA, autoscaling ------------------------------------------------------------------


def test_gpu_values_ask_for_gpus_and_run_the_cuda_image_for_inference_only(
    releases: dict[str, Release],
) -> None:
    release = releases["gpu"]
    pod = release.deployment("infer").body["spec"]["template"]["spec"]
    c = container(pod)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["image"] == f"vqm:{project_version()}-cuda"
    assert pod["nodeSelector"]["nvidia.com/gpu.present"] == "true"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert pod["runtimeClassName"] == "nvidia"
    providers = env_of(c)["VQM_ONNX_PROVIDERS"]["value"].split(",")
    assert providers[0] == "CUDAExecutionProvider" and "TensorrtExecutionProvider" not in providers
    for stage in ("ingest", "alert"):
        other = release.deployment(stage).body["spec"]["template"]["spec"]
        assert container(other)["image"] == f"vqm:{project_version()}"
        assert "nvidia.com/gpu" not in container(other)["resources"].get("limits", {})
        assert "nodeSelector" not in other


def test_cpu_values_keep_inference_off_gpus(releases: dict[str, Release]) -> None:
    pod = releases["default"].deployment("infer").body["spec"]["template"]["spec"]
    c = container(pod)
    assert "nvidia.com/gpu" not in c["resources"]["limits"]
    assert env_of(c)["VQM_ONNX_PROVIDERS"]["value"] == "CPUExecutionProvider"


def test_keda_values_scale_inference_on_its_consumer_groups_lag(
    releases: dict[str, Release],
) -> None:
    release = releases["keda"]
    (scaled,) = release.of_kind("ScaledObject")
    spec = scaled.body["spec"]
    infer = release.deployment("infer")
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": infer.name,
    }
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    deployment = env_of(container(infer.body["spec"]["template"]["spec"]))["VQM_DEPLOYMENT"]
    # The group vqm infer joins: "<VQM_DEPLOYMENT>-inference" (monitor/app/runtime.py).
    assert (
        'f"{self.settings.deployment}-inference"'
        in (REPO / "monitor" / "app" / "runtime.py").read_text()
    )
    assert metadata["consumerGroup"] == f"{deployment['value']}-inference" == "noc-inference"
    assert metadata["topic"] == "vqm.segments"
    assert metadata["bootstrapServers"] == release.values["kafka"]["bootstrap"]
    assert all(isinstance(v, str) for v in metadata.values()), "KEDA metadata is string-only"
    assert int(metadata["lagThreshold"]) == release.values["infer"]["keda"]["lagThreshold"]
    assert set(spec) <= {
        "scaleTargetRef",
        "minReplicaCount",
        "maxReplicaCount",
        "pollingInterval",
        "cooldownPeriod",
        "idleReplicaCount",
        "initialCooldownPeriod",
        "advanced",
        "fallback",
        "triggers",
    }
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert "replicas" not in infer.body["spec"], "the scaler owns the replica count"
    assert not release.of_kind("HorizontalPodAutoscaler")


def test_keda_follows_a_renamed_segments_topic() -> None:
    values = ci_values("keda")
    values["channels"]["config"]["topics"] = {"segments": "noc.segments"}
    (scaled,) = render(values).of_kind("ScaledObject")
    assert scaled.body["spec"]["triggers"][0]["metadata"]["topic"] == "noc.segments"


def test_the_hpa_scales_the_inference_deployment(releases: dict[str, Release]) -> None:
    release = releases["all-features"]
    (hpa,) = release.of_kind("HorizontalPodAutoscaler")
    assert hpa.body["spec"]["scaleTargetRef"]["name"] == release.deployment("infer").name
    assert "replicas" not in release.deployment("infer").body["spec"]
    assert release.deployment("ingest").body["spec"]["replicas"] == 2


def test_default_values_leave_every_optional_feature_off(releases: dict[str, Release]) -> None:
    release = releases["default"]
    for kind in OPTIONAL_KINDS:
        assert not release.of_kind(kind), kind
    assert not [r for r in release.of_kind("ConfigMap") if r.name.endswith("-dashboards")]
    assert {r.kind for r in release.of_kind("PodDisruptionBudget")} == {"PodDisruptionBudget"}
    assert len(release.of_kind("PodDisruptionBudget")) == 3


# --- Prometheus Operator and Grafana ----------------------------------------------------------


def test_the_chart_reads_the_rule_file_promtool_tests_through_a_link() -> None:
    link = CHART / "files" / "rules" / "vqm.yaml"
    assert link.is_symlink(), "files/rules/vqm.yaml must stay a link, not a copy"
    assert link.resolve() == RULES.resolve()
    dashboards = CHART / "files" / "dashboards"
    assert dashboards.is_symlink() and dashboards.resolve() == DASHBOARDS.resolve()


def test_the_prometheus_rule_carries_exactly_the_groups_of_the_rule_file(
    releases: dict[str, Release],
) -> None:
    release = releases["all-features"]
    (rule,) = release.of_kind("PrometheusRule")
    assert set(rule.body["spec"]) == {"groups"}
    assert rule.body["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    assert rule.labels["release"] == "kube-prometheus-stack"
    for group in rule.body["spec"]["groups"]:
        for r in group["rules"]:
            assert ("alert" in r or "record" in r) and r["expr"], r


def test_the_prometheus_rule_links_runbooks_under_the_configured_base_url() -> None:
    """runbook_url is a path in the repository; the chart makes it a link, and changes nothing
    else of the rule file."""
    values = ci_values("all-features")
    base = "https://git.example.internal/noc/vqm/-/blob/main/"
    values["prometheusRule"]["runbookBaseUrl"] = base
    (rule,) = render(values).of_kind("PrometheusRule")
    expected = yaml.safe_load(RULES.read_text())["groups"]
    for group in expected:
        for r in group["rules"]:
            r["annotations"]["runbook_url"] = base + r["annotations"]["runbook_url"]
    assert rule.body["spec"]["groups"] == expected
    assert expected[0]["rules"][0]["annotations"]["runbook_url"] == (
        base + "docs/runbook.md#vqmstagedown"
    )


def test_the_schema_refuses_a_runbook_base_that_is_not_a_web_address() -> None:
    values = ci_values("all-features")
    values["prometheusRule"]["runbookBaseUrl"] = "git.example.internal/vqm"
    with pytest.raises(Exception, match="runbookBaseUrl"):
        render(values)


def test_the_service_monitor_scrapes_every_stage_on_the_metrics_path(
    releases: dict[str, Release],
) -> None:
    release = releases["all-features"]
    (monitor,) = release.of_kind("ServiceMonitor")
    spec = monitor.body["spec"]
    services = [
        s
        for s in release.of_kind("Service")
        if spec["selector"]["matchLabels"].items() <= s.labels.items()
    ]
    assert [s.name for s in services] == [f"{RELEASE}-vqm-metrics"]
    (service,) = services
    assert service.body["spec"]["clusterIP"] == "None"
    assert set(service.body["spec"]["selector"]) == {
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
    }, "the metrics Service selects every stage"
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service.body["spec"]["ports"]}
    assert endpoint["path"] == "/metrics" and "/metrics" in _app_routes()
    assert set(endpoint) <= {
        "port",
        "path",
        "interval",
        "scrapeTimeout",
        "relabelings",
        "metricRelabelings",
    }
    assert monitor.labels["release"] == "kube-prometheus-stack"


def test_the_dashboards_configmap_holds_every_dashboard_for_the_grafana_sidecar(
    releases: dict[str, Release],
) -> None:
    release = releases["all-features"]
    (configmap,) = [r for r in release.of_kind("ConfigMap") if r.name.endswith("-dashboards")]
    assert configmap.labels["grafana_dashboard"] == "1"
    assert configmap.body["metadata"]["namespace"] == "monitoring"
    data = configmap.body["data"]
    sources = sorted(DASHBOARDS.glob("*.json"))
    assert set(data) == {f"vqm-{p.name}" for p in sources}
    for path in sources:
        text = data[f"vqm-{path.name}"]
        assert "${DS_" not in text, "a provisioned dashboard cannot resolve an import input"
        expected = json.loads(path.read_text().replace("${DS_PROMETHEUS}", "prometheus"))
        assert json.loads(text) == expected


def test_a_packaged_chart_carries_the_rule_file_and_dashboards_themselves(
    tmp_path: Path,
) -> None:
    """`helm package` resolves the links into files, so the archive stands on its own."""
    archive = Path(helm.package(CHART, destination=tmp_path))
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        rules = members["vqm/files/rules/vqm.yaml"]
        assert rules.isfile()
        extracted = tar.extractfile(rules)
        assert extracted is not None and extracted.read() == RULES.read_bytes()
        assert "vqm/files/dashboards/fleet.json" in members
        assert "vqm/checkov-skips.yaml" not in members
        assert "vqm/ci/default-values.yaml" in members
    with helm.Chart.load(archive) as chart:
        manifests = chart.render(ci_values("all-features"), name=RELEASE, namespace=NAMESPACE)
    (rule,) = parse("packaged", {}, manifests).of_kind("PrometheusRule")
    assert rule.body["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


# --- hooks, notes -----------------------------------------------------------------------------


def test_the_topics_job_runs_vqm_topics_create_before_install_and_upgrade(
    releases: dict[str, Release],
) -> None:
    release = releases["all-features"]
    (job,) = release.of_kind("Job")
    hooks = job.annotations["helm.sh/hook"].split(",")
    assert set(hooks) == {"pre-install", "pre-upgrade"}
    c = container(job.body["spec"]["template"]["spec"])
    assert _parse_vqm_command(c["command"], c["args"]) == ("topics", "create")
    args = dict(zip(c["args"][2::2], c["args"][3::2], strict=True))
    topics = release.values["topics"]["create"]
    assert args["--partitions"] == str(topics["partitions"])
    assert args["--replication"] == str(topics["replication"])
    assert env_of(c)["VQM_KAFKA_BOOTSTRAP"]["value"] == release.values["kafka"]["bootstrap"]
    # Its channels file is a hook too, made before it (the release's own ConfigMap is not).
    volume = _channels_volume(job.body["spec"]["template"]["spec"])
    source = release.one("ConfigMap", volume["configMap"]["name"])
    assert source.annotations["helm.sh/hook"] == job.annotations["helm.sh/hook"]
    assert int(source.annotations["helm.sh/hook-weight"]) < int(
        job.annotations["helm.sh/hook-weight"]
    )
    channels = release.one("ConfigMap", f"{RELEASE}-vqm-channels")
    assert source.body["data"] == channels.body["data"]


def test_the_notes_say_how_to_give_the_api_a_token_when_none_is_set(
    releases: dict[str, Release],
) -> None:
    notes = releases["default"].notes
    assert "NO API TOKEN" in notes and "auth.existingSecret" in notes
    assert "openssl rand" in notes
    with_token = releases["all-features"].notes
    assert "NO API TOKEN" not in with_token and "Bearer" in with_token
    assert "https://vqm.noc.example.internal/" in with_token


# --- policy scan ------------------------------------------------------------------------------


def test_checkov_finds_nothing_in_the_rendered_chart_but_the_justified_skips(
    tmp_path: Path,
) -> None:
    """One checkov run over every configuration (it takes seconds to start), run without skips
    so that a justification that no longer applies is noticed too.

    Each configuration is its own release (its own instance label), so that checkov's graph
    checks (a NetworkPolicy selecting pods) never join objects of two configurations. checkov
    passes over a file that looks like a Helm template (it has "{{"), so the two objects that
    carry other tools' templates, the PrometheusRule (Prometheus' annotations) and the dashboards
    (Grafana's legends), get files of their own; neither runs anything."""
    checkov = shutil.which("checkov", path=str(Path(sys.executable).parent))
    assert checkov, "checkov is a dev dependency (pyproject.toml)"
    expected = set()
    for config in CONFIGS:
        folder = tmp_path / config
        folder.mkdir()
        plain = []
        for resource in render_ci(config, release=config).resources:
            text = yaml.safe_dump(resource.body, sort_keys=False)
            if "{{" in text:
                (folder / f"{resource.kind}-{resource.name}.yaml").write_text(text)
                continue
            plain.append(text)
            if resource.kind in CHECKOV_KINDS:
                expected.add((config, f"{resource.kind}.{NAMESPACE}.{resource.name}"))
        (folder / "release.yaml").write_text("---\n".join(plain))
    result = subprocess.run(
        [checkov, "-d", str(tmp_path), "--framework", "kubernetes", "-o", "json"]
        + ["--skip-download", "--compact"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0, result.stdout[-2000:]
    outcomes = {
        outcome: [(Path(c["file_path"]).parent.name, c) for c in report["results"][outcome]]
        for outcome in ("passed_checks", "failed_checks")
    }
    scanned = {(config, c["resource"]) for checks in outcomes.values() for config, c in checks}
    assert not expected - scanned, f"checkov did not scan: {sorted(expected - scanned)[:5]}"
    failed: dict[str, set[str]] = {}
    for config, check in outcomes["failed_checks"]:
        failed.setdefault(check["check_id"], set()).add(f"{config}: {check['resource']}")
    skips = {s["id"]: s for s in yaml.safe_load(CHECKOV_SKIPS.read_text())["skips"]}
    for skip in skips.values():
        assert len(skip["reason"].split()) >= 15, f"{skip['id']}: give the reason"
    unjustified = {k: sorted(v)[:3] for k, v in failed.items() if k not in skips}
    assert not unjustified, f"fix these or justify them in {CHECKOV_SKIPS.name}: {unjustified}"
    stale = set(skips) - set(failed)
    assert not stale, f"no longer found, remove from {CHECKOV_SKIPS.name}: {sorted(stale)}"
