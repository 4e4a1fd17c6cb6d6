"""Detector plugins: one module each, registered in :mod:`monitor.detectors.registry`."""

from monitor.detectors.base import Detector, DetectorConfig
from monitor.detectors.registry import build, detector_class, detector_types, register

__all__ = ["Detector", "DetectorConfig", "build", "detector_class", "detector_types", "register"]
