"""``vqm eval signal``: freeze, black and silence against FFmpeg's filters on labelled clips.

The clip set is generated from the synthetic channel with seeds (11000 and up) and scene
mixes the tests do not use: a third of the clips carry no defect at all and consist of hard
negatives only (dark scenes, fades, slow pans, near-static talking shots, quiet passages);
the others carry one to three defects, several of them placed on top of hard negatives
(black inside a dark scene, a freeze inside a talking shot, silence after a quiet passage).
Both vqm and FFmpeg are scored the same way (:mod:`lab.evaluation.scoring`).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lab.evaluation.ffmpeg_baseline import run_baseline
from lab.evaluation.scoring import Event, Score, match
from monitor.app.progress import track
from monitor.app.scan import scan
from monitor.app.synthetic.channel import write_clip
from monitor.app.synthetic.defects import Defect, DefectSchedule
from monitor.app.synthetic.scenes import SceneSpec

DETECTORS = ("black", "freeze", "silence")
FIRST_SEED = 11000
DEV_SEED = 5000
CLIP_SECONDS = 24.0
HARD_NEGATIVES = ("dark", "fade", "slow_pan", "talking")


@dataclass
class Clip:
    name: str
    seed: int
    scenes: list[SceneSpec]
    schedule: DefectSchedule

    @property
    def clean(self) -> bool:
        return not self.schedule.defects


def _scenes(rng: np.random.Generator, hard: bool) -> list[SceneSpec]:
    kinds = HARD_NEGATIVES if hard else ("studio", "crowd", "high_motion", *HARD_NEGATIVES)
    out = []
    for _ in range(6):
        kind = str(rng.choice(kinds))
        audio = "quiet" if hard and rng.random() < 0.4 else None
        out.append(SceneSpec(kind=kind, audio=audio, duration=float(rng.uniform(3.5, 6.0))))  # type: ignore[arg-type]
    return out


def _defects(rng: np.random.Generator) -> list[Defect]:
    count = int(rng.integers(1, 4))
    slots = rng.permutation(4)[:count]  # four 6-second slots, at most one defect each
    out = []
    for slot in sorted(slots):
        kind = str(rng.choice(DETECTORS))
        duration = float(rng.uniform(2.6, 4.5))
        start = float(slot * 6.0 + rng.uniform(0.5, 5.8 - duration))
        out.append(Defect(kind=kind, start=round(start, 2), duration=round(duration, 2)))  # type: ignore[arg-type]
    return out


def clip_set(count: int, first_seed: int = FIRST_SEED) -> list[Clip]:
    """``count`` clips: every third one clean and made of hard negatives only.

    Thresholds are developed on ``first_seed=DEV_SEED``; the reported figures use
    ``FIRST_SEED``, never looked at while tuning.
    """
    clips = []
    for i in range(count):
        seed = first_seed + i
        rng = np.random.default_rng(seed)
        clean = i % 3 == 0
        scenes = _scenes(rng, hard=clean or i % 3 == 1)
        defects = [] if clean else _defects(rng)
        name = f"clip{i:02d}-{'clean' if clean else 'defects'}"
        clips.append(Clip(name, seed, scenes, DefectSchedule(defects=defects)))
    return clips


def _truth(clip: Clip) -> list[Event]:
    return [Event(d.kind, d.start, d.start + d.duration) for d in clip.schedule.defects]


def _origin(path: str) -> float:
    """PTS of the first decoded frame, the zero of ``vqm scan`` times."""
    from monitor.inference.media import iter_decoded

    first = next(iter_decoded(path, chunk_seconds=0.5))
    return float(first.video_times[0]) if first.has_video else first.audio_start


def evaluate(count: int, workdir: Path) -> dict[str, dict[str, Score]]:
    """Scores per system and detector over ``count`` generated clips."""
    totals = {s: {d: Score() for d in DETECTORS} for s in ("vqm", "ffmpeg")}
    for clip in track(clip_set(count), "evaluating clips"):
        path = str(workdir / f"{clip.name}.ts")
        write_clip(path, CLIP_SECONDS, clip.seed, clip.schedule, scenes=clip.scenes)
        truth = _truth(clip)
        ours = [Event(d.detector, d.start, d.end) for d in scan(path)]
        theirs = run_baseline(path, _origin(path))
        for system, predicted in (("vqm", ours), ("ffmpeg", theirs)):
            for det in DETECTORS:
                score = match(
                    [e for e in truth if e.detector == det],
                    [e for e in predicted if e.detector == det],
                    clean=clip.clean,
                )
                score.misses = [f"{clip.name}: {m}" for m in score.misses]
                totals[system][det].add(score)
    return totals


def table(totals: dict[str, dict[str, Score]], count: int) -> str:
    rows = [
        f"Labelled set: {count} generated clips of {CLIP_SECONDS:.0f} s "
        f"(seeds {FIRST_SEED}-{FIRST_SEED + count - 1}); event-level scoring.",
        "",
        "| detector | vqm P | vqm R | vqm F1 | FFmpeg P | FFmpeg R | FFmpeg F1 "
        "| false alerts on clean clips (vqm / FFmpeg) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for det in DETECTORS:
        ours, theirs = totals["vqm"][det], totals["ffmpeg"][det]
        rows.append(
            f"| {det} | {ours.precision:.3f} | {ours.recall:.3f} | {ours.f1:.3f} | "
            f"{theirs.precision:.3f} | {theirs.recall:.3f} | {theirs.f1:.3f} | "
            f"{ours.false_on_clean} / {theirs.false_on_clean} |"
        )
    return "\n".join(rows)


def main(clips: int = 24, out: Path | None = None) -> dict[str, dict[str, Score]]:
    with tempfile.TemporaryDirectory(prefix="vqm-eval-") as tmp:
        totals = evaluate(clips, Path(tmp))
    print(table(totals, clips))
    for system in ("vqm", "ffmpeg"):
        for det in DETECTORS:
            for miss in totals[system][det].misses:
                print(f"  {system}: {miss}")
    if out is not None:
        out.write_text(
            json.dumps(
                {
                    s: {
                        d: {
                            "precision": v.precision,
                            "recall": v.recall,
                            "f1": v.f1,
                            "tp": v.tp,
                            "fp": v.fp,
                            "fn": v.fn,
                            "false_on_clean": v.false_on_clean,
                        }
                        for d, v in per.items()
                    }
                    for s, per in totals.items()
                },
                indent=2,
            )
        )
    return totals
