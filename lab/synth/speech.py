"""Clean speech for training and tests: real synthesized speech from ``espeak-ng``.

espeak-ng speaks many languages and voice variants offline, so the clean material has real
formants, plosives and pauses without shipping any recordings. Clips are cached on disk
(``~/.cache/vqm/speech/`` or ``$VQM_CACHE_DIR/speech``) because rendering is the slow part::

    voice = Voice("de", variant="f2", rate=150, pitch=60)
    audio = speak(pseudo_text(rng), voice)          # float32 mono at 48 kHz

Training and held-out evaluation draw from disjoint voice lists (``TRAIN_VOICES`` against
``HELDOUT_VOICES``: different languages and different variants) and from pseudo-texts made
by disjoint seeds, so a held-out score is never a score on voices the model has heard.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

logger = logging.getLogger(__name__)

RATE = 48_000

TRAIN_LANGUAGES = ("en-us", "en-gb", "de", "fr-fr", "es", "it", "nl", "pt", "pl", "sv", "hi", "ja")
TRAIN_VARIANTS = ("", "m1", "m2", "m3", "f1", "f2", "f5", "croak", "klatt", "adam", "linda", "max")
HELDOUT_LANGUAGES = ("en-gb-x-rp", "en-029", "ru", "cs", "fi", "hu", "tr", "el")
HELDOUT_VARIANTS = ("m4", "m5", "f3", "f4", "klatt2", "edward", "belinda", "iven")
# Whispering and robot variants are left out: breathy noise and buzz are what hiss and
# distortion sound like, so they would be label noise for the "none" class.

_ONSETS = ("b", "d", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "sh", "ch", "fr", "st", "")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ee", "oo")
_CODAS = ("", "", "n", "s", "t", "r", "m", "ng", "ck")


class SpeechUnavailable(RuntimeError):
    """espeak-ng is not installed (``apt-get install espeak-ng``)."""


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: language, optional variant (``+f2``), words per minute, pitch 0-99."""

    language: str
    variant: str = ""
    rate: int = 160
    pitch: int = 50

    @property
    def spec(self) -> str:
        return f"{self.language}+{self.variant}" if self.variant else self.language


def available() -> bool:
    return shutil.which("espeak-ng") is not None


def cache_dir() -> Path:
    root = os.environ.get("VQM_CACHE_DIR") or Path.home() / ".cache" / "vqm"
    return Path(root) / "speech"


def random_voice(rng: np.random.Generator, heldout: bool = False) -> Voice:
    """A voice from the training or the held-out lists, with random rate and pitch."""
    languages = HELDOUT_LANGUAGES if heldout else TRAIN_LANGUAGES
    variants = HELDOUT_VARIANTS if heldout else TRAIN_VARIANTS
    return Voice(
        language=str(rng.choice(languages)),
        variant=str(rng.choice(variants)),
        rate=int(rng.integers(110, 230)),
        pitch=int(rng.integers(15, 90)),
    )


def pseudo_text(rng: np.random.Generator, words: int | None = None) -> str:
    """Pronounceable nonsense: endless disjoint texts from disjoint seeds, in any voice."""
    count = words if words is not None else int(rng.integers(6, 16))
    out = []
    for _ in range(count):
        syllables = int(rng.integers(1, 4))
        out.append("".join(_syllable(rng) for _ in range(syllables)))
        if rng.random() < 0.12:
            out[-1] += "," if rng.random() < 0.7 else "."
    return " ".join(out) + "."


def _syllable(rng: np.random.Generator) -> str:
    return str(rng.choice(_ONSETS)) + str(rng.choice(_VOWELS)) + str(rng.choice(_CODAS))


def speak(text: str, voice: Voice, rate: int = RATE) -> np.ndarray:
    """``text`` spoken by ``voice`` as float32 mono at ``rate``, peak-normalised to 0.5."""
    native, native_rate = _cached(text, voice)
    audio = native.astype(np.float32) / 32768.0
    g = math.gcd(rate, native_rate)
    audio = resample_poly(audio, rate // g, native_rate // g).astype(np.float32)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio * np.float32(0.5 / peak) if peak > 0 else audio


def _cached(text: str, voice: Voice) -> tuple[np.ndarray, int]:
    """int16 samples and their rate, rendered once per (voice, text) and kept on disk."""
    path = cache_dir() / f"{_key(text, voice)}.npz"
    if path.exists():
        with np.load(path) as stored:
            return stored["samples"], int(stored["rate"])
    samples, native_rate = _render(text, voice)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, samples=samples, rate=np.int64(native_rate))
    tmp.replace(path)  # atomic: parallel renderers never read a half-written clip
    return samples, native_rate


def _key(text: str, voice: Voice) -> str:
    return hashlib.sha256(f"{voice.spec}|{voice.rate}|{voice.pitch}|{text}".encode()).hexdigest()[
        :24
    ]


def _render(text: str, voice: Voice) -> tuple[np.ndarray, int]:
    """Run espeak-ng once; int16 samples at its native rate (22050 Hz)."""
    if not available():
        raise SpeechUnavailable("espeak-ng not found on PATH (apt-get install espeak-ng)")
    cmd = ["espeak-ng", "-v", voice.spec, "-s", str(voice.rate), "-p", str(voice.pitch), "--stdout"]
    result = subprocess.run(cmd + [text], capture_output=True, timeout=60, check=False)
    if result.returncode != 0 or len(result.stdout) < 44:
        reason = result.stderr.decode(errors="replace").strip().splitlines()[:1]
        raise SpeechUnavailable(f"espeak-ng failed for voice {voice.spec}: {reason}")
    return _wav_samples(result.stdout)


def _wav_samples(data: bytes) -> tuple[np.ndarray, int]:
    """Samples of a streamed WAV: espeak's ``--stdout`` header has no real length, so the data
    chunk runs to the end of the bytes."""
    with wave.open(io.BytesIO(data)) as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SpeechUnavailable("espeak-ng produced an unexpected WAV format")
        native_rate = w.getframerate()
    start = data.find(b"data") + 8
    body = data[start : start + (len(data) - start) // 2 * 2]
    return np.frombuffer(body, dtype="<i2").copy(), native_rate


class SpeechPool:
    """A fixed set of rendered clips to cut excerpts from, so thousands of training windows
    need only a few hundred espeak runs (and a bounded cache).

    ``heldout`` picks the voice lists; ``seed`` picks voices and texts, so pools with
    different seeds share no text.
    """

    def __init__(self, seed: int, size: int = 200, heldout: bool = False) -> None:
        self.seed, self.size, self.heldout = seed, size, heldout
        self._clips: list[np.ndarray] = []

    def clips(self) -> list[np.ndarray]:
        if not self._clips:
            rng = np.random.default_rng([7, int(self.heldout), self.seed])
            for _ in range(self.size):
                clip = speak(pseudo_text(rng), random_voice(rng, heldout=self.heldout))
                if clip.size:
                    self._clips.append(clip)
            logger.info("speech pool: %d clips, %.0f s", len(self._clips), self.seconds)
        return self._clips

    @property
    def seconds(self) -> float:
        return sum(c.size for c in self._clips) / RATE

    def excerpt(self, rng: np.random.Generator, seconds: float, rate: int = RATE) -> np.ndarray:
        """``seconds`` of speech from a random clip and offset; short clips are chained."""
        if rate != RATE:
            raise ValueError(f"pool clips are at {RATE} Hz")
        n = int(round(seconds * rate))
        parts: list[np.ndarray] = []
        have = 0
        while have < n:
            clip = self.clips()[int(rng.integers(len(self.clips())))]
            start = int(rng.integers(0, max(1, clip.size - (n - have)))) if not parts else 0
            piece = clip[start : start + n - have]
            parts.append(piece)
            have += piece.size
        return np.concatenate(parts).astype(np.float32)
