"""Procedural programme sound at 48 kHz stereo: speech-like babble, music, quiet passages.

Sound is a sum of short events (syllables, notes, drum hits) laid out per scene from the
scene's own random generator, plus a room tone under everything. Each event is rendered on
its own and sliced, so the samples of any range are the same whichever range asks: segment
boundaries never show in the sound.

- ``speech``: syllables with a glottal pulse source through three formant resonators, a
  consonant burst in front, words of 1-3 syllables and pauses shorter than half a second.
- ``music``: chords, a bass line, plucked melody notes and drum-like transients.
- ``quiet``: the same material around -40 dBFS over a room tone; quiet, never silent.
- ``tone``: a test card's line-up tone, 1 kHz in both channels at -23 dBFS peak, which
  measures -23 LUFS (EBU Tech 3341, case 1): on target, never silent.

    samples = render_audio(plan, start_sample=96_000, count=96_000)   # (2, 96000) float32
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import firwin, lfilter

from monitor.app.synthetic.scenes import Scene, ScenePlan

RATE = 48_000
_SPEECH, _MUSIC, _ROOM = 11, 12, 13
_ROOM_BLOCK = 4096
_ROOM_TAPS = firwin(63, 2500.0, fs=RATE)
_ROOM_TAPS = (_ROOM_TAPS / np.sqrt(np.sum(_ROOM_TAPS**2))).astype(np.float32)

# Levels in dBFS (RMS): programme sound at broadcast loudness (these levels measure -23 LUFS
# within +-2 LU over a minute, EBU R128's target, with true peaks under -3 dBTP), quiet
# passages near -40.
SPEECH_DB = -27.0
MUSIC_DB = -26.0
QUIET_DB = -42.0
ROOM_DB = -56.0
QUIET_ROOM_DB = -49.0
TONE_HZ = 1000.0
TONE_PEAK_DB = -23.0

# (F1, F2, F3) in Hz and how far the mouth opens for it.
_VOWELS = (
    ((730, 1090, 2440), 1.0),  # a
    ((530, 1840, 2480), 0.7),  # e
    ((270, 2290, 3010), 0.35),  # i
    ((570, 840, 2410), 0.75),  # o
    ((300, 870, 2240), 0.3),  # u
    ((660, 1720, 2410), 0.85),  # ae
)
_CONSONANTS = (0.0, 1800.0, 2600.0, 4200.0, 6000.0)  # 0: none, else noise band centre
_PROGRESSION = ((0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12))  # I V vi IV in semitones
_SCALE = (0, 2, 4, 5, 7, 9, 11, 12)


def db_to_amp(db: float) -> float:
    return float(10.0 ** (db / 20.0))


@dataclass(frozen=True)
class Event:
    """One sound: where it starts (sample), how long, what it is, and its own seed."""

    start: int
    length: int
    kind: str
    seed: int
    amp: float
    freqs: tuple[float, ...] = ()
    opening: float = 0.0
    pan: float = 0.0


# ---------------------------------------------------------------- layout per scene


def _level_db(scene: Scene, loud_db: float) -> float:
    return QUIET_DB if scene.audio == "quiet" else loud_db


@functools.lru_cache(maxsize=64)
def scene_events(scene: Scene) -> tuple[Event, ...]:
    """Every sound event of a scene, in start order; quiet scenes talk or play softly."""
    rng = scene.rng(_SPEECH if scene.audio != "music" else _MUSIC)
    style = scene.audio
    if style == "quiet":
        style = "speech" if rng.random() < 0.6 else "music"
    if style == "speech":
        return tuple(_speech_events(scene, rng, db_to_amp(_level_db(scene, SPEECH_DB))))
    return tuple(_music_events(scene, rng, db_to_amp(_level_db(scene, MUSIC_DB))))


def _scene_samples(scene: Scene) -> tuple[int, int]:
    return scene.first_frame * RATE // scene.fps, scene.end_frame * RATE // scene.fps


def _speech_events(scene: Scene, rng: np.random.Generator, amp: float) -> list[Event]:
    """Phrases of words of syllables; gaps between words short, pauses under 0.5 s."""
    f0 = rng.uniform(95, 135) if rng.random() < 0.5 else rng.uniform(170, 230)
    start, end = _scene_samples(scene)
    t = start + int(rng.uniform(0.05, 0.3) * RATE)
    events: list[Event] = []
    while t < end:
        for _word in range(int(rng.integers(2, 8))):
            for _syl in range(int(rng.integers(1, 4))):
                length = int(rng.uniform(0.12, 0.26) * RATE)
                vowel = int(rng.integers(len(_VOWELS)))
                pitch = f0 * rng.uniform(0.9, 1.15)
                fric = _CONSONANTS[int(rng.integers(len(_CONSONANTS)))]
                events.append(
                    Event(
                        t,
                        length,
                        "syllable",
                        int(rng.integers(2**31)),
                        amp * db_to_amp(rng.uniform(-3, 3)),
                        (pitch, float(vowel), fric),
                        _VOWELS[vowel][1],
                    )
                )
                t += int(length * rng.uniform(0.85, 1.0))
            t += int(rng.uniform(0.03, 0.14) * RATE)
        t += int(rng.uniform(0.15, 0.42) * RATE)
    return events


def _music_events(scene: Scene, rng: np.random.Generator, amp: float) -> list[Event]:
    """Bars of a I-V-vi-IV progression with bass, melody and (usually) drums."""
    beat = 60.0 / rng.uniform(84, 140)
    root = 440.0 * 2 ** ((rng.integers(-12, 0)) / 12)
    drums = rng.random() < 0.7
    start, end = _scene_samples(scene)
    events: list[Event] = []
    bar = 0
    t0 = start
    while t0 < end:
        chord = _PROGRESSION[bar % len(_PROGRESSION)]
        freqs = tuple(root * 2 ** (s / 12) for s in chord)
        bar_len = int(4 * beat * RATE)
        events.append(Event(t0, bar_len, "chord", int(rng.integers(2**31)), amp * 0.5, freqs))
        events.append(
            Event(t0, bar_len, "bass", int(rng.integers(2**31)), amp * 0.8, (freqs[0] / 4,))
        )
        for b in range(8):
            at = t0 + int(b * beat / 2 * RATE)
            if b % 2 == 0 and rng.random() < 0.75:
                note = root * 2 * 2 ** (_SCALE[int(rng.integers(len(_SCALE)))] / 12)
                events.append(
                    Event(
                        at,
                        int(0.45 * RATE),
                        "pluck",
                        int(rng.integers(2**31)),
                        amp * 0.6,
                        (note,),
                        pan=float(rng.uniform(-0.5, 0.5)),
                    )
                )
            if drums:
                events.extend(_drum_hits(at, b, rng, amp))
        t0 += bar_len
        bar += 1
    events.sort(key=lambda e: e.start)
    return events


def _drum_hits(at: int, half_beat: int, rng: np.random.Generator, amp: float) -> list[Event]:
    hits = []
    if half_beat in (0, 4):
        hits.append(Event(at, int(0.3 * RATE), "kick", int(rng.integers(2**31)), amp * 1.6))
    if half_beat in (2, 6):
        hits.append(Event(at, int(0.25 * RATE), "snare", int(rng.integers(2**31)), amp * 1.0))
    if rng.random() < 0.8:
        hits.append(
            Event(
                at,
                int(0.08 * RATE),
                "hat",
                int(rng.integers(2**31)),
                amp * 0.35,
                pan=float(rng.uniform(-0.6, 0.6)),
            )
        )
    return hits


# ---------------------------------------------------------------- rendering one event


def _resonator(x: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    r = math.exp(-math.pi * bandwidth / RATE)
    a = [1.0, -2.0 * r * math.cos(2 * math.pi * freq / RATE), r * r]
    return lfilter([1.0 - r], a, x)


def _envelope(n: int, attack: float, release: float) -> np.ndarray:
    i = np.arange(n, dtype=np.float32)
    up = np.minimum(1.0, i / max(1.0, attack * RATE))
    down = np.minimum(1.0, (n - i) / max(1.0, release * RATE))
    return np.minimum(up, down)


def _normalised(x: np.ndarray, amp: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    return (x * (amp / rms)).astype(np.float32) if rms > 0 else x.astype(np.float32)


def _syllable(ev: Event, rng: np.random.Generator) -> np.ndarray:
    pitch, vowel, fric = ev.freqs
    n = ev.length
    t = np.arange(n) / RATE
    f0 = (
        pitch * (1 + 0.06 * np.sin(2 * np.pi * rng.uniform(1, 3) * t)) * (1 - 0.12 * t / (n / RATE))
    )
    phase = np.cumsum(f0) / RATE
    source = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(np.float64)
    source = lfilter([1.0], [1.0, -0.96], source) + 0.03 * rng.standard_normal(n)
    voiced = source
    for freq, bw in zip(_VOWELS[int(vowel)][0], (90.0, 110.0, 160.0), strict=True):
        voiced = _resonator(voiced, freq * rng.uniform(0.93, 1.07), bw)
    voiced = np.diff(voiced, prepend=0.0)  # lip radiation: +6 dB per octave
    out = _normalised(voiced * _envelope(n, 0.025, 0.05), 1.0)
    if fric > 0:
        k = int(rng.uniform(0.03, 0.07) * RATE)
        burst = _resonator(rng.standard_normal(k), fric, fric * 0.5)
        out[:k] += _normalised(burst * _envelope(k, 0.005, 0.02), 0.5)
    return out


def _tone(ev: Event, harmonics: tuple[float, ...], decay: float) -> np.ndarray:
    t = np.arange(ev.length, dtype=np.float32) / RATE
    out = np.zeros(ev.length, np.float32)
    for f in ev.freqs:
        for k, weight in enumerate(harmonics, start=1):
            if f * k < RATE / 2:
                out += weight * np.sin(np.float32(2 * np.pi * f * k) * t)
    env = _envelope(ev.length, 0.004 if decay < 1 else 0.04, 0.05) * np.exp(-t / decay)
    return out * env


def _drum(ev: Event, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(ev.length) / RATE
    if ev.kind == "kick":
        freq = 50 + 110 * np.exp(-t / 0.03)
        return np.sin(2 * np.pi * np.cumsum(freq) / RATE) * np.exp(-t / 0.12)
    noise = np.diff(rng.standard_normal(ev.length + 1))
    if ev.kind == "snare":
        return 0.6 * noise * np.exp(-t / 0.06) + np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.05)
    return np.diff(noise, prepend=0.0) * np.exp(-t / 0.015)


@functools.lru_cache(maxsize=256)
def render_event(ev: Event) -> np.ndarray:
    """The event's samples, (2, length) float32; cached because segments share events."""
    rng = np.random.default_rng(ev.seed)
    if ev.kind == "syllable":
        mono = _syllable(ev, rng)
    elif ev.kind == "chord":
        mono = _tone(ev, (1.0, 0.4, 0.2), 2.5)
    elif ev.kind == "bass":
        mono = _tone(ev, (1.0, 0.5), 0.6)
    elif ev.kind == "pluck":
        mono = _tone(ev, (1.0, 0.6, 0.35, 0.2), 0.18)
    else:
        mono = _drum(ev, rng)
    mono = _normalised(np.asarray(mono, np.float64), ev.amp)
    left, right = (
        math.sqrt(0.5 * (1 - ev.pan)) * math.sqrt(2),
        math.sqrt(0.5 * (1 + ev.pan)) * math.sqrt(2),
    )
    out = np.stack([mono * left, mono * right]).astype(np.float32)
    out.setflags(write=False)
    return out


# ---------------------------------------------------------------- mixing a range


def room_tone(seed: int, start: int, count: int) -> np.ndarray:
    """Low-passed noise at unit RMS, (2, count), the same samples for any range that asks."""
    taps = len(_ROOM_TAPS)
    first_block = (start - taps + 1) // _ROOM_BLOCK
    last_block = (start + count - 1) // _ROOM_BLOCK
    blocks = [
        np.random.default_rng([seed, b + 2**40, _ROOM]).standard_normal(
            (2, _ROOM_BLOCK), dtype=np.float32
        )
        for b in range(first_block, last_block + 1)
    ]
    noise = np.concatenate(blocks, axis=1)
    offset = start - taps + 1 - first_block * _ROOM_BLOCK
    window = noise[:, offset : offset + count + taps - 1]
    return np.stack([np.convolve(ch, _ROOM_TAPS, mode="valid") for ch in window]).astype(np.float32)


def line_up_tone(lo: int, hi: int) -> np.ndarray:
    """Samples [lo, hi) of a continuous 1 kHz tone: a pure function of the sample index, so
    segment boundaries never show in it."""
    n = np.arange(lo, hi, dtype=np.float64)
    return (db_to_amp(TONE_PEAK_DB) * np.sin(2 * np.pi * TONE_HZ * n / RATE)).astype(np.float32)


def _mix_scene(out: np.ndarray, scene: Scene, start: int, lo: int, hi: int) -> None:
    """Add the scene's events clipped to [lo, hi) (absolute samples) into ``out``."""
    if scene.audio == "tone":
        out[:, lo - start : hi - start] += line_up_tone(lo, hi)
        return
    s1 = _scene_samples(scene)[1]
    for ev in scene_events(scene):
        a, b = max(lo, ev.start), min(hi, ev.start + ev.length, s1)
        if a >= b:
            if ev.start >= hi:
                break
            continue
        out[:, a - start : b - start] += render_event(ev)[:, a - ev.start : b - ev.start]
    level = db_to_amp(QUIET_ROOM_DB if scene.audio == "quiet" else ROOM_DB)
    out[:, lo - start : hi - start] += level * room_tone(scene.seed, lo, hi - lo)


def render_audio(plan: ScenePlan, start: int, count: int) -> np.ndarray:
    """Samples [start, start + count) of the channel, (2, count) float32; zeros before 0."""
    out = np.zeros((2, count), np.float32)
    lo = max(0, start)
    hi = start + count
    if hi <= lo:
        return out
    first_frame = lo * plan.fps // RATE
    last_frame = (hi - 1) * plan.fps // RATE + 1
    for scene in plan.scenes_between(first_frame, last_frame):
        s0, s1 = _scene_samples(scene)
        a, b = max(lo, s0), min(hi, s1)
        if a < b:
            _mix_scene(out, scene, start, a, b)
    np.clip(out, -1.0, 1.0, out=out)
    return out


def syllable_envelope(scene: Scene, times: np.ndarray) -> np.ndarray:
    """How open a speaker's mouth is at each time (seconds), 0-1, following the syllables.

    The talking-head picture draws its mouth from this, so lips move with the sound.
    """
    opening = np.zeros(len(times), np.float32)
    if scene.audio not in ("speech", "quiet"):
        return opening
    samples = np.asarray(times) * RATE
    for ev in scene_events(scene):
        if ev.kind != "syllable":
            break
        x = (samples - ev.start) / ev.length
        inside = (x >= 0) & (x < 1)
        if np.any(inside):
            shape = np.clip(np.minimum(x / 0.3, (1 - x) / 0.4), 0, 1)
            opening = np.maximum(opening, np.where(inside, shape * ev.opening, 0))
    return opening
