"""Run vqm's distributed processes (``python -m monitor.app.cli ingest|infer|alert``) from tests.

    cluster = Cluster(tmp_path, kafka, redis, namespace, config)
    ingest = cluster.start("ingest")
    await ingest.until_ready()
    ingest.terminate(); assert ingest.wait(10) == 0

Each process gets its own API port (health, readiness, metrics) and a log file that
:meth:`Cluster.logs` prints when a test fails. :func:`read_topic` reads a whole topic with a
group of its own, without disturbing the processes' groups.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from monitor.app.config import VqmConfig
from monitor.core.bus import Record, Topics
from monitor.core.bus_kafka import KafkaBus
from monitor.core.topics import create_topics, message_bytes_for
from stream_ingest.config import IngestConfig
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]


class VqmProcess:
    """One ``vqm <stage>`` OS process."""

    def __init__(self, stage: str, name: str, cmd: list[str], env: dict[str, str], log: Path):
        self.stage, self.name, self.log = stage, name, log
        self.port = int(env["VQM_API_PORT"])
        self.worker_id = env["VQM_WORKER_ID"]
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def get(self, path: str) -> httpx.Response | None:
        """GET from the process's API; None while it does not answer."""
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                return await client.get(self.url + path)
        except httpx.HTTPError:
            return None

    async def readyz(self) -> int | None:
        response = await self.get("/readyz")
        return None if response is None else response.status_code

    async def until_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while await self.readyz() != 200:
            assert self.popen.poll() is None, f"{self.name} exited with {self.popen.returncode}"
            assert time.monotonic() < deadline, f"{self.name} not ready in {timeout} s"
            await asyncio.sleep(0.2)

    def terminate(self) -> None:
        self.popen.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait()

    async def wait(self, timeout: float) -> int | None:
        """Exit code, or None if still running after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.popen.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.popen.poll()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


class Cluster:
    """The processes of one test, sharing a channels file, a broker, a Redis and a namespace."""

    def __init__(
        self,
        tmp: Path,
        kafka: str,
        redis: str,
        namespace: str,
        config: VqmConfig | dict[str, Any],
        lease_ttl: float = 2.0,
    ) -> None:
        self.tmp, self.kafka, self.redis, self.namespace = tmp, kafka, redis, namespace
        self.lease_ttl = lease_ttl
        if not isinstance(config, VqmConfig):
            config = VqmConfig.model_validate(config)
        self.config = config
        self.config_path = tmp / "channels.yaml"
        data = _reveal(config.model_dump(mode="json"), config)
        self.config_path.write_text(yaml.safe_dump(data))
        self.processes: list[VqmProcess] = []

    def start(
        self, stage: str, name: str | None = None, python_flags: tuple[str, ...] = ()
    ) -> VqmProcess:
        """Start ``vqm <stage>``; ``python_flags`` go to the interpreter (``-X importtime``)."""
        name = name or f"{stage}-{len([p for p in self.processes if p.stage == stage])}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("VQM_")}
        env.update(
            VQM_DEPLOYMENT=self.namespace,
            VQM_API_PORT=str(free_port()),
            VQM_LEASE_TTL=str(self.lease_ttl),
            VQM_WORKER_ID=f"{name}-{uuid.uuid4().hex[:6]}",
            VQM_LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        cmd = [
            sys.executable, *python_flags, "-m", "monitor.app.cli", stage,
            "--config", str(self.config_path), "--kafka", self.kafka, "--redis", self.redis,
        ]  # fmt: skip
        process = VqmProcess(stage, name, cmd, env, self.tmp / f"{name}.log")
        self.processes.append(process)
        return process

    def logs(self) -> str:
        parts = []
        for p in self.processes:
            text = p.log.read_text(errors="replace") if p.log.exists() else ""
            parts.append(f"----- {p.name} (exit {p.popen.poll()}) -----\n{text[-6000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def _reveal(data: dict[str, Any], config: VqmConfig) -> dict[str, Any]:
    """The config as YAML can hold it: secrets as their values, not as '**********'."""
    out = dict(data)
    if config.notifications.notifiers:
        out["notifications"] = config.notifications.model_dump(mode="json")
        for name, notifier in config.notifications.notifiers.items():
            secret = getattr(notifier, "secret", None)
            if secret is not None:
                out["notifications"]["notifiers"][name]["secret"] = secret.get_secret_value()
    return out


async def make_topics(kafka: str, topics: Topics, partitions: int = 6) -> None:
    """The topics as `vqm topics create` makes them for the default ``ingest`` settings."""
    await create_topics(
        kafka, topics, partitions=partitions, replication=1, retention_ms=3_600_000,
        max_message_bytes=message_bytes_for(IngestConfig().max_segment_bytes),
    )  # fmt: skip


async def read_topic(
    kafka: str, topic: str, idle: float = 2.0, timeout: float = 30.0
) -> list[Record]:
    """Every record of ``topic`` so far, read by a fresh group until ``idle`` s bring nothing."""
    bus = KafkaBus(kafka, client_id="test-reader")
    consumer = bus.consumer([topic], group=f"reader-{uuid.uuid4().hex[:8]}")
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            records += batch
            if batch or not records:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > idle:
                break
    finally:
        await consumer.stop()
        await bus.stop()
    return records


async def committed_offsets(kafka: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of ``topic`` (partitions without one: 0)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        out = {}
        for p in sorted(partitions):
            out[p] = await consumer.committed(TopicPartition(topic, p)) or 0
        return out
    finally:
        await consumer.stop()
