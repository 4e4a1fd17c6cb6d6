"""A freeze that spans segments is one continuous defect, whatever the segment length.

An encoder refines a still picture for a few frames after each keyframe; the freeze detector
once took that drift for motion and left a 0.12-0.16 s clean gap at the start of every
segment, longer than alerting's gap tolerance, so a live six-second freeze in 2 s segments
never reached the 2 s minimum duration and was never paged.
"""

from __future__ import annotations

import pytest

from alerting.intervals import join_offline
from monitor.app.synthetic.channel import SyntheticChannel
from monitor.app.synthetic.defects import Defect
from monitor.inference.detectors.freeze import FreezeConfig, FreezeDetector
from monitor.inference.media import decode_bytes

FREEZE = (3.0, 9.0)
MEDIA = 12.0


@pytest.mark.parametrize("segment", [0.4, 1.0, 2.0])
def test_a_freeze_across_segments_is_one_span_with_no_gap(segment: float) -> None:
    channel = SyntheticChannel(
        seed=5,
        segment_duration=segment,
        width=320,
        height=180,
        schedule=[Defect(kind="freeze", start=FREEZE[0], duration=FREEZE[1] - FREEZE[0])],
    )
    detector = FreezeDetector(FreezeConfig())
    results = []
    for index in range(round(MEDIA / segment)):
        decoded = decode_bytes(channel.segment_bytes(index), detector.needs)
        results.append((*detector.analysed_span(decoded), detector.detect(decoded)))
    # No recovery: any clean gap over the tolerance would split the freeze in two.
    joined = join_offline("freeze", results, min_duration=2.0, recovery=0.0)
    assert len(joined) == 1, joined
    assert joined[0]["start"] == pytest.approx(FREEZE[0], abs=0.2)
    assert joined[0]["end"] == pytest.approx(FREEZE[1], abs=0.1)
