"""The contracts every stage shares: messages, the bus and the state store (interfaces and
implementations), deployment settings, metrics, channel settings and the error hierarchy.

Nothing here imports a stage or an inference library (PyAV, ONNX Runtime, OpenCV, SciPy,
NumPy, torch): an ingest or alerting process loads this and its own stage, nothing more. The
import-linter contracts in ``pyproject.toml`` keep it so.
"""
