"""Defect simulation: a synthetic live channel with scheduled defects, and its origin.

from monitor.synth import SyntheticChannel, DefectSchedule, Defect, write_clip
"""

from monitor.synth.channel import SyntheticChannel, write_clip
from monitor.synth.defects import Defect, DefectSchedule
from monitor.synth.encode import EncoderSettings
from monitor.synth.scenes import SceneSpec

__all__ = [
    "Defect",
    "DefectSchedule",
    "EncoderSettings",
    "SceneSpec",
    "SyntheticChannel",
    "write_clip",
]
