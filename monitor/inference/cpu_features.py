"""Whether this CPU runs int8 (QDQ) models as they were measured.

ONNX Runtime multiplies uint8 activations by int8 weights on x86 with ``vpmaddubsw`` where
the CPU has no 8-bit dot-product instruction (AVX-512 VNNI, AVX-VNNI, AMX): that instruction
adds pairs of products into 16 bits and saturates, so a model quantized to full 8-bit weights
reads differently there. Measured here: on an AVX2-only machine the shipped int8 block
corruption model gave a clean high-motion frame a head score of 0.64 where the float32 model
it came from gives 0.02, and its speed advantage is there only with the dot products anyway.
Arm's kernels widen before adding, so they are not affected.
"""

from __future__ import annotations

import functools
import logging
import platform
from pathlib import Path

logger = logging.getLogger(__name__)

X86 = {"x86_64", "amd64", "i386", "i686", "x86"}
DOT_PRODUCT_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8"}


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of the first processor in a ``/proc/cpuinfo`` text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def int8_exact(machine: str, flags: set[str] | None) -> bool:
    """Whether int8 models run unsaturated on ``machine`` with ``flags`` (``None``: the
    flags could not be read, so an x86 CPU is taken to lack the dot products)."""
    if machine.lower() not in X86:
        return True
    return bool(flags and flags & DOT_PRODUCT_FLAGS)


@functools.cache
def int8_exact_here() -> bool:
    """:func:`int8_exact` for this machine (read once: the CPU does not change)."""
    try:
        flags: set[str] | None = cpu_flags(Path("/proc/cpuinfo").read_text())
    except OSError as exc:
        logger.info("CPU flags unreadable (%s): int8 models taken as inexact here", exc)
        flags = None
    return int8_exact(platform.machine(), flags)
