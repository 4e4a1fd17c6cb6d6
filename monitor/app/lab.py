"""Reaching the lab (simulation, training, evaluation) from ``vqm train`` and ``vqm eval``.

The lab is not installed by the wheel: it lives in the checkout's ``lab/`` folder beside the
product packages. Run from a checkout (``pip install -e .``), the commands find it there; an
installed vqm says so in one line instead of failing with an import error.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

CHECKOUT = Path(__file__).resolve().parents[2]


class LabMissing(RuntimeError):
    """The lab is not beside this vqm (an installed wheel, not a checkout)."""


def lab_module(name: str) -> ModuleType:
    """``lab.<name>`` imported from the checkout; :class:`LabMissing` when there is none.

    A module that exists but needs what is not installed (torch for training) raises its own
    :class:`ModuleNotFoundError`, so the caller can name the missing extra.
    """
    if not (CHECKOUT / "lab" / "__init__.py").exists():
        raise LabMissing(
            "training and evaluation run from a source checkout (the lab is not installed)"
        )
    if str(CHECKOUT) not in sys.path:
        sys.path.append(str(CHECKOUT))
    return importlib.import_module(f"lab.{name}")
