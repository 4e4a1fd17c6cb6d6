"""Receive MPEG-TS over SRT through a supervised relay, and publish it as segments.

    srt://encoder.example:9000?latency=200                  caller: vqm connects to the sender
    srt://:9000?mode=listener&passphrase_env=VQM_SRT_KEY    listener: the sender connects to vqm

The PyAV wheel has no SRT and no maintained Python binding of libsrt exists, so SRT runs in
``srt-live-transmit`` (Debian and Ubuntu package ``srt-tools``, Haivision's own sample
application of libsrt; ``ingest.ts.srt_relay`` names another path), which receives the SRT
stream and writes the MPEG-TS packets to its stdout unchanged. That matters: the transport
checks see the sender's own continuity counters, tables and PCR. (FFmpeg's CLI can receive
SRT too, but it demuxes and muxes again, which renumbers every counter and rewrites the
tables, hiding exactly what the checks look for.)

Options: ``mode`` (``caller``, the default with a host; ``listener``, the default without),
``latency`` (milliseconds, SRT's receive latency; default SRT's 120), ``passphrase_env`` (the
name of an environment variable holding the passphrase, e.g. from a Kubernetes Secret: the
passphrase itself never goes in the channels file), ``pbkeylen`` (16, 24 or 32) and
``streamid``. An unknown option is a config error naming it.

The relay is supervised: its stderr lines are logged (redacted: its command line carries the
passphrase, so the process list of the host shows it to whoever may read other processes'
command lines; log lines never do), an exit is a ``source_error`` stream event, and it is
started again after a back-off (1 s doubling to 30 s, reset once it ran for 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from urllib.parse import urlencode

from monitor.core.messages import StreamEventKind
from monitor.core.redact import redact, redact_url
from monitor.core.retry import RetryPolicy, pause
from stream_ingest.sources.base import Source
from stream_ingest.sources.registry import register
from stream_ingest.streamurl import UrlOptionError, split_stream_url
from stream_ingest.tsfeed import TsFeed

logger = logging.getLogger(__name__)

_OPTIONS = ("latency", "mode", "passphrase_env", "pbkeylen", "streamid")
_READ = 64 * 1024
_TICK = 0.5
# Relay restarts: 1 s doubling to 30 s, back to 1 s after a run of 30 s; exact delays (no
# jitter), since one channel's relay has no herd to spread.
_RESTARTS = RetryPolicy(initial=1.0, cap=30.0, jitter=0.0)
_HEALTHY_AFTER = 30.0
_STOP_GRACE = 2.0


@dataclass(frozen=True)
class SrtEndpoint:
    """An ``srt://`` channel URL, checked."""

    host: str
    port: int
    mode: str
    latency_ms: int | None = None
    passphrase_env: str | None = None
    pbkeylen: int | None = None
    streamid: str | None = None

    @classmethod
    def parse(cls, url: str) -> SrtEndpoint:
        shown = redact_url(url)
        parts, port, options = split_stream_url(url, _OPTIONS, "srt://host:9000")
        host = parts.hostname or ""
        mode = options.get("mode") or ("caller" if host else "listener")
        if mode not in ("caller", "listener"):
            raise UrlOptionError(f"{shown}: mode must be caller or listener, not {mode!r}")
        if mode == "caller" and not host:
            raise UrlOptionError(f"{shown}: a caller needs the sender's host")
        latency = _int_option(shown, options, "latency", 0, 60_000)
        pbkeylen = _int_option(shown, options, "pbkeylen", 16, 32)
        if pbkeylen not in (None, 16, 24, 32):
            raise UrlOptionError(f"{shown}: pbkeylen must be 16, 24 or 32")
        env = options.get("passphrase_env") or None
        return cls(host, port, mode, latency, env, pbkeylen, options.get("streamid") or None)

    def relay_url(self) -> str:
        """The URL the relay is given (with the passphrase, read from the environment now)."""
        query: dict[str, str] = {"mode": self.mode}
        if self.latency_ms is not None:
            query["latency"] = str(self.latency_ms)
        if self.passphrase_env is not None:
            passphrase = os.environ.get(self.passphrase_env)
            if not passphrase:
                raise UrlOptionError(f"environment variable {self.passphrase_env} is not set")
            if not 10 <= len(passphrase) <= 79:
                raise UrlOptionError(
                    f"the passphrase in {self.passphrase_env} must be 10 to 79 characters"
                )
            query["passphrase"] = passphrase
        if self.pbkeylen is not None:
            query["pbkeylen"] = str(self.pbkeylen)
        if self.streamid is not None:
            query["streamid"] = self.streamid
        return f"srt://{self.host}:{self.port}?{urlencode(query)}"


def _int_option(shown: str, options: dict[str, str], name: str, low: int, high: int) -> int | None:
    if name not in options:
        return None
    try:
        value = int(options[name])
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise UrlOptionError(f"{shown}: {name} must be a whole number from {low} to {high}")
    return value


@register
class SrtSource(Source):
    """MPEG-TS over SRT, caller or listener, through the relay; see the module docstring."""

    schemes = ("srt",)

    @classmethod
    def check_url(cls, url: str) -> None:
        SrtEndpoint.parse(url)

    async def run(self, stop: asyncio.Event) -> None:
        endpoint = SrtEndpoint.parse(self.channel.url)
        feed = TsFeed(self.channel, self.context, stream=True)
        ticker = asyncio.create_task(self._tick(feed, stop), name=f"srt-tick-{self.channel.id}")
        failures = 0
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                started = loop.time()
                detail = await self._relay_once(endpoint, feed, stop)
                if stop.is_set():
                    break
                failures = 1 if loop.time() - started >= _HEALTHY_AFTER else failures + 1
                backoff = _RESTARTS.delay(failures)
                await feed.report(
                    StreamEventKind.SOURCE_ERROR, f"{detail}; restarting in {backoff:g} s"
                )
                await pause(stop, backoff)
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            await feed.end()

    async def _tick(self, feed: TsFeed, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            await pause(stop, _TICK)
            await feed.tick(loop.time())

    async def _relay_once(self, endpoint: SrtEndpoint, feed: TsFeed, stop: asyncio.Event) -> str:
        """Run the relay until it exits or ``stop``; what happened, for the event."""
        relay = self.context.settings.ts.srt_relay
        try:
            url = endpoint.relay_url()
        except UrlOptionError as exc:
            return str(exc)
        command = [relay, url, "file://con"]  # it reconnects by itself; exits are restarted
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            return f"cannot start the SRT relay {relay!r} (Debian package srt-tools): {exc}"
        logger.info(
            "channel %s: SRT %s on %s:%d through %s (pid %d)",
            self.channel.id,
            endpoint.mode,
            endpoint.host or "*",
            endpoint.port,
            relay,
            process.pid,
        )
        assert process.stdout is not None and process.stderr is not None
        errors = asyncio.create_task(self._log_stderr(process.stderr))
        stopped = asyncio.create_task(stop.wait())
        try:
            loop = asyncio.get_running_loop()
            while True:
                read = asyncio.create_task(process.stdout.read(_READ))
                await asyncio.wait({read, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not read.done():
                    read.cancel()
                    await asyncio.gather(read, return_exceptions=True)
                    return "stopped"
                chunk = read.result()
                if not chunk:
                    break
                await feed.data(chunk, loop.time())
            code = await process.wait()
            last = await errors
            return f"the SRT relay exited with status {code}" + (f": {last}" if last else "")
        finally:
            stopped.cancel()
            await _end(process)
            errors.cancel()
            await asyncio.gather(errors, stopped, return_exceptions=True)

    async def _log_stderr(self, stream: asyncio.StreamReader) -> str:
        """Log every line the relay writes (redacted); the last one, for the exit event."""
        last = ""
        async for raw in stream:
            line = redact(raw.decode(errors="replace").strip())
            if line:
                last = line
                logger.info("channel %s: srt relay: %s", self.channel.id, line)
        return last


async def _end(process: asyncio.subprocess.Process) -> None:
    """Terminate the relay, then kill it if it has not gone within the grace period."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), _STOP_GRACE)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
