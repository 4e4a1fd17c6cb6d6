"""Detector plugins: one module each, registered in :mod:`monitor.inference.detectors.registry`."""

from monitor.inference.detectors.base import Detector, DetectorConfig
from monitor.inference.detectors.registry import build, detector_class, detector_types, register

__all__ = ["Detector", "DetectorConfig", "build", "detector_class", "detector_types", "register"]
