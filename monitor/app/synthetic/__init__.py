"""Defect simulation: a synthetic live channel with scheduled defects, and its origin.

from monitor.app.synthetic import SyntheticChannel, DefectSchedule, Defect, write_clip
"""

from monitor.app.synthetic.channel import SyntheticChannel, write_clip
from monitor.app.synthetic.defects import Defect, DefectSchedule
from monitor.app.synthetic.encode import EncoderSettings
from monitor.app.synthetic.scenes import SceneSpec

__all__ = [
    "Defect",
    "DefectSchedule",
    "EncoderSettings",
    "SceneSpec",
    "SyntheticChannel",
    "write_clip",
]
