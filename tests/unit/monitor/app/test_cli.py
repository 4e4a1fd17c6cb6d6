"""`vqm scan` keeps its output contract; bad input gives one clear line and a non-zero exit."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.app.cli import app
from monitor.app.synthetic.channel import write_clip
from monitor.app.synthetic.defects import Defect
from tests.conftest import REPO

runner = CliRunner()


@pytest.fixture(scope="module")
def black_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "black.ts"
    write_clip(path, 12.0, seed=31337, schedule=[Defect(kind="black", start=4.0, duration=4.0)])
    return path


@pytest.fixture(scope="module")
def clean_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "clean.ts"
    write_clip(path, 8.0, seed=31338)
    return path


def test_scan_prints_one_json_object_per_defect_and_nothing_else(black_clip: Path) -> None:
    result = runner.invoke(app, ["scan", str(black_clip), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    defects = [json.loads(line) for line in lines]
    assert [d["detector"] for d in defects] == ["black"]
    assert defects[0]["start"] == pytest.approx(4.0, abs=0.1)
    assert defects[0]["end"] == pytest.approx(8.0, abs=0.1)
    assert set(defects[0]) == {"detector", "start", "end", "confidence"}
    assert 0.0 <= defects[0]["confidence"] <= 1.0


def test_scan_of_a_clean_clip_prints_nothing_and_exits_zero(clean_clip: Path) -> None:
    result = runner.invoke(app, ["scan", str(clean_clip), "--format", "jsonl"])
    assert result.exit_code == 0
    assert result.stdout == ""


def test_scan_table_format_is_for_people(black_clip: Path) -> None:
    result = runner.invoke(app, ["scan", str(black_clip), "--format", "table"])
    assert result.exit_code == 0
    assert "detector" in result.stdout and "black" in result.stdout


def test_scan_of_a_file_that_is_not_media_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a video\n" * 50)
    result = runner.invoke(app, ["scan", str(path)])
    assert result.exit_code == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "notes.txt" in lines[0]


def test_scan_of_a_missing_file_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", str(tmp_path / "absent.ts")])
    assert result.exit_code == 3
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'absent.ts'}: no such file"]


def test_scan_of_a_truncated_recording_reports_what_it_could_decode(
    black_clip: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.ts"
    data = black_clip.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])  # ends mid-packet, after the black
    result = runner.invoke(app, ["scan", str(cut), "--format", "jsonl"])
    assert result.exit_code == 0
    assert [json.loads(line)["detector"] for line in result.stdout.splitlines()] == ["black"]


def test_run_with_a_bad_config_names_the_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text("channels:\n  - id: a\n    url: http://127.0.0.1:9/a.m3u8\n    colour: red\n")
    result = runner.invoke(app, ["run", "--config", str(path), "--duration", "1"])
    assert result.exit_code == 2
    assert f"{path}:4" in result.stderr and "colour" in result.stderr


def test_scan_enable_names_an_unknown_detector_in_its_error(black_clip: Path) -> None:
    result = runner.invoke(app, ["scan", str(black_clip), "--enable", "sparkle"])
    assert result.exit_code == 2
    assert "sparkle" in result.stderr and "black" in result.stderr


def test_eval_and_train_reach_the_lab_from_a_checkout() -> None:
    result = runner.invoke(app, ["eval", "no_such_model"])
    assert result.exit_code == 2
    assert "no trainable model 'no_such_model'" in result.output


def test_eval_and_train_say_so_when_the_lab_is_not_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import monitor.app.lab

    monkeypatch.setattr(monitor.app.lab, "CHECKOUT", tmp_path)  # an installed wheel: no lab/
    for command in (["eval", "signal"], ["train", "audio_artifact"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert "run from a source checkout (the lab is not installed)" in result.output


@pytest.mark.parametrize("size", ["2x2", "1x1", "3x3", "4096x2"])
def test_scan_of_a_picture_smaller_than_the_detectors_need_prints_no_traceback(
    size: str, tmp_path: Path
) -> None:
    from tests.unit.monitor.inference.test_worker import _tiny_segment

    width, height = map(int, size.split("x"))
    clip = tmp_path / f"tiny_{size}.ts"
    clip.write_bytes(_tiny_segment(width, height, seconds=3.0))
    result = runner.invoke(app, ["scan", str(clip), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for line in result.stdout.splitlines():  # whatever it found is the JSONL contract
        assert json.loads(line)["detector"] in {"black", "freeze", "silence"}


# ------------------------------------------------------------------ version and completion


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"vqm {version('vqm')}"


def test_shell_completion_completes_commands_and_fail_on_values() -> None:
    vqm = Path(sys.executable).with_name("vqm")

    def complete(words: str) -> list[str]:
        env = {**os.environ, "_VQM_COMPLETE": "complete_bash", "COMP_WORDS": words}
        env["COMP_CWORD"] = str(len(words.split()) - (0 if words.endswith(" ") else 1))
        done = subprocess.run([vqm], env=env, capture_output=True, text=True, timeout=60)
        return done.stdout.split()

    assert "scan" in complete("vqm sc")
    assert complete("vqm scan x --fail-on b") == ["black", "block_corruption"]
    assert {"critical", "any", "freeze"} <= set(complete("vqm scan x --fail-on "))
    script = runner.invoke(app, ["--show-completion", "bash"], prog_name="vqm").stdout
    assert "complete -o default -F _vqm_completion vqm" in script


# ------------------------------------------------------------------ exit codes and --fail-on


@pytest.mark.parametrize(
    ("fail_on", "code"),
    [
        ("any", 1),
        ("major", 1),  # a detector without its own severity is major
        ("info", 1),
        ("critical", 0),  # black is major: below the bar
        ("black", 1),
        ("freeze", 0),  # a detector that found nothing
    ],
)
def test_fail_on_sets_exit_code_one_only_for_defects_at_or_above_it(
    black_clip: Path, fail_on: str, code: int
) -> None:
    result = runner.invoke(
        app, ["scan", str(black_clip), "--format", "jsonl", "--fail-on", fail_on]
    )
    assert result.exit_code == code, result.output
    assert [json.loads(line)["detector"] for line in result.stdout.splitlines()] == ["black"]


def test_fail_on_reads_a_detectors_severity_from_the_config(
    black_clip: Path, tmp_path: Path
) -> None:
    path = tmp_path / "qc.yaml"
    path.write_text("detectors:\n  - type: black\n    severity: critical\n")
    args = ["scan", str(black_clip), "--config", str(path), "--fail-on", "critical"]
    assert runner.invoke(app, args).exit_code == 1


def test_a_clean_clip_passes_any_fail_on(clean_clip: Path) -> None:
    result = runner.invoke(app, ["scan", str(clean_clip), "--fail-on", "any"])
    assert result.exit_code == 0
    assert result.stdout == ""


def test_without_fail_on_a_scan_that_found_defects_exits_zero(black_clip: Path) -> None:
    assert runner.invoke(app, ["scan", str(black_clip), "--format", "jsonl"]).exit_code == 0


@pytest.mark.parametrize(
    ("value", "says"),
    [("sparkly", "neither a severity"), ("stutter", "add --enable stutter")],
)
def test_a_bad_fail_on_is_a_usage_error_that_says_what_is_accepted(
    black_clip: Path, value: str, says: str
) -> None:
    result = runner.invoke(app, ["scan", str(black_clip), "--fail-on", value])
    assert result.exit_code == 2
    assert says in result.stderr and result.stdout == ""


def test_an_unknown_format_is_a_usage_error(black_clip: Path) -> None:
    assert runner.invoke(app, ["scan", str(black_clip), "--format", "xml"]).exit_code == 2


def test_scan_help_documents_every_exit_code() -> None:
    text = runner.invoke(app, ["scan", "--help"], terminal_width=200).stdout
    for code in ("0  scanned", "1  scanned", "2  usage", "3  the input"):
        assert code in text


# ------------------------------------------------------------------ csv and the json summary


def test_csv_has_a_header_and_a_row_per_defect(black_clip: Path) -> None:
    result = runner.invoke(app, ["scan", str(black_clip), "--format", "csv"])
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["detector"] for r in rows] == ["black"]
    assert float(rows[0]["start"]) == pytest.approx(4.0, abs=0.1)
    assert rows[0]["label"] == "" and rows[0]["offset_ms"] == ""


def test_json_summary_is_one_object_with_counts_severities_and_the_verdict(
    black_clip: Path,
) -> None:
    args = ["scan", str(black_clip), "--format", "json", "--fail-on", "major"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["source"] == str(black_clip)
    assert summary["media_seconds"] == pytest.approx(12.0, abs=0.2)
    assert summary["counts"] == {"black": 1}
    assert summary["defects"][0]["severity"] == "major"
    assert (summary["fail_on"], summary["failing"], summary["exit_code"]) == ("major", 1, 1)


# ------------------------------------------------------------------ progress


def test_no_progress_is_drawn_when_stderr_is_not_a_terminal(black_clip: Path) -> None:
    result = runner.invoke(app, ["scan", str(black_clip), "--format", "jsonl"])
    assert result.stderr == ""


def test_a_scan_draws_progress_on_a_terminal_and_keeps_stdout_clean(black_clip: Path) -> None:
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "monitor.app.cli", "scan", str(black_clip), "--format", "jsonl"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=follower,
            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
            timeout=120,
        )
        os.close(follower)
        follower = -1
        drawn = _drain(leader)
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0
    assert [json.loads(line)["detector"] for line in done.stdout.decode().splitlines()] == ["black"]
    assert "scanning black.ts" in drawn and "/12 s" in drawn


def _drain(fd: int) -> str:
    """Everything written to a pty's follower side, once that side is closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the follower side is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
