"""Train, export and evaluate the ``audio_artifact`` model (none / hum / hiss / distortion / click).

    python -m lab.training.audio_artifact train  [--out DIR] [--seed 0]
    python -m lab.training.audio_artifact export [--out DIR] [--models exported_models]
    python -m lab.training.audio_artifact calibrate [--models exported_models]  # threshold
    python -m lab.training.audio_artifact eval   [--models exported_models]

**Front end.** PANNs-style log-mel: 32 kHz, n_fft 1024 (periodic Hann), hop 320, centred with
reflect padding, power spectrum, 64 Slaney mel bins over 50-14000 Hz, 10*log10 with a 1e-10
floor. It runs *inside* the ONNX graph: the STFT is a strided Conv1d whose fixed kernels are the
windowed DFT (only the 447 bins the mel bank uses), followed by a mel matmul. So the runtime
passes raw samples and there is no second implementation to drift from training; the graph
uses only Pad, Conv, Mul, Add, MatMul, Log and friends, which every ONNX Runtime provider runs.

**Mains comb.** Also in the graph (:class:`MainsComb`): the level at each 50 and 60 Hz
harmonic and 1-8 Hz beside it, over the whole second, because the mel bins cannot tell hum
from a steady bass note and the exact mains multiples can.

**Network.** BatchNorm over mel bins (as PANNs' ``bn0``), four conv blocks (3x3 conv, BN,
ReLU, the last two doubled; 2x2 average pooling), the four remaining frequency bands kept
apart, max + mean over time, joined with the mains comb through one linear layer, two linear
layers. About 0.35 M parameters: the model must run on
CPU beside decoding.

**Data.** Real programme first (:mod:`lab.training.audio_artifact_real`): windows cut from
the real catalogue's train-split sound, defects from :mod:`lab.synth.audio_defects` mixed in,
clean windows (half of them the hard negatives the model being replaced flagged); plus a
synthetic share (:mod:`lab.synth.audio_defects`: espeak speech, procedural music, the
synthetic channel). Each example is one second at 48 kHz with one label, resampled to 32 kHz
by the detector's own :func:`to_model_rate`. Synthetic splits never share a random stream
(``default_rng([split, seed, index])``, split 0 train, 1 validation, 2 held-out) and held-out
examples also use other content: espeak voices from ``HELDOUT_LANGUAGES`` and
``HELDOUT_VARIANTS`` (disjoint from the training ones), a speech pool rendered from another
seed, and songs from other music seeds. Real validation windows (the catalogue's validation
files) pick the epoch; ``calibrate`` picks the threshold on the validation split's windows and
clean programme; the synthetic held-out set and the real test split are scored once, for the
card.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from lab.synth.audio_defects import CLASSES, RECIPE
from lab.synth.speech import (
    HELDOUT_LANGUAGES,
    HELDOUT_VARIANTS,
    TRAIN_LANGUAGES,
    TRAIN_VARIANTS,
)
from lab.training import audio_artifact_real as real_data
from lab.training import onnx_init
from lab.training.audio_artifact_data import (
    SAMPLES,
    TrainSettings,
    _decisions,
    cached_split,
    calibrate,
    default_out_dir,
    evaluate,
    real_evaluate,
    write_real_metrics,
)
from lab.training.common import (
    REPO_MODELS,
    classification_report,
    export_onnx,
    seed_everything,
    timed,
    write_card,
)
from monitor.app.progress import track
from monitor.inference.detectors.audio_artifact import (
    MODEL_NAME,
    MODEL_RATE,
)

logger = logging.getLogger(__name__)

N_FFT, HOP, N_MELS, FMIN, FMAX = 1024, 320, 64, 50.0, 14_000.0
VERSION = "1.3.0"
# The mains comb: power at each mains harmonic and beside it, with 1 Hz resolution.
MAINS = (50.0, 60.0)
HARMONICS = 8
OFFSETS = (-8.0, -6.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
DECIMATE, LOWPASS_TAPS, LOWPASS_HZ = 16, 257, 700.0
COMB_FEATURES = len(MAINS) * HARMONICS * len(OFFSETS)


# ----------------------------------------------------------------------------- front end


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa's default): linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_region = hz >= 1000.0
    mel[log_region] = 15.0 + np.log(hz[log_region] / 1000.0) / (np.log(6.4) / 27.0)
    return mel


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * (200.0 / 3)
    log_region = mel >= 15.0
    hz[log_region] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel[log_region] - 15.0))
    return hz


def mel_filterbank(
    rate: int = MODEL_RATE,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    fmin: float = FMIN,
    fmax: float = FMAX,
) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) Slaney-normalised triangles, as ``librosa.filters.mel``."""
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(
        np.linspace(hz_to_mel(np.array([fmin]))[0], hz_to_mel(np.array([fmax]))[0], n_mels + 2)
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


class LogMel(nn.Module):
    """Raw 32 kHz samples (batch, samples) -> log-mel (batch, 1, frames, mels), export-friendly."""

    dft: torch.Tensor
    mel: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        mel = mel_filterbank()
        used = np.flatnonzero(mel.sum(axis=0) > 0)
        bins = np.arange(used[0], used[-1] + 1)
        n = np.arange(N_FFT)
        window = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)  # periodic Hann
        angle = 2 * np.pi * np.outer(bins, n) / N_FFT
        kernels = np.concatenate([np.cos(angle), -np.sin(angle)]) * window
        self.bins = len(bins)
        self.register_buffer("dft", torch.tensor(kernels[:, None, :], dtype=torch.float32))
        self.register_buffer("mel", torch.tensor(mel[:, bins].T, dtype=torch.float32))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = F.pad(audio.unsqueeze(1), (N_FFT // 2, N_FFT // 2), mode="reflect")
        spec = F.conv1d(x, self.dft, stride=HOP)  # (batch, 2 * bins, frames)
        power = spec[:, : self.bins] ** 2 + spec[:, self.bins :] ** 2
        mel = torch.matmul(power.transpose(1, 2), self.mel)  # (batch, frames, mels)
        return (10.0 * torch.log10(torch.clamp(mel, min=1e-10))).unsqueeze(1)


class MainsComb(nn.Module):
    """Raw 32 kHz samples (batch, samples) -> (batch, 2 * 8 * 13): the level of each 50 and
    60 Hz harmonic (1-8) and of the frequencies 1-8 Hz beside it, in dB relative to the mean
    of its row, over the whole second (1 Hz resolution).

    Why: below 1 kHz a mel bin is ~54 Hz wide, so to the log-mel a steady bass note and mains
    hum are the same picture. Mains hum sits *exactly* on multiples of 50 or 60 Hz; a bass
    note at a musical pitch (55, 61.7, 98 Hz...) does not. Runs in the graph like the log-mel:
    a low-pass strided convolution down to 2 kHz, a Hann window, a DFT at 208 frequencies as
    one matrix product.
    """

    lowpass: torch.Tensor
    dft: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        rate = MODEL_RATE / DECIMATE
        n = MODEL_RATE // DECIMATE
        k = np.arange(LOWPASS_TAPS) - LOWPASS_TAPS // 2
        taps = np.sinc(2 * LOWPASS_HZ / MODEL_RATE * k) * np.hamming(LOWPASS_TAPS)
        freqs = np.array(
            [m * h + o for m in MAINS for h in range(1, HARMONICS + 1) for o in OFFSETS]
        )
        t = np.arange(n) / rate
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
        angle = 2 * np.pi * np.outer(t, freqs)
        kernels = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1) * window[:, None]
        self.samples, self.freqs = n, len(freqs)
        self.register_buffer(
            "lowpass", torch.tensor(taps / taps.sum(), dtype=torch.float32)[None, None]
        )
        self.register_buffer("dft", torch.tensor(kernels, dtype=torch.float32))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        low = F.conv1d(audio.unsqueeze(1), self.lowpass, stride=DECIMATE, padding=LOWPASS_TAPS // 2)
        spec = torch.matmul(low[:, 0, : self.samples], self.dft)  # (batch, 2 * freqs)
        power = spec[:, : self.freqs] ** 2 + spec[:, self.freqs :] ** 2
        db = 10.0 * torch.log10(torch.clamp(power, min=1e-10))
        rows = db.reshape(-1, len(MAINS) * HARMONICS, len(OFFSETS))  # batch stays dynamic
        return (rows - rows.mean(dim=2, keepdim=True)).flatten(1)  # level-free peak shapes


# ----------------------------------------------------------------------------- network


class ConvBlock(nn.Module):
    """One or two (3x3 conv, BN, ReLU), then 2x2 average pooling."""

    def __init__(self, cin: int, cout: int, double: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for a in (cin, cout) if double else (cin,):
            layers += [
                nn.Conv2d(a, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
            ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.body(x), 2)


class Classifier(nn.Module):
    """Log-mel (batch, 1, frames, mels) -> class logits.

    The head keeps the four remaining frequency bands apart (PANNs averages them): hum lives
    in the lowest band, and a head that cannot tell where energy sits confuses it with bass.
    """

    def __init__(self, classes: int = len(CLASSES), width: int = 32) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(N_MELS)
        chans = [1, width // 2, width, 2 * width, 4 * width]
        doubles = [False, False, True, True]
        self.blocks = nn.Sequential(
            *(ConvBlock(a, b, d) for a, b, d in zip(chans, chans[1:], doubles, strict=False))
        )
        bands = N_MELS // 2 ** len(doubles)
        self.comb = nn.Sequential(
            nn.BatchNorm1d(COMB_FEATURES), nn.Linear(COMB_FEATURES, 64), nn.ReLU()
        )
        self.fc1 = nn.Linear(chans[-1] * bands + 64, 128)
        self.fc = nn.Linear(128, classes)
        self.dropout = nn.Dropout(0.2)

    def forward(self, logmel: torch.Tensor, comb: torch.Tensor) -> torch.Tensor:
        x = self.bn0(logmel.transpose(1, 3)).transpose(1, 3)  # normalise each mel bin
        x = self.blocks(x)  # (batch, channels, frames, bands)
        x = x.permute(0, 1, 3, 2).flatten(1, 2)  # (batch, channels * bands, frames)
        x = torch.cat([x.amax(dim=2) + x.mean(dim=2), self.comb(comb)], dim=1)
        x = self.dropout(F.relu(self.fc1(self.dropout(x))))
        return self.fc(x)


class AudioArtifactNet(nn.Module):
    """What ships: raw samples in, class probabilities out."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.front = LogMel()
        self.mains = MainsComb()
        self.classifier = classifier

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(self.front(audio), self.mains(audio)), dim=1)


# ----------------------------------------------------------------------------- data


Features = tuple[torch.Tensor, torch.Tensor]  # (log-mel, mains comb) of each window


def features(front: LogMel, audio: np.ndarray, batch: int = 256) -> Features:
    """Log-mel and mains comb of every window, once: neither has weights to learn."""
    mains = MainsComb()
    mels, combs = [], []
    with torch.no_grad():
        for i in range(0, len(audio), batch):
            x = torch.from_numpy(audio[i : i + batch])
            mels.append(front(x))
            combs.append(mains(x))
    return torch.cat(mels), torch.cat(combs)


# ----------------------------------------------------------------------------- train


def train(out_dir: str | Path, seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """Generate data, train, keep the best epoch on validation; writes ``model.pt`` and
    ``training.json`` into ``out_dir`` and returns the training summary.

    Training windows are real programme (:mod:`lab.training.audio_artifact_real`, the
    catalogue's train split) plus a synthetic share; validation is the real validation split.
    With ``init`` set the weights start from that exported model (:func:`load_exported`) and
    its clean-programme false alarms on the train split are mined as hard negatives. Resumes
    from ``checkpoint.pt`` when a run with the same settings was interrupted."""
    settings = TrainSettings(seed=seed, **overrides)
    out = Path(out_dir)
    seed_everything(settings.seed, settings.threads)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with timed("data", timings):
        real = real_windows(out, settings)
        xs, ys = cached_split(
            out, "train", settings.train_per_class, seed, settings.speech_clips, settings.workers
        )
        xtr = np.concatenate([real["train"][0], xs])
        ytr = np.concatenate([real["train"][1], ys])
        xva, yva = real["validation"]
        del xs, real
    front = LogMel()
    with timed("features", timings):
        ftr, fva = features(front, xtr), features(front, xva)
    del xtr, xva
    model = Classifier()
    if settings.init:
        load_exported(model, _repo_path(settings.init))
    history, best = _fit(
        model, ftr, torch.from_numpy(ytr), fva, torch.from_numpy(yva), settings, timings, out
    )
    threshold = _pick_threshold(best["probs"], yva)
    summary = {
        "settings": settings.model_dump(),
        "examples": {"train": len(ytr), "validation": len(yva)},
        "init": _init_record(settings.init),
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "history": history,
        "validation_threshold": threshold,
        "timings_s": {**timings, "total": round(time.perf_counter() - started, 1)},
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    torch.save({"state": best["state"], "summary": summary}, out / "model.pt")
    (out / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _repo_path(path: str) -> Path:
    given = Path(path)
    return given if given.is_absolute() else REPO_MODELS.parent / given


def real_windows(out: Path, settings: TrainSettings) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Real windows of every split; the model in ``settings.init`` scores the hard negatives."""
    from monitor.inference.engine import OnnxModel

    score, threshold = None, 0.5
    if settings.init:
        path = _repo_path(settings.init)
        model = OnnxModel(path.stem, path.parent, providers=["CPUExecutionProvider"], threads=1)
        score, threshold = model.run, float(model.card.thresholds.get("defect", 0.5))
        threshold = settings.hard_negative_threshold or threshold
    per_class = {
        "train": settings.real_train_per_class,
        "validation": settings.real_validation_per_class,
        "test": settings.real_test_per_class,
    }
    return real_data.build(
        out, settings.seed, per_class, settings.real_train_none, score, threshold
    )


def load_exported(model: Classifier, path: Path) -> None:
    """The classifier's weights from an exported ONNX graph, so training can fine-tune it.

    The export folded each conv block's BatchNorm into its convolution; those BatchNorms come
    back as identities carrying the folded bias (mean 0, variance 1 - eps), which is exact
    as long as BatchNorm statistics stay frozen (:func:`lab.training.onnx_init.freeze_bn`)."""
    import onnx
    from onnx import numpy_helper

    weights = {
        i.name: torch.from_numpy(numpy_helper.to_array(i).copy())
        for i in onnx.load(str(path)).graph.initializer
    }
    state = model.state_dict()
    for name in state:
        key = f"classifier.{name}"
        if key in weights:
            state[name] = weights[key]
    folded = sorted(
        (k for k in weights if k.startswith("onnx::Conv_")), key=lambda k: int(k.split("_")[-1])
    )
    convs = [m for m in model.blocks.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.blocks.modules() if isinstance(m, nn.BatchNorm2d)]
    pairs = list(zip(folded[0::2], folded[1::2], strict=True))
    if len(pairs) != len(convs):
        raise RuntimeError(
            f"{path}: {len(pairs)} folded convolutions, the network has {len(convs)}"
        )
    model.load_state_dict(state)
    onnx_init.restore_folded(convs, norms, [(weights[w], weights[b]) for w, b in pairs])


def _fit(
    model: Classifier,
    ftr: Features,
    ytr: torch.Tensor,
    fva: Features,
    yva: torch.Tensor,
    settings: TrainSettings,
    timings: dict[str, float],
    out: Path,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """AdamW with a one-cycle schedule; stops early when the time budget runs out. After every
    epoch the run is checkpointed, so an interrupted run resumes where it stopped."""
    generator = torch.Generator().manual_seed(settings.seed)
    steps = settings.epochs * math.ceil(len(ftr[0]) / settings.batch_size)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=settings.lr, total_steps=steps)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"score": -1.0}
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        if saved["settings"] == settings.model_dump():
            model.load_state_dict(saved["model"])
            optimiser.load_state_dict(saved["optimiser"])
            schedule.load_state_dict(saved["schedule"])
            generator.set_state(saved["generator"])
            history, best = saved["history"], saved["best"]
            logger.info("resumed after epoch %d", len(history) - 1)
    started = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    for epoch in track(range(len(history), settings.epochs), "training epochs"):
        loss = _epoch(model, ftr, ytr, optimiser, schedule, settings, generator)
        probs = _predict(model, fva)
        report = classification_report(yva.numpy(), probs.argmax(1), CLASSES)
        history.append(
            {
                "epoch": epoch,
                "loss": round(loss, 4),
                "validation_balanced_accuracy": report["balanced_accuracy"],
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        logger.info(
            "epoch %d: loss %.4f, validation balanced accuracy %.4f",
            epoch,
            loss,
            report["balanced_accuracy"],
        )
        if report["balanced_accuracy"] >= best["score"]:
            best = {
                "score": report["balanced_accuracy"],
                "epoch": epoch,
                "probs": probs,
                "state": {k: v.clone() for k, v in model.state_dict().items()},
            }
        torch.save(
            {
                "settings": settings.model_dump(),
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "schedule": schedule.state_dict(),
                "generator": generator.get_state(),
                "history": history,
                "best": best,
            },
            checkpoint,
        )
        if time.perf_counter() - started > settings.time_budget_s:
            logger.warning("time budget spent after epoch %d of %d", epoch, settings.epochs)
            break
    timings["fit"] = round(time.perf_counter() - started, 1)
    return history, best


def _epoch(
    model: Classifier,
    ftr: Features,
    ytr: torch.Tensor,
    optimiser: torch.optim.Optimizer,
    schedule: Any,
    settings: TrainSettings,
    generator: torch.Generator,
) -> float:
    model.train()
    if settings.init:
        onnx_init.freeze_bn(model)
    order = torch.randperm(len(ftr[0]), generator=generator)
    total, count = 0.0, 0
    for i in range(0, len(order), settings.batch_size):
        idx = order[i : i + settings.batch_size]
        if len(idx) < 2:
            continue
        x, comb = ftr[0][idx], ftr[1][idx]
        # A level change is a constant shift of the log-mel: the same defect at another level.
        gain = (
            torch.rand(len(idx), 1, 1, 1, generator=generator) * 2 - 1
        ) * settings.gain_jitter_db
        x = torch.where(x > -99.0, x + gain, x)  # digital silence stays silent
        loss = F.cross_entropy(model(x, comb), ytr[idx])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if schedule.last_epoch + 1 < schedule.total_steps:
            schedule.step()
        total += float(loss.detach()) * len(idx)
        count += len(idx)
    return total / max(count, 1)


def _predict(model: Classifier, feats: Features, batch: int = 512) -> np.ndarray:
    model.eval()
    mel, comb = feats
    with torch.no_grad():
        out = [
            torch.softmax(model(mel[i : i + batch], comb[i : i + batch]), 1)
            for i in range(0, len(mel), batch)
        ]
    return torch.cat(out).numpy()


def _pick_threshold(probs: np.ndarray, truth: np.ndarray) -> float:
    """Threshold with the best validation balanced accuracy; ties go to the one nearest 0.5."""
    grid = [round(t, 2) for t in np.arange(0.2, 0.91, 0.05)]
    scores = {
        t: classification_report(truth, _decisions(probs, t), CLASSES)["balanced_accuracy"]
        for t in grid
    }
    top = max(scores.values())
    return min((t for t, s in scores.items() if s == top), key=lambda t: abs(t - 0.5))


# ----------------------------------------------------------------------------- export


def export(out_dir: str | Path, models_dir: str | Path = REPO_MODELS) -> Path:
    """``model.pt`` from :func:`train` -> ``<models_dir>/audio_artifact.onnx`` plus a card
    (without metrics until :func:`evaluate` runs)."""
    out, models = Path(out_dir), Path(models_dir)
    saved = torch.load(out / "model.pt", weights_only=False)
    saved["summary"].setdefault("init", _init_record(saved["summary"]["settings"]["init"]))
    classifier = Classifier()
    classifier.load_state_dict(saved["state"])
    net = AudioArtifactNet(classifier).eval()
    path = models / f"{MODEL_NAME}.onnx"
    batch = {0: "batch"}
    export_onnx(net, (torch.zeros(2, SAMPLES),), path, {"audio": batch}, {"probabilities": batch})
    _check_export(net, path)
    write_card(path.with_suffix(".json"), _card(saved["summary"], metrics=None))
    return path


def _init_record(init: str | None) -> dict[str, Any] | None:
    """Which exported model the weights were fine-tuned from (read before it is replaced)."""
    if not init:
        return None
    card = json.loads(_repo_path(init).with_suffix(".json").read_text())
    return {
        "model": card["name"],
        "version": card["version"],
        "sha256": card["sha256"],
        "init": card.get("training", {}).get("init"),
    }


def _check_export(net: AudioArtifactNet, path: Path) -> None:
    """ONNX Runtime must agree with torch on real examples, or the export is refused."""
    import onnxruntime as ort

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3, SAMPLES)) * 0.1).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"audio": x}
    )[0]
    if not np.allclose(want, got, atol=1e-4):
        raise RuntimeError(f"ONNX and torch disagree by {np.abs(want - got).max():.2e}")


def _card(summary: dict[str, Any], metrics: dict[str, Any] | None) -> dict[str, Any]:
    settings = summary["settings"]
    return {
        "name": MODEL_NAME,
        "version": VERSION,
        "description": (
            "One-second audio windows classified as none / hum / hiss / distortion / click."
        ),
        "inputs": [
            {
                "name": "audio",
                "shape": ["batch", SAMPLES],
                "dtype": "float32",
                "sample_rate": MODEL_RATE,
                "layout": "mono samples in [-1, 1]; resample 48 kHz audio with resample_poly(2, 3)",
            }
        ],
        "outputs": [
            {
                "name": "probabilities",
                "shape": ["batch", len(CLASSES)],
                "dtype": "float32",
                "meaning": "softmax over classes",
            }
        ],
        "classes": list(CLASSES),
        "thresholds": {"defect": summary["validation_threshold"]},
        "decision": "best non-none class if its probability >= thresholds.defect, else none",
        "front_end": {
            "in_graph": True,
            "rate": MODEL_RATE,
            "n_fft": N_FFT,
            "hop": HOP,
            "window": "periodic hann",
            "center": "reflect",
            "n_mels": N_MELS,
            "fmin": FMIN,
            "fmax": FMAX,
            "mel": "slaney",
            "log": "10*log10(max(power, 1e-10))",
            "mains_comb": {
                "in_graph": True,
                "why": "mel bins are ~54 Hz wide below 1 kHz: a steady bass note and mains hum "
                "look alike; hum sits exactly on 50 or 60 Hz multiples, a note does not",
                "mains_hz": list(MAINS),
                "harmonics": HARMONICS,
                "offsets_hz": list(OFFSETS),
                "lowpass": f"{LOWPASS_TAPS}-tap Hamming-windowed sinc at {LOWPASS_HZ:g} Hz, "
                f"decimated by {DECIMATE} to {MODEL_RATE // DECIMATE} Hz",
                "spectrum": "Hann window over the whole second, DFT at each frequency "
                "(1 Hz resolution); dB, minus the mean of its harmonic's row",
            },
        },
        "architecture": "bn0 over mels; 4 conv blocks (3x3 conv-BN-ReLU, doubled in blocks 3-4; "
        "avgpool 2x2), widths 16/32/64/128; 4 mel bands kept apart, max+mean over time; "
        "mains comb (208 values) through BN and FC 208-64 joined to the 512 pooled "
        "features; FC 576-128-5; softmax",
        "parameters": summary["parameters"],
        "data": {
            "generator": "lab.synth.audio_defects.labelled_window (+ lab.synth.speech)",
            "recipe": RECIPE,
            "examples": {
                "train": settings["train_per_class"] * len(CLASSES),
                "validation": settings["validation_per_class"] * len(CLASSES),
                "heldout": settings["heldout_per_class"] * len(CLASSES),
            },
            "streams": (
                "numpy default_rng([split, seed, index]); split 0 train, 1 validation, 2 held-out"
            ),
            "speech": {
                "train_languages": TRAIN_LANGUAGES,
                "train_variants": TRAIN_VARIANTS,
                "heldout_languages": HELDOUT_LANGUAGES,
                "heldout_variants": HELDOUT_VARIANTS,
                "texts": "pseudo-words from the pool seed (train: seed, held-out: seed + 1000003)",
            },
            "music": "procedural songs from each example's own stream, so splits share no song",
            "real": {
                "generator": "lab.training.audio_artifact_real.make_windows",
                "decoder": "PyAV, 48 kHz, mono mixdown, to_model_rate to 32 kHz (the detector's)",
                "windows": {
                    "train": settings["real_train_per_class"] * (len(CLASSES) - 1)
                    + settings["real_train_none"],
                    "validation": settings["real_validation_per_class"] * len(CLASSES),
                    "test": settings["real_test_per_class"] * len(CLASSES),
                },
                "clean_train_windows": settings["real_train_none"],
                "hard_negative_share": real_data.HARD_SHARE,
                "hard_negatives": "train-split windows (1 s hop) that the init model flags at "
                "its card threshold: the clean programme it paged on",
                "levels": f"own level; {real_data.LOUD_SHARE:.0%} peaking 0.89-0.99 of full "
                f"scale, {real_data.QUIET_SHARE:.0%} {real_data.QUIET_DB:g} dB",
                "draw": "source by sqrt(seconds), file by seconds, offset at random; "
                "default_rng([10 + split, seed, index]) (train 10, validation 11, test 12)",
                "splits": "the catalogue's, by source work: train windows from train files, "
                "threshold and epoch on validation files, figures once on test files",
                "sources": real_data.data_sources(),
            },
            "share": {
                "real_train": settings["real_train_per_class"] * (len(CLASSES) - 1)
                + settings["real_train_none"],
                "synthetic_train": settings["train_per_class"] * len(CLASSES),
            },
        },
        "training": {
            "seed": settings["seed"],
            "epochs": settings["epochs"],
            "epochs_run": summary["epochs_run"],
            "best_epoch_on_validation": summary["best_epoch"],
            "optimiser": "AdamW",
            "lr": settings["lr"],
            "weight_decay": settings["weight_decay"],
            "schedule": "one-cycle",
            "batch_size": settings["batch_size"],
            "loss": "cross-entropy",
            "augmentation": f"level +-{settings['gain_jitter_db']} dB",
            "device": "cpu",
            "threads": settings["threads"],
            "timings_s": summary["timings_s"],
            "init": summary.get("init"),
            "batchnorm": "statistics frozen while fine-tuning" if settings["init"] else "learned",
            "settings": settings,
        },
        "heldout_metrics": metrics,
        "real_metrics": None,
        "limitations": [
            "A bass note within 1-2 Hz of a 50 or 60 Hz multiple (G1 at 49 Hz, A#1 at "
            "58.3 Hz, G2 at 98 Hz) held for a whole second is as close to hum as the mains "
            "comb can resolve. See heldout_metrics.synthetic_channel_flagged_windows.",
            "Stereo is mixed to mono first, so a defect in one channel only is 6 dB weaker.",
            "One label per window: two defects at once are reported as the stronger one.",
            "Real programme is what the catalogue holds (game and orchestral music, rock, "
            "studio, radio and game speech, a few film soundtracks): no live broadcast, no "
            "sport or applause, little room tone. See real_metrics.",
            "The defects over real programme are simulated (lab.synth.audio_defects), not "
            "recorded faults.",
        ],
    }


# ----------------------------------------------------------------------------- evaluate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.training.audio_artifact")
    parser.add_argument("command", choices=["train", "export", "calibrate", "eval", "all"])
    parser.add_argument("--out", type=Path, default=default_out_dir(), help="Working directory.")
    parser.add_argument(
        "--models", type=Path, default=REPO_MODELS, help="Where the ONNX model goes."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--per-class", type=int, default=None, help="Training examples per class.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    overrides = {
        k: v for k, v in {"epochs": args.epochs, "train_per_class": args.per_class}.items() if v
    }
    if args.command in ("train", "all"):
        print(json.dumps(train(args.out, args.seed, **overrides)["timings_s"]))
    if args.command in ("export", "all"):
        print(export(args.out, args.models))
    if args.command in ("calibrate", "all"):
        print(json.dumps(calibrate(args.models, args.out, args.seed), indent=2))
    if args.command in ("eval", "all"):
        figures = {
            "synthetic_heldout": evaluate(args.models, args.out, args.seed),
            "real_test": real_evaluate(args.models, args.out, args.seed),
        }
        write_real_metrics(args.models, figures["real_test"])
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
