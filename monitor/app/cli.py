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
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.core.settings import Settings

if TYPE_CHECKING:
    from monitor.app.config import VqmConfig

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="vqm: live video quality monitor"
)
topics_app = typer.Typer(no_args_is_help=True, help="Kafka topic administration.")
app.add_typer(topics_app, name="topics")
logger = logging.getLogger("vqm")


class OutputFormat(StrEnum):
    JSONL = "jsonl"
    TABLE = "table"


def _setup_logging(level: str) -> None:
    """Logs to stderr, every line with its URLs redacted (:mod:`monitor.core.redact`)."""
    from monitor.core.redact import RedactingFilter

    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())


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
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = 70.0,
    port: Annotated[int, typer.Option(help="API port on 127.0.0.1.")] = 8080,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic channel.")] = 7,
    log_level: Annotated[str, typer.Option(help="Log level for stderr.")] = "WARNING",
) -> None:
    """Monitor a synthetic channel with injected black, freeze and silence; print alerts."""
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


@app.command()
def scan(
    source: Annotated[str, typer.Argument(help="File, segment, or VOD playlist URL.")],
    output: Annotated[
        OutputFormat | None, typer.Option("--format", help="jsonl or table (default on a tty).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML with detector settings.")] = None,
    enable: Annotated[
        list[str] | None,
        typer.Option("--enable", help="Also run a detector that is off by default (repeatable)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level for stderr.")] = "WARNING",
) -> None:
    """Check a recording and print the defects found."""
    from monitor.app.scan import ScanError, is_url
    from monitor.app.scan import scan as run_scan

    _setup_logging(log_level)
    cfg = _load(config)
    try:
        cfg = cfg.with_enabled(enable or [])
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not is_url(source) and not Path(source).exists():
        typer.echo(f"error: {source}: no such file", err=True)
        raise typer.Exit(1)
    try:
        defects = run_scan(source, cfg)
    except ScanError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    fmt = output or (OutputFormat.TABLE if sys.stdout.isatty() else OutputFormat.JSONL)
    if fmt is OutputFormat.JSONL:
        for defect in defects:
            typer.echo(defect.to_json())
        return
    from monitor.app.console import defects_table

    typer.echo(defects_table(defects))


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
