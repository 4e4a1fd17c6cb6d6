"""Each learned detector's CPU cost per 1080p30 channel, beside decoding alone, in one run.

A 20 s clip of the synthetic channel at 1080p30 (speech and music, an IDR every 2 s) is
processed pinned to one core, in turns, ``--rounds`` times (medians kept):

- **decode**: PyAV decoding every frame and nothing else;
- **defaults**: ``vqm scan`` with the default detectors;
- **defaults + NAME**: the same with ``--enable NAME``, for each learned detector;
- **defaults + block_corruption (float32)**: the same with the float32 model the shipped
  int8 one was quantized from (``model: light_fp32``), the baseline of the quantization.

A detector's cost is its run's CPU seconds minus the defaults' run, per second of media: the
share of one core it takes per channel at its default cadence (the learned-detectors issue's
budget: at most 0.25). Decoding's share is printed beside it for scale.

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

DURATION = 20.0
LEARNED = ("block_corruption", "audio_artifact", "av_sync")
BUDGET = 0.25


FP32 = "block_corruption (float32)"


def commands(clip: Path, detectors: list[str]) -> dict[str, list[str]]:
    python, vqm = sys.executable, str(Path(sys.executable).with_name("vqm"))
    scan = [vqm, "scan", str(clip), "--format", "jsonl"]
    out = {"decode": [python, "-c", DECODE_ONLY, str(clip)], "defaults": scan}
    out.update({name: [*scan, "--enable", name] for name in detectors})
    if "block_corruption" in detectors:
        config = clip.with_name("fp32.yaml")
        config.write_text(
            "detectors:\n  - {type: block_corruption, enabled: true, model: light_fp32}\n"
        )
        out[FP32] = [*scan, "--config", str(config)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--detectors", nargs="*", default=list(LEARNED))
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        sys.exit("needs taskset (util-linux)")
    with tempfile.TemporaryDirectory(prefix="vqm-learned-") as tmp:
        clip = Path(tmp) / "1080p30.ts"
        write_clip(clip, DURATION, seed=18, width=1920, height=1080, fps=30)
        runs = commands(clip, args.detectors)
        cpu: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(args.rounds):
            for kind, cmd in runs.items():  # in turns, so a busy spell falls on all alike
                cpu[kind].append(pinned(cmd))
    median = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"1080p30, {DURATION:.0f} s, one core; CPU seconds per media second (share of a core)")
    print("| run | share of one core | against decoding | within 0.25 |")
    print("| --- | --- | --- | --- |")
    decode = median["decode"] / DURATION
    print(f"| decode only | {decode:.3f} | 1.00 | |")
    print(f"| vqm scan, defaults | {median['defaults'] / DURATION:.3f} | "
          f"{median['defaults'] / median['decode']:.2f} | |")  # fmt: skip
    for name in [*args.detectors, *([FP32] if FP32 in median else [])]:
        share = (median[name] - median["defaults"]) / DURATION
        print(f"| + {name} | {share:.3f} | {share / decode:.2f} | "
              f"{'yes' if share <= BUDGET else 'no'} |")  # fmt: skip


if __name__ == "__main__":
    main()
