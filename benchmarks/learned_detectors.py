"""Each learned detector's CPU cost per 1080p30 channel, beside decoding alone, in one run.

A 20 s clip of the synthetic channel at 1080p30 (speech and music, an IDR every 2 s) is
processed pinned to one core, in turns, ``--rounds`` times (medians kept):

- **decode**: PyAV decoding every frame and nothing else;
- **defaults**: ``vqm scan`` with the default detectors;
- **defaults + NAME**: the same with ``--enable NAME``, for each learned detector;
- **defaults + block_corruption (int8)** and **(float32)**: the same with each block model
  named (``model: light``, ``model: light_fp32``, the float32 model the int8 one was
  quantized from: the baseline of the quantization); the plain run takes ``model: auto``,
  which is the float32 one on an x86 CPU without 8-bit dot products (printed above the table).

Each run is made on the 20 s clip and on a 2 s one, so start-up (imports, loading models: paid
once by a live worker, not per second of media) drops out: a run's steady cost is its CPU
seconds on the long clip less those on the short one, per second of media between them, and
its start-up what the short run took beyond that. A detector's cost is its run's steady cost
minus the defaults' run's: the share of one core it takes per channel at its default cadence
(the learned-detectors issue's budget: at most 0.25). Decoding's share is printed beside it
for scale, and each run's start-up in CPU seconds.

    python benchmarks/learned_detectors.py --rounds 3 [--detectors block_corruption ...]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.capacity import DECODE_ONLY, pinned  # noqa: E402
from monitor.app.synthetic.channel import write_clip  # noqa: E402
from monitor.inference.detectors.block_corruption import model_name_for  # noqa: E402

DURATION = 20.0
SHORT = 2.0  # the clip whose run measures start-up
LEARNED = ("block_corruption", "audio_artifact", "av_sync")
BUDGET = 0.25


FP32 = "block_corruption (float32)"
INT8 = "block_corruption (int8)"
VARIANTS = {INT8: "light", FP32: "light_fp32"}


def commands(clip: Path, detectors: list[str]) -> dict[str, list[str]]:
    python, vqm = sys.executable, str(Path(sys.executable).with_name("vqm"))
    scan = [vqm, "scan", str(clip), "--format", "jsonl"]
    out = {"decode": [python, "-c", DECODE_ONLY, str(clip)], "defaults": scan}
    out.update({name: [*scan, "--enable", name] for name in detectors})
    if "block_corruption" in detectors:
        for name, model in VARIANTS.items():
            config = clip.with_name(f"{model}.yaml")
            config.write_text(
                f"detectors:\n  - {{type: block_corruption, enabled: true, model: {model}}}\n"
            )
            out[name] = [*scan, "--config", str(config)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--detectors", nargs="*", default=list(LEARNED))
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        sys.exit("needs taskset (util-linux)")
    with tempfile.TemporaryDirectory(prefix="vqm-learned-") as tmp:
        runs: dict[tuple[float, str], list[str]] = {}
        for seconds in (DURATION, SHORT):
            clip = Path(tmp) / f"{seconds:.0f}" / "1080p30.ts"
            clip.parent.mkdir()
            write_clip(clip, seconds, seed=18, width=1920, height=1080, fps=30)
            runs.update({(seconds, k): c for k, c in commands(clip, args.detectors).items()})
        cpu: dict[tuple[float, str], list[float]] = {k: [] for k in runs}
        for _ in range(args.rounds):
            for key, cmd in runs.items():  # in turns, so a busy spell falls on all alike
                cpu[key].append(pinned(cmd))
    median = {k: statistics.median(v) for k, v in cpu.items()}
    kinds = [k for length, k in runs if length == DURATION]
    steady = {k: (median[DURATION, k] - median[SHORT, k]) / (DURATION - SHORT) for k in kinds}
    startup = {k: median[SHORT, k] - SHORT * steady[k] for k in kinds}
    print("1080p30, one core; CPU seconds per media second (share of a core), start-up apart")
    print(f"block_corruption's model: auto runs {model_name_for('auto')} on this CPU")
    print("| run | share of one core | against decoding | within 0.25 | start-up, CPU s |")
    print("| --- | --- | --- | --- | --- |")
    decode = steady["decode"]
    print(f"| decode only | {decode:.3f} | 1.00 | | {startup['decode']:.2f} |")
    print(f"| vqm scan, defaults | {steady['defaults']:.3f} | "
          f"{steady['defaults'] / decode:.2f} | | {startup['defaults']:.2f} |")  # fmt: skip
    for name in [*args.detectors, *(v for v in VARIANTS if v in steady)]:
        share = steady[name] - steady["defaults"]
        print(f"| + {name} | {share:.3f} | {share / decode:.2f} | "
              f"{'yes' if share <= BUDGET else 'no'} | {startup[name]:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
