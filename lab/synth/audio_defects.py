"""Clean programme audio and the four audio defects the ``audio_artifact`` model learns.

Clean material (the "none" class, and what every defect is laid over):

- speech: real espeak-ng speech (:mod:`lab.synth.speech`), quiet to loud;
- music: procedural songs: additive-synth chords, bass and melody, kick/snare/hat percussion;
- speech over a music bed; ambience (low rumble, distant babble, birdsong);
- the synthetic live channel's own sound (:mod:`monitor.app.synthetic.audio`), so the demo is clean;
- transient passages (claps, knocks, drum hits over near-silence), the hard negatives for click;
- quiet passages and digital silence; loud passages peaking near full scale but never clipped,
  the hard negatives for distortion.

Defects, each over a stretch ``[start, end)`` of the audio (``RECIPE`` holds every range):

- click: impulses and bursts under a millisecond, 1 to 20 per second, 12-32 dB over the
  programme's RMS;
- hum: 50 or 60 Hz mains with harmonics: pure (0-12 dB under the programme) or a buzz rich in
  odd harmonics (0-20 dB under);
- hiss: white or pink noise at 3-30 dB SNR;
- distortion: hard clipping, tanh soft clipping or bit crushing, level-matched, kept only when
  it changes the audio by more than -15 dB (so a clipped pause is not labelled distortion).

Everything takes a ``numpy.random.Generator``: the same seed gives the same audio::

    rng = np.random.default_rng([2, 0, 17])
    window = labelled_window(rng, "hum", pool)      # 1 s at 48 kHz plus margins
    audio = apply_defect(programme, "click", rng, start=0.5, end=1.5)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.signal import butter, sosfilt

from lab.synth.speech import SpeechPool
from monitor.app.synthetic.audio import RATE as CHANNEL_RATE
from monitor.app.synthetic.audio import render_audio
from monitor.app.synthetic.scenes import ScenePlan

logger = logging.getLogger(__name__)

RATE = 48_000
CLASSES = ("none", "hum", "hiss", "distortion", "click")
DEFECTS = CLASSES[1:]
WINDOW = 1.0
MARGIN = 0.1  # seconds of context each side of a window, so resampling has no edge effects

RECIPE: dict[str, Any] = {
    "rate_hz": RATE,
    "window_s": WINDOW,
    "defect_cover_s": [0.5, 1.0],
    "content_mix": {
        "speech": 0.22,
        "music": 0.20,
        "channel": 0.22,
        "speech_over_music": 0.08,
        "ambience": 0.10,
        "transients": 0.10,
        "silence": 0.03,
        "quiet_speech_or_music": 0.05,
    },
    "channel_plan_seeds": {"train": [0, 100_000], "heldout": [100_000_000, 100_100_000]},
    "programme_rms_dbfs": {"normal": [-32, -14], "quiet": [-52, -36], "loud_peak": [0.89, 0.99]},
    "click": {
        "per_second": [1, 20],
        "over_rms_db": [12, 32],
        "rms_floor": 0.004,
        "shapes": ["impulse", "burst 2-48 samples", "ringing 0.3-1 ms"],
    },
    "hum": {
        "mains_hz": [50, 60],
        "drift": 0.003,
        # A pure 50/60 Hz tone needs more level to be heard than a buzz (the ear is ~40 dB
        # less sensitive at 50 Hz than at 1 kHz), so it is drawn closer to the programme.
        "under_programme_db": {"pure": [0, 12], "buzz": [0, 20]},
        "floor_dbfs": [-60, -40],
        "profiles": ["pure (2-4 weak harmonics)", "buzz (odd, to 1.5 kHz)"],
    },
    "hiss": {"kinds": ["white", "pink"], "snr_db": [3, 30], "floor_dbfs": [-60, -40]},
    "distortion": {
        "hard_clip_of_peak": [0.05, 0.5],
        "tanh_drive": [3, 30],
        "bitcrush_bits": [3, 5],
        "bitcrush_hold": [1, 2, 3, 4, 6],
        "min_change_db": -15,
    },
}


# ----------------------------------------------------------------------------- helpers


def db_to_amp(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _set_rms(x: np.ndarray, target_db: float) -> np.ndarray:
    level = rms(x)
    out = x * (db_to_amp(target_db) / level) if level > 0 else x
    return _under_full_scale(out)


def _under_full_scale(x: np.ndarray, ceiling: float = 0.99) -> np.ndarray:
    """Clean programme must never clip, or "none" would contain distortion."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return x * (ceiling / peak) if peak > ceiling else x


def _fade(n: int, rate: int, seconds: float = 0.02) -> np.ndarray:
    """A gain ramp so a defect starts and stops without a click of its own."""
    ramp = min(n // 2, int(seconds * rate))
    gain = np.ones(n)
    if ramp > 0:
        edge = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
        gain[:ramp], gain[n - ramp :] = edge, edge[::-1]
    return gain


def _bandpass(x: np.ndarray, low: float | None, high: float | None, rate: int) -> np.ndarray:
    if not low and not high:
        return x
    return np.asarray(sosfilt(_design(round(low or 0), round(high or 0), rate), x))


@functools.lru_cache(maxsize=256)
def _design(low: int, high: int, rate: int) -> np.ndarray:
    """Butterworth sections; cached because drums ask for the same few bands again and again."""
    if low and high:
        return np.asarray(butter(4, [low, high], btype="bandpass", fs=rate, output="sos"))
    if low:
        return np.asarray(butter(4, low, btype="highpass", fs=rate, output="sos"))
    return np.asarray(butter(4, high, btype="lowpass", fs=rate, output="sos"))


def pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """1/f noise by shaping white noise's spectrum; unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return noise / (rms(noise) or 1.0)


# ----------------------------------------------------------------------------- music


_SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
}


def _midi_hz(note: float) -> float:
    return float(440.0 * 2.0 ** ((note - 69) / 12.0))


def _add_tone(
    out: np.ndarray,
    rng: np.random.Generator,
    hz: float,
    at: float,
    seconds: float,
    gain: float,
    bright: float,
    rate: int,
    decay: tuple[float, float] = (0.15, 1.5),
) -> None:
    """Add an additive-synth note (harmonics falling as 1/k**bright, a little vibrato, an
    envelope) starting ``at`` s; only the samples inside ``out`` are computed."""
    first, n = int(round(at * rate)), int(seconds * rate)
    a, b = max(first, 0), min(first + n, out.size)
    depth, speed = 0.004 * rng.random(), rng.uniform(4, 7)
    attack, tau = rng.uniform(0.003, 0.05), rng.uniform(*decay)
    phases = rng.uniform(0, 2 * np.pi, 16)
    if b <= a:
        return
    t = (np.arange(a, b) - first) / rate
    # Closed-form phase of a vibrato'd sine, so a note can start before the buffer.
    phase = 2 * np.pi * hz * (t - depth / (2 * np.pi * speed) * np.cos(2 * np.pi * speed * t))
    z = np.exp(1j * phase)
    zk = z.copy()
    acc = np.zeros(t.size, dtype=np.complex128)
    for k in range(1, 16):
        if k * hz > 0.45 * rate:
            break
        acc += zk * (np.exp(1j * phases[k]) / k**bright)
        zk *= z
    env = np.exp(-t / tau) * np.minimum(t / attack, 1.0)
    env *= np.minimum(1.0, (seconds - t) / 0.01)  # release: no click at the note's end
    out[a:b] += gain * acc.imag * env


def _drum(rng: np.random.Generator, kind: str, n: int, rate: int) -> np.ndarray:
    t = np.arange(n) / rate
    if kind == "kick":
        hz = 45 + 110 * np.exp(-t / 0.04)
        hit = np.sin(2 * np.pi * np.cumsum(hz) / rate) * np.exp(-t / rng.uniform(0.08, 0.25))
    elif kind == "snare":
        body = 0.5 * np.sin(2 * np.pi * rng.uniform(160, 240) * t)
        noise = _bandpass(rng.standard_normal(n), 300, 9000, rate)
        hit = (body + noise) * np.exp(-t / rng.uniform(0.06, 0.18))
    else:  # hat
        hit = _bandpass(rng.standard_normal(n), 6000, None, rate) * np.exp(
            -t / rng.uniform(0.02, 0.08)
        )
    attack = max(2, int(0.002 * rate))  # acoustic hits have a rise time: clicks do not
    hit[:attack] *= np.linspace(0, 1, attack)
    return hit


def music(rng: np.random.Generator, seconds: float, rate: int = RATE) -> np.ndarray:
    """A procedural song excerpt; its seed decides key, tempo, timbres and drums."""
    n = int(round(seconds * rate))
    beat = 60.0 / rng.uniform(70, 160)
    scale = _SCALES[str(rng.choice(list(_SCALES)))]
    root = int(rng.integers(40, 56))
    out = np.zeros(n)
    start = -rng.uniform(0, 2 * beat)
    bright = rng.uniform(1.2, 3.0)
    parts = rng.random(3) < (0.8, 0.7, 0.8)
    parts[0] = parts[0] or not parts.any()
    t = start
    while t < seconds:  # chords with bass, one every 1-2 beats
        length = beat * int(rng.integers(1, 3))
        degree = int(rng.integers(len(scale)))
        notes = [root + 12 + scale[(degree + 2 * i) % len(scale)] for i in range(3)]
        if parts[0]:
            for note in notes:
                _add_tone(out, rng, _midi_hz(note), t, length, 0.3, bright, rate)
        if parts[1]:
            # Down to A1 (55 Hz), plucked or held: the model's mains comb tells a bass
            # note off a 50 or 60 Hz multiple from hum, which the mel bins alone cannot.
            bass = _midi_hz(max(root + scale[degree] - 12, 33))
            _add_tone(out, rng, bass, t, length, 0.5, 1.5, rate, decay=(0.1, 2.0))
        t += length
    if parts[2]:
        _melody(rng, out, scale, root + 24, beat, start, rate)
    if rng.random() < 0.6:
        _drums(rng, out, beat, start, rate)
    return out


def _place(out: np.ndarray, sound: np.ndarray, at: float, rate: int) -> None:
    """Add ``sound`` into ``out`` starting at ``at`` seconds (clipped to ``out``)."""
    i = int(round(at * rate))
    a, b = max(i, 0), min(i + sound.size, out.size)
    if b > a:
        out[a:b] += sound[a - i : b - i]


def _melody(
    rng: np.random.Generator,
    out: np.ndarray,
    scale: tuple[int, ...],
    base: int,
    beat: float,
    start: float,
    rate: int,
) -> None:
    t, bright = start, rng.uniform(1.0, 2.5)
    while t < out.size / rate:
        length = beat * float(rng.choice([0.25, 0.5, 1.0]))
        if rng.random() < 0.85:
            note = base + scale[int(rng.integers(len(scale)))] + 12 * int(rng.integers(0, 2))
            _add_tone(out, rng, _midi_hz(note), t, length, 0.4, bright, rate)
        t += length


def _drums(rng: np.random.Generator, out: np.ndarray, beat: float, start: float, rate: int) -> None:
    t, step = start, 0
    while t < out.size / rate:
        hits = ["hat"] if rng.random() < 0.8 else []
        if step % 4 == 0:
            hits.append("kick")
        if step % 4 == 2:
            hits.append("snare")
        for kind in hits:
            level = {"kick": 0.9, "snare": 0.6, "hat": 0.25}[kind]
            _place(out, _drum(rng, kind, int(0.4 * rate), rate) * level, t, rate)
        t += beat / 2
        step += 1


# ----------------------------------------------------------------------------- other programme


def ambience(
    rng: np.random.Generator, seconds: float, pool: SpeechPool, rate: int = RATE
) -> np.ndarray:
    """Room rumble, distant babble or birdsong: backgrounds that are not a defect."""
    n = int(round(seconds * rate))
    kind = str(rng.choice(["rumble", "babble", "birds"]))
    if kind == "rumble":  # traffic or wind: strong below a few hundred Hz, slowly swelling
        noise = _bandpass(np.cumsum(rng.standard_normal(n)), 20, rng.uniform(120, 500), rate)
        swell = 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.8) * np.arange(n) / rate)
        return np.asarray(noise * swell)
    if kind == "babble":
        voices = sum(pool.excerpt(rng, seconds, rate) for _ in range(int(rng.integers(3, 7))))
        return _bandpass(np.asarray(voices, dtype=np.float64), 100, rng.uniform(2500, 5000), rate)
    out = np.zeros(n)
    for _ in range(int(rng.integers(2, 8))):
        length = int(rng.uniform(0.05, 0.3) * rate)
        t = np.arange(length) / rate
        hz = rng.uniform(2000, 6000) + rng.uniform(-1500, 1500) * t / t[-1]
        chirp = np.sin(2 * np.pi * np.cumsum(hz) / rate) * np.hanning(length)
        _place(out, chirp * rng.uniform(0.2, 1), rng.uniform(-0.1, seconds), rate)
    return out


def transients(rng: np.random.Generator, seconds: float, rate: int = RATE) -> np.ndarray:
    """Claps, knocks and drum hits over near-silence: sharp, but with acoustic rise and decay."""
    n = int(round(seconds * rate))
    out = np.zeros(n)
    for _ in range(int(rng.integers(1, 7))):
        kind = str(rng.choice(["clap", "knock", "kick", "snare", "hat"]))
        length = int(0.4 * rate)
        t = np.arange(length) / rate
        if kind == "clap":
            hit = _bandpass(rng.standard_normal(length), 700, 3500, rate) * np.exp(
                -t / rng.uniform(0.01, 0.04)
            )
            hit[: int(0.002 * rate)] *= np.linspace(0, 1, int(0.002 * rate))
        elif kind == "knock":
            hit = np.sin(2 * np.pi * rng.uniform(120, 500) * t) * np.exp(
                -t / rng.uniform(0.02, 0.07)
            )
            hit[: int(0.001 * rate)] *= np.linspace(0, 1, int(0.001 * rate))
        else:
            hit = _drum(rng, kind, length, rate)
        _place(out, hit * rng.uniform(0.2, 1), rng.uniform(-0.05, seconds), rate)
    return out


def programme(
    rng: np.random.Generator,
    seconds: float,
    pool: SpeechPool,
    kind: str | None = None,
    rate: int = RATE,
) -> tuple[np.ndarray, str]:
    """Clean programme audio of a random (or given) kind at a random level; float64 mono."""
    mix = RECIPE["content_mix"]
    kind = kind or str(rng.choice(list(mix), p=np.array(list(mix.values())) / sum(mix.values())))
    if kind == "silence":
        return np.zeros(int(round(seconds * rate))), kind
    if kind == "speech":
        audio = pool.excerpt(rng, seconds, rate).astype(np.float64)
    elif kind == "music":
        audio = music(rng, seconds, rate)
    elif kind == "speech_over_music":
        bed = music(rng, seconds, rate)
        voice = pool.excerpt(rng, seconds, rate).astype(np.float64)
        audio = voice / (rms(voice) or 1) + bed / (rms(bed) or 1) * db_to_amp(-rng.uniform(8, 25))
    elif kind == "channel":
        return channel_sound(rng, seconds, pool.heldout, rate), kind
    elif kind == "ambience":
        return _set_rms(ambience(rng, seconds, pool, rate), rng.uniform(-55, -30)), kind
    elif kind == "transients":
        return _set_rms(transients(rng, seconds, rate), rng.uniform(-45, -22)), kind
    elif kind == "quiet_speech_or_music":
        audio = (
            pool.excerpt(rng, seconds, rate).astype(np.float64)
            if rng.random() < 0.5
            else music(rng, seconds, rate)
        )
        return _set_rms(audio, rng.uniform(*RECIPE["programme_rms_dbfs"]["quiet"])), kind
    else:
        raise ValueError(f"unknown programme kind {kind!r}")
    return _level(rng, audio), kind


def channel_sound(
    rng: np.random.Generator, seconds: float, heldout: bool, rate: int = RATE
) -> np.ndarray:
    """The synthetic live channel's own programme (:mod:`monitor.app.synthetic.audio`:
    formant speech, tonal music, quiet passages over room tone) at its own level +-6 dB, so the
    demo channel and the end-to-end tests are clean to this model too. Held-out plans use other
    seeds."""
    if rate != CHANNEL_RATE:
        raise ValueError(f"the channel synthesizer renders at {CHANNEL_RATE} Hz")
    low, high = RECIPE["channel_plan_seeds"]["heldout" if heldout else "train"]
    plan = ScenePlan(seed=int(rng.integers(low, high)), fps=25)
    start = int(rng.integers(0, 300 * rate))
    mono = render_audio(plan, start, int(round(seconds * rate))).mean(axis=0).astype(np.float64)
    return _under_full_scale(mono * db_to_amp(rng.uniform(-6, 6)))


def _level(rng: np.random.Generator, audio: np.ndarray) -> np.ndarray:
    """Normal broadcast level most of the time; one in five peaks just under full scale."""
    if rng.random() < 0.2:
        peak = float(np.max(np.abs(audio))) or 1.0
        return audio * (rng.uniform(*RECIPE["programme_rms_dbfs"]["loud_peak"]) / peak)
    return _set_rms(audio, rng.uniform(*RECIPE["programme_rms_dbfs"]["normal"]))


# ----------------------------------------------------------------------------- defects


def _programme_db(x: np.ndarray) -> float:
    """Level of the programme under a defect, dBFS; silence counts as -100."""
    return 20.0 * np.log10(max(rms(x), 1e-5))


def add_click(x: np.ndarray, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    """Impulses, sub-millisecond bursts and ringing pops at random positions in ``x``."""
    out = x.copy()
    seconds = x.size / rate
    count = max(1, int(rng.poisson(rng.uniform(1, 20) * seconds)))
    level = max(rms(x), RECIPE["click"]["rms_floor"])
    for _ in range(count):
        amp = min(0.95, level * db_to_amp(rng.uniform(12, 32))) * rng.choice([-1, 1])
        shape = _click_shape(rng, rate)
        i = int(rng.integers(0, max(1, x.size - shape.size)))
        out[i : i + shape.size] += amp * shape[: x.size - i]
    return np.clip(out, -1.0, 1.0)


def _click_shape(rng: np.random.Generator, rate: int) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:
        return np.array([1.0])
    if kind == 1:
        n = int(rng.integers(2, 49))
        burst = rng.uniform(-1, 1, n)
        return burst / np.max(np.abs(burst))
    n = int(rng.uniform(0.0003, 0.001) * rate)
    t = np.arange(n) / rate
    return np.sin(2 * np.pi * rng.uniform(2000, 9000) * t + np.pi / 2) * np.exp(
        -t / (t[-1] / 3 + 1e-9)
    )


def hum(rng: np.random.Generator, n: int, rate: int = RATE, profile: str = "pure") -> np.ndarray:
    """Mains hum, unit RMS: 50 or 60 Hz with drift, nearly ``pure`` or a ``buzz``."""
    mains = float(rng.choice([50.0, 60.0])) * (1 + rng.uniform(-0.003, 0.003))
    t = np.arange(n) / rate
    out = np.zeros(n)
    if profile == "pure":  # the fundamental and a few weak harmonics
        levels = {
            1: 1.0,
            **{k: rng.uniform(0.0, 0.3) / k for k in range(2, int(rng.integers(3, 6)))},
        }
    else:  # buzz: odd harmonics up to about 1.5 kHz (rectifier and ground-loop hum)
        top = int(1500 // mains)
        levels = {
            k: (1.0 if k % 2 else rng.uniform(0.1, 0.5)) / k ** rng.uniform(0.5, 1.2)
            for k in range(1, top)
        }
    for k, a in levels.items():
        out += a * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 2 * np.pi))
    return out / (rms(out) or 1.0)


def add_hum(x: np.ndarray, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    profile = "pure" if rng.random() < 0.5 else "buzz"
    under = rng.uniform(*RECIPE["hum"]["under_programme_db"][profile])
    level = max(_programme_db(x) - under, rng.uniform(*RECIPE["hum"]["floor_dbfs"]))
    return x + hum(rng, x.size, rate, profile) * db_to_amp(level) * _fade(x.size, rate)


def add_hiss(x: np.ndarray, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    level = max(_programme_db(x) - rng.uniform(3, 30), rng.uniform(-60, -40))
    noise = pink_noise(rng, x.size) if rng.random() < 0.5 else rng.standard_normal(x.size)
    return x + noise / (rms(noise) or 1.0) * db_to_amp(level) * _fade(x.size, rate)


def distort(x: np.ndarray, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    """Hard clipping, tanh saturation or bit crushing, then the original RMS restored."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0:
        return x.copy()
    kind = rng.integers(3)
    if kind == 0:
        limit = peak * rng.uniform(0.05, 0.5)
        y = np.clip(x, -limit, limit)
    elif kind == 1:
        y = np.tanh(rng.uniform(3, 30) * x / peak)
    else:
        # Few levels: finer crushing is mostly broadband error, which is what hiss looks like.
        low, high = RECIPE["distortion"]["bitcrush_bits"]
        step = peak / 2 ** (int(rng.integers(low, high + 1)) - 1)
        y = np.round(x / step) * step
        hold = int(rng.choice(RECIPE["distortion"]["bitcrush_hold"]))
        y = np.repeat(y[::hold], hold)[: x.size]
    return _under_full_scale(y * (rms(x) / (rms(y) or 1.0)))


def distortion_audible(clean: np.ndarray, distorted: np.ndarray) -> bool:
    """True when distortion changed the audio by more than ``min_change_db`` (-15 dB) of its
    level, and by more than -60 dBFS: subtler changes are not what an operator calls
    distortion, and would be label noise."""
    change = rms(distorted - clean)
    return change > db_to_amp(RECIPE["distortion"]["min_change_db"]) * rms(clean) and change > 1e-3


_APPLY: dict[str, Callable[[np.ndarray, np.random.Generator, int], np.ndarray]] = {
    "click": add_click,
    "hum": add_hum,
    "hiss": add_hiss,
    "distortion": distort,
}


def apply_defect(
    audio: np.ndarray,
    kind: str,
    rng: np.random.Generator,
    start: float,
    end: float,
    rate: int = RATE,
) -> np.ndarray:
    """``audio`` (mono or (channels, samples)) with defect ``kind`` over ``[start, end)`` s."""
    if kind not in _APPLY:
        raise ValueError(f"unknown defect {kind!r}; known: {', '.join(DEFECTS)}")
    out = np.array(audio, dtype=np.float64, copy=True)
    a, b = int(round(start * rate)), min(int(round(end * rate)), out.shape[-1])
    mono = out[..., a:b].mean(axis=0) if out.ndim == 2 else out[a:b]
    changed = _APPLY[kind](mono, rng, rate) - mono
    out[..., a:b] += changed
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- examples


def labelled_window(
    rng: np.random.Generator,
    label: str,
    pool: SpeechPool,
    rate: int = RATE,
    kind: str | None = None,
) -> np.ndarray:
    """One training example: ``WINDOW`` s of programme with ``label`` covering 0.5-1 s of
    it, plus ``MARGIN`` s of context each side; float32 mono at ``rate``.

    Distortion is laid only over programme it audibly changes (redrawn up to 20 times).
    """
    for _ in range(20):
        x, content = programme(rng, WINDOW + 2 * MARGIN, pool, kind=kind, rate=rate)
        if label == "none":
            return x.astype(np.float32)
        if label == "distortion" and content in (
            "silence",
            "ambience",
            "transients",
            "quiet_speech_or_music",
        ):
            continue  # too little signal for distortion to change
        cover = rng.uniform(*RECIPE["defect_cover_s"])
        start = MARGIN + rng.uniform(0, WINDOW - cover)
        y = apply_defect(x, label, rng, start, start + cover, rate)
        region = slice(int(start * rate), int((start + cover) * rate))
        if label != "distortion" or distortion_audible(x[region], y[region]):
            return y
    raise RuntimeError("no programme took audible distortion in 20 draws")
