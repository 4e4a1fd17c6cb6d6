"""vqm: real-time video quality monitor for live channels."""

__version__ = "0.1.0"
