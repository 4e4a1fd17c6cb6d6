"""The real-media catalogue: what was fetched, from where, under which licence."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESERVED = frozenset(
    {
        "python-kivy-examples",
        "pocketsphinx-testdata",
        "sonic-pi-samples",
        "opencv-doc",
        "python3-imageio",
        "pd-extendedview",
        "forensics-samples-files",
        "kphotoalbum",
        "pyannote.audio",
    }
)
_DEFAULT_ROOTS = (Path("/work/data/real"), Path(__file__).resolve().parents[2] / ".data" / "real")


@dataclass(frozen=True)
class Item:
    source: str
    path: Path
    kind: str
    duration: float
    licence: str
    content: str
    raw: dict[str, Any]


def root() -> Path | None:
    """Where the real media is, or None when it was never fetched on this machine."""
    given = os.environ.get("VQM_REAL_DATA")
    for candidate in ([Path(given)] if given else []) + list(_DEFAULT_ROOTS):
        if (candidate / "catalog.json").exists():
            return candidate
    return None


def catalogue(kind: str | None = None) -> list[Item]:
    """Every catalogued file (of ``kind``), never one from a reserved package."""
    base = root()
    if base is None:
        return []
    items = []
    for entry in json.loads((base / "catalog.json").read_text()):
        if entry["source"] in RESERVED or (kind and entry["kind"] != kind):
            continue
        path = Path(entry["path"])
        if not path.exists():
            continue
        items.append(
            Item(
                source=entry["source"],
                path=path,
                kind=entry["kind"],
                duration=float(entry.get("duration") or 0.0),
                licence=entry.get("licence", "unclear"),
                content=entry.get("content", ""),
                raw=entry,
            )
        )
    return items
