"""`vqm scan` keeps its output contract; bad input gives one clear line and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.app.cli import app
from monitor.app.synthetic.channel import write_clip
from monitor.app.synthetic.defects import Defect

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
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "notes.txt" in lines[0]


def test_scan_of_a_missing_file_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", str(tmp_path / "absent.ts")])
    assert result.exit_code != 0
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
