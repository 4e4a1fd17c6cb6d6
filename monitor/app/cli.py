"""The ``vqm`` command line.

Each command imports what it runs when it runs: the channels file's model (every plugin's
settings) and the stages are loaded by the commands that need them, so ``vqm --help`` and
shell completion stay instant and ``vqm ingest`` never loads the inference stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.core.settings import Settings

if TYPE_CHECKING:
    from alerting.feedback import Feedback
    from monitor.app.config import VqmConfig
    from monitor.app.scan import Defect, FailOn, ScanReport

app = typer.Typer(no_args_is_help=True, help="vqm: live video quality monitor")
topics_app = typer.Typer(no_args_is_help=True, help="Kafka topic administration.")
app.add_typer(topics_app, name="topics")
label_app = typer.Typer(no_args_is_help=True, help="Operator feedback on alerts, as data.")
app.add_typer(label_app, name="label")
logger = logging.getLogger("vqm")


class OutputFormat(StrEnum):
    JSONL = "jsonl"
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


class ScanExit(IntEnum):
    """``vqm scan``'s exit codes, for CI jobs and QC scripts (README, ``vqm scan --help``)."""

    CLEAN = 0  # scanned; nothing at or above --fail-on (always, without --fail-on)
    DEFECTS = 1  # scanned; a defect at or above --fail-on
    USAGE = 2  # bad option or config (click's own usage errors are 2 too)
    UNREADABLE = 3  # the input is missing, not media, or cannot be fetched


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"vqm {version('vqm')}")
        except PackageNotFoundError:  # run from a tree that was never installed
            typer.echo("vqm (not installed)")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """vqm: live video quality monitor."""


def _setup_logging(level: str) -> None:
    """Logs to stderr, every line redacted (:mod:`monitor.core.redact`), as text or, with
    ``VQM_LOG_FORMAT=json``, one JSON object a line (:mod:`monitor.core.logs`)."""
    from monitor.core.logs import setup_logging

    setup_logging(level, Settings().log_format)


def _load(path: Path | None) -> VqmConfig:
    """The channels file at ``path`` (an empty config without one); exit 2 naming the error."""
    from monitor.app.config import ConfigError, VqmConfig, load_config

    if path is None:
        return VqmConfig()
    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _settings(**overrides: object) -> Settings:
    """Settings from the environment, with the command-line options that were given."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**given)  # type: ignore[arg-type]  # pydantic validates each value


def _closed_by_default(settings: Settings) -> Settings:
    """A monitoring service is production unless told otherwise: without ``VQM_ENVIRONMENT``,
    ``vqm run`` and the stage commands refuse changing API calls that carry no token (only
    ``vqm demo``, and a ``local`` environment on loopback, are open)."""
    if "environment" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"environment": "production"})


async def _until_signal(main: asyncio.Event, duration: float | None) -> None:
    """Set ``main`` on SIGINT/SIGTERM or after ``duration`` seconds."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, main.set)
    if duration is not None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(main.wait(), duration)
        main.set()


@app.command()
def demo(
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = 80.0,
    port: Annotated[int, typer.Option(help="API port on 127.0.0.1.")] = 8080,
    seed: Annotated[
        int, typer.Option(help="Seed of the first synthetic channel (the others follow it).")
    ] = 101,
    log_level: Annotated[str, typer.Option(help="Log level for stderr.")] = "WARNING",
) -> None:
    """Monitor six synthetic channels; black, freeze, silence and loudness each fire once."""
    from monitor.app.demo import run_demo

    _setup_logging(log_level)
    asyncio.run(run_demo(duration=duration, port=port, seed=seed))


@app.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Channels YAML file.")],
    port: Annotated[int | None, typer.Option(help="API port (default VQM_API_PORT).")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    log_level: Annotated[str, typer.Option(help="Log level for stderr.")] = "INFO",
) -> None:
    """Monitor the channels of a config file, every stage in this process."""
    from monitor.app.console import print_alert
    from monitor.app.runtime import Runtime

    _setup_logging(log_level)
    cfg = _load(config)
    settings = _closed_by_default(_settings(api_port=port))

    async def main() -> None:
        stop = asyncio.Event()
        runtime = Runtime(
            cfg,
            settings.model_copy(update={"kafka_bootstrap": None, "redis_url": None}),
            listeners=[print_alert],
        )
        waiter = asyncio.create_task(_until_signal(stop, duration))
        try:
            await runtime.run(stop)
        finally:
            waiter.cancel()

    asyncio.run(main())


def _complete_detectors(incomplete: str) -> list[str]:
    from monitor.inference.detectors.registry import detector_types

    return [name for name in sorted(detector_types()) if name.startswith(incomplete)]


def _complete_fail_on(incomplete: str) -> list[str]:
    severities = ["critical", "major", "minor", "warning", "info", "any"]
    return [s for s in severities if s.startswith(incomplete)] + _complete_detectors(incomplete)


SCAN_HELP = """Check a recording and print the defects found.

\b
Exit codes:
  0  scanned; no defect at or above --fail-on (always 0 without --fail-on)
  1  scanned; a defect at or above --fail-on
  2  usage: a bad option, an unknown detector or severity, a bad config file
  3  the input is missing, is not media, or cannot be fetched
"""


@app.command(help=SCAN_HELP)
def scan(
    source: Annotated[
        str,
        typer.Argument(
            help="File, segment, VOD playlist URL, or stream URL (udp://, rtp://, srt://)."
        ),
    ],
    output: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format",
            help="jsonl (one defect a line; the default off a tty), table (the default on a "
            "tty), csv, or json (one summary object).",
        ),
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            metavar="SEVERITY|DETECTOR",
            autocompletion=_complete_fail_on,
            help="Exit 1 when a defect is at or above this severity (critical, major, minor, "
            "warning, info; 'any' for every defect) or comes from this detector. A defect's "
            "severity is its detector's `severity` in --config, else major.",
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML with detector settings.")] = None,
    enable: Annotated[
        list[str] | None,
        typer.Option(
            "--enable",
            help="Also run a detector that is off by default (repeatable).",
            autocompletion=_complete_detectors,
        ),
    ] = None,
    duration: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="A stream URL: seconds of media to record and analyse (less if it stops).",
        ),
    ] = 30.0,
    log_level: Annotated[str, typer.Option(help="Log level for stderr.")] = "WARNING",
) -> None:
    from monitor.app.scan import FailOn, ScanError, is_url

    _setup_logging(log_level)
    cfg = _load(config)
    try:
        cfg = cfg.with_enabled(enable or [])
        gate = FailOn.parse(fail_on, cfg) if fail_on is not None else None
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ScanExit.USAGE) from exc
    if not is_url(source) and not Path(source).exists():
        typer.echo(f"error: {source}: no such file", err=True)
        raise typer.Exit(ScanExit.UNREADABLE)
    try:
        report = _scan_with_progress(source, cfg, duration)
    except ScanError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ScanExit.UNREADABLE) from exc
    failing = gate.failing(report.defects) if gate is not None else []
    _print_scan(report, output, source, gate, failing)
    if failing:
        raise typer.Exit(ScanExit.DEFECTS)


def _scan_with_progress(source: str, cfg: VqmConfig, duration: float) -> ScanReport:
    """The scan, with a bar on stderr when a person watches it (media seconds of the total)."""
    from monitor.app.progress import enabled, progress
    from monitor.app.scan import is_stream, media_duration, scan_report

    total = (duration if is_stream(source) else media_duration(source)) if enabled() else None
    with progress(f"scanning {Path(source).name}", total=total, unit="s") as advance:
        return scan_report(
            source, cfg, on_chunk=lambda seconds: advance(to=seconds), record_seconds=duration
        )


def _print_scan(
    report: ScanReport,
    output: OutputFormat | None,
    source: str,
    gate: FailOn | None,
    failing: list[Defect],
) -> None:
    from monitor.app import console

    fmt = output or (OutputFormat.TABLE if sys.stdout.isatty() else OutputFormat.JSONL)
    if fmt is OutputFormat.JSONL:
        for defect in report.defects:
            typer.echo(defect.to_json())
    elif fmt is OutputFormat.CSV:
        typer.echo(console.defects_csv(report.defects), nl=False)
    elif fmt is OutputFormat.JSON:
        typer.echo(console.scan_summary_json(report, source, gate, failing))
    else:
        typer.echo(console.defects_table(report.defects))


def _distributed(stage: str, config: Path | None, kafka: str | None, redis: str | None) -> None:
    """Run one stage against Kafka and Redis, with health, readiness and metrics on
    ``VQM_API_PORT`` (the alert stage serves the whole API there); SIGTERM stops it cleanly."""
    from monitor.app.runtime import Runtime

    cfg = _load(config)
    settings = _closed_by_default(_settings(kafka_bootstrap=kafka, redis_url=redis))
    if not settings.kafka_bootstrap:
        typer.echo("error: --kafka or VQM_KAFKA_BOOTSTRAP is required", err=True)
        raise typer.Exit(2)
    if not settings.redis_url:
        typer.echo("error: --redis or VQM_REDIS_URL is required", err=True)
        raise typer.Exit(2)
    stages = {stage, "api"}

    async def main() -> None:
        stop = asyncio.Event()
        waiter = asyncio.create_task(_until_signal(stop, None))
        try:
            await Runtime(cfg, settings).run(stop, stages=stages)
        finally:
            waiter.cancel()

    from monitor.core.topics import TopicMismatchError

    try:
        asyncio.run(main())
    except TopicMismatchError as exc:
        _refuse_topics(exc, f"vqm {stage} will not start")
        raise typer.Exit(2) from exc


def _refuse_topics(exc: Exception, what: str) -> None:
    """One stderr line per topic problem, then what to do about them."""
    for problem in getattr(exc, "problems", [str(exc)]):
        typer.echo(f"error: {problem}", err=True)
    typer.echo(
        f"error: {what}; delete those topics (or alter their settings) and run `vqm topics create`",
        err=True,
    )


KafkaOpt = Annotated[str | None, typer.Option("--kafka", help="Bootstrap servers.")]
RedisOpt = Annotated[str | None, typer.Option("--redis", help="Redis URL.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Channels YAML file.")]


@app.command()
def ingest(config: ConfigOpt = None, kafka: KafkaOpt = None, redis: RedisOpt = None) -> None:
    """Distributed: follow channels and publish segments to Kafka."""
    _setup_logging(Settings().log_level)
    _distributed("ingest", config, kafka, redis)


@app.command()
def infer(config: ConfigOpt = None, kafka: KafkaOpt = None, redis: RedisOpt = None) -> None:
    """Distributed: consume segments, run detectors, publish detections."""
    _setup_logging(Settings().log_level)
    _distributed("infer", config, kafka, redis)


@app.command()
def alert(config: ConfigOpt = None, kafka: KafkaOpt = None, redis: RedisOpt = None) -> None:
    """Distributed: turn detections into alerts; serve the API."""
    _setup_logging(Settings().log_level)
    _distributed("alert", config, kafka, redis)


@app.command(name="eval")
def evaluate(
    name: Annotated[
        str, typer.Argument(help="signal (freeze, black, silence), loudness, or a model name.")
    ],
    clips: Annotated[int, typer.Option(help="Labelled clips to generate.")] = 24,
    out: Annotated[Path | None, typer.Option(help="Also write the results as JSON here.")] = None,
) -> None:
    """Precision and recall on a generated labelled set, beside the baseline (from a checkout)."""
    _setup_logging("WARNING")
    if name == "signal":
        _lab("evaluation.signal").main(clips=clips, out=out)
        return
    _evaluation_module(name).main(["eval"])


def _lab(name: str):  # type: ignore[no-untyped-def]
    from monitor.app.lab import LabMissing, lab_module

    try:
        return lab_module(name)
    except LabMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _evaluation_module(name: str):  # type: ignore[no-untyped-def]
    """A detector's evaluation (``lab.evaluation.<name>``), else a model's torch-free one,
    else its training module."""
    for module in (f"evaluation.{name}", f"training.{name}_data"):
        try:
            return _lab(module)
        except ModuleNotFoundError as exc:
            if exc.name != f"lab.{module}":
                raise
    return _training_module(name)


def _training_module(name: str):  # type: ignore[no-untyped-def]
    try:
        return _lab(f"training.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == "torch":
            typer.echo("error: training needs torch: pip install -e '.[train]'", err=True)
        else:
            typer.echo(f"error: no trainable model {name!r}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def train(name: Annotated[str, typer.Argument(help="Model name, e.g. audio_artifact.")]) -> None:
    """Train a learned detector from simulated defects (needs the train extra)."""
    _setup_logging("INFO")
    _training_module(name).main(["train"])


@app.command()
def export(name: Annotated[str, typer.Argument(help="Model name, e.g. audio_artifact.")]) -> None:
    """Export a trained detector to ONNX with its model card."""
    _setup_logging("INFO")
    _training_module(name).main(["export"])


@topics_app.command("create")
def topics_create(
    kafka: KafkaOpt = None,
    partitions: Annotated[int, typer.Option(help="Partitions per topic.")] = 12,
    replication: Annotated[int, typer.Option(help="Replication factor.")] = 1,
    retention_hours: Annotated[float, typer.Option(help="Retention.")] = 24.0,
    config: ConfigOpt = None,
) -> None:
    """Create the vqm topics (idempotent); exit 1 if existing ones have other settings."""
    from monitor.core.topics import TopicMismatchError, create_topics, message_bytes_for

    _setup_logging("INFO")
    settings = _settings(kafka_bootstrap=kafka)
    if not settings.kafka_bootstrap:
        typer.echo("error: --kafka or VQM_KAFKA_BOOTSTRAP is required", err=True)
        raise typer.Exit(2)
    cfg = _load(config)
    try:
        asyncio.run(
            create_topics(
                settings.kafka_bootstrap,
                cfg.topics,
                partitions=partitions,
                replication=replication,
                retention_ms=int(retention_hours * 3600 * 1000),
                max_message_bytes=message_bytes_for(cfg.ingest.max_segment_bytes),
            )
        )
    except TopicMismatchError as exc:
        _refuse_topics(exc, "existing topics differ from what was asked for")
        raise typer.Exit(1) from exc


if __name__ == "__main__":
    app()


@label_app.command("export")
def label_export(
    out: Annotated[Path, typer.Argument(help="Folder to write labels.jsonl and samples/ into.")],
    redis: Annotated[
        str | None, typer.Option(help="Redis URL of a distributed deployment (VQM_REDIS_URL).")
    ] = None,
    samples: Annotated[
        Path | None,
        typer.Option(help="Sample store folder (default: samples/ in VQM_DATA_DIR)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level for stderr.")] = "WARNING",
) -> None:
    """Export every alert marked real defect or false alarm, with the segments' frames or
    sound kept for it: the feedback from Redis (distributed) or this machine's file."""
    from alerting.feedback import FeedbackStore
    from monitor.app.labels import export_dataset

    _setup_logging(log_level)
    settings = _settings(redis_url=redis)
    store = _existing_store(settings, samples, "samples")

    async def work(state):  # type: ignore[no-untyped-def]
        return await FeedbackStore(state).all()

    feedback: list[Feedback] = _state_call(settings, work)
    report = export_dataset(feedback, store, out)
    typer.echo(
        f"{report.labels} labels, {report.with_samples} with samples "
        f"({report.samples} segments), {report.without_samples} without -> {out}"
    )


def _state_call(settings: Settings, work):  # type: ignore[no-untyped-def]
    """Run ``work(state)`` against the feedback state (Redis, or this machine's file)."""
    from monitor.app.runtime import make_feedback_state, make_state
    from monitor.core.state import StateError

    async def main():  # type: ignore[no-untyped-def]
        state = make_feedback_state(settings, make_state(settings))
        await state.start()
        try:
            return await work(state)
        finally:
            await state.stop()

    try:
        return asyncio.run(main())
    except StateError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _existing_store(settings: Settings, folder: Path | None, name: str):  # type: ignore[no-untyped-def]
    """The sample store at ``folder`` (default: ``name`` in the data directory), or None
    when there is none: reading commands never create one."""
    from monitor.core.samples import SampleStore

    folder = folder if folder is not None else settings.data_path / name
    return SampleStore(folder) if folder.is_dir() else None


@label_app.command("queue")
def label_queue(
    name: Annotated[str, typer.Argument(help="The learned detector (block_corruption).")],
    budget: Annotated[int, typer.Option(min=1, help="How many candidates to label.")] = 20,
    strategy: Annotated[
        str,
        typer.Option(
            help="seed (uncertain half, k-means, nearest to centroid), uncertainty, random."
        ),
    ] = "seed",
    redis: Annotated[str | None, typer.Option(help="Redis URL (VQM_REDIS_URL).")] = None,
    candidates: Annotated[
        Path | None, typer.Option(help="Candidates folder (default: candidates/ in VQM_DATA_DIR).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level for stderr.")] = "WARNING",
) -> None:
    """Choose what an operator labels next among the detector's annotation candidates, and
    put it on the status wall's labelling page (/label.html?detector=NAME)."""
    import time

    from alerting.annotation import AnnotationStore
    from monitor.app.label_queue import build_queue, pool
    from monitor.app.selection import STRATEGIES

    _setup_logging(log_level)
    if strategy not in STRATEGIES:
        typer.echo(f"error: --strategy is one of {', '.join(STRATEGIES)}", err=True)
        raise typer.Exit(2)
    settings = _settings(redis_url=redis)
    store = _existing_store(settings, candidates, "candidates")
    if store is None:
        typer.echo("error: no annotation candidates here (VQM_DATA_DIR/candidates)", err=True)
        raise typer.Exit(1)

    async def work(state):  # type: ignore[no-untyped-def]
        notes = AnnotationStore(state)
        answered = {(a.channel_id, a.seq) for a in await notes.labels(name)}
        queue = build_queue(pool(store, name, answered), name, budget, strategy, time.time())  # type: ignore[arg-type]
        await notes.put_queue(queue)
        return queue

    queue = _state_call(settings, work)
    typer.echo(f"{len(queue.items)} of {queue.pool} unlabelled candidates queued ({strategy}):")
    for item in queue.items:
        typer.echo(
            f"  {item.channel_id} seq {item.seq} t={item.frame_time:.2f} score {item.score:.3f}"
        )


@app.command("retrain")
def retrain_command(
    name: Annotated[str, typer.Argument(help="The learned detector (block_corruption).")],
    data: Annotated[
        Path | None,
        typer.Option(
            help="Training data folder: real_test.npz (required), real_train.npz, train.npz "
            "(default: ~/.cache/vqm/training/block_corruption, where the lab writes them)."
        ),
    ] = None,
    models: Annotated[
        Path | None, typer.Option(help="Model directory the workers watch (VQM_MODEL_DIR).")
    ] = None,
    redis: Annotated[str | None, typer.Option(help="Redis URL (VQM_REDIS_URL).")] = None,
    samples: Annotated[Path | None, typer.Option(help="Sample store folder.")] = None,
    candidates: Annotated[Path | None, typer.Option(help="Candidates folder.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Gate only; write nothing.")] = False,
    log_level: Annotated[str, typer.Option(help="Log level for stderr.")] = "WARNING",
) -> None:
    """Refit the detector on operator labels; write a new model version only if the gate
    (held-out real test split, held-back labels) shows no regression."""
    import json

    from alerting.annotation import AnnotationStore
    from alerting.feedback import FeedbackStore
    from monitor.app.retrain import RetrainError, retrain
    from monitor.app.retrain_units import candidate_units, feedback_units

    _setup_logging(log_level)
    if name != "block_corruption":
        typer.echo("error: only block_corruption can be retrained from operator labels", err=True)
        raise typer.Exit(2)
    settings = _settings(redis_url=redis, model_dir=str(models) if models else None)
    if settings.model_dir is None:
        typer.echo(
            "error: give --models (or VQM_MODEL_DIR): the shipped models are read-only", err=True
        )
        raise typer.Exit(2)

    async def work(state):  # type: ignore[no-untyped-def]
        return await FeedbackStore(state).all(), await AnnotationStore(state).labels(name)

    feedback, labels = _state_call(settings, work)
    kept = _existing_store(settings, samples, "samples")
    units = feedback_units(feedback, kept, stride=5) + candidate_units(
        labels, _existing_store(settings, candidates, "candidates")
    )
    usable = [u for u in units if u.frames]
    typer.echo(f"{len(units)} operator labels, {len(usable)} with frames")
    try:
        data = data or Path.home() / ".cache" / "vqm" / "training" / "block_corruption"
        outcome = retrain(Path(settings.model_dir), data, usable, dry_run=dry_run)
    except RetrainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(outcome.figures, indent=2))
    if not outcome.accepted:
        typer.echo("kept the running model: " + "; ".join(outcome.reasons))
        raise typer.Exit(0 if dry_run else 3)
    typer.echo(f"wrote {name} {outcome.version} to {outcome.path}")
