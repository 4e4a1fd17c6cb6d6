"""Headless Chromium for the status wall's tests, driven over the DevTools protocol on
``--remote-debugging-pipe`` (JSON messages separated by NUL on file descriptors 3 and 4),
which needs no package beyond the browser; and the API served on a free port for it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from alerting.api import ApiContext, create_app, serve
from tests.conftest import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
T = TypeVar("T")


class Browser:
    """Headless Chromium with one page, commanded over the DevTools pipe."""

    def __init__(self, proc: asyncio.subprocess.Process, to_browser: int, from_browser: int):
        self.proc = proc
        self._out = to_browser
        self._in = from_browser
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None

    @classmethod
    async def start(cls, profile: str) -> Browser:
        assert CHROMIUM is not None
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()

        def child_fds() -> None:  # the browser reads fd 3, writes fd 4
            high_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)  # out of the way of 3 and 4
            high_w = fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        proc = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "--window-size=1280,800",
            "about:blank",
            preexec_fn=child_fds,
            pass_fds=(3, 4),
            start_new_session=True,  # its own process group: close() ends every helper
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(res_w)
        return cls(proc, cmd_w, res_r)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session is not None and not method.startswith("Target."):
            message["sessionId"] = self.session
        await asyncio.to_thread(os.write, self._out, json.dumps(message).encode() + b"\0")
        while True:
            reply = await asyncio.wait_for(self._read(), 30)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    async def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = await asyncio.to_thread(os.read, self._in, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)  # type: ignore[no-any-return]

    async def open(self, url: str) -> None:
        target = await self.send("Target.createTarget", url=url)
        attached = await self.send(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        self.session = attached["sessionId"]

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send("Browser.close"), 5)
        # Renderer and utility processes outlive a killed browser process and keep writing
        # into the profile, which then cannot be removed: end the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        os.close(self._out)
        os.close(self._in)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A started browser, closed (with every helper process) at the end; skips the test
    where Chromium is not installed."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package 'chromium')")
    # ignore_cleanup_errors: a crash reporter may still flush a file as the group dies.
    with tempfile.TemporaryDirectory(prefix="vqm-chromium-", ignore_cleanup_errors=True) as profile:
        started = await Browser.start(profile)
        try:
            yield started
        finally:
            await started.close()


async def until(browser: Browser, expression: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await browser.evaluate(expression)
        if value:
            return value
        assert time.monotonic() < deadline, f"never true: {expression}"
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def served(
    start: Callable[[int, asyncio.Event], Coroutine[Any, Any, None]],
    startup: float = 15,
    shutdown: float = 10,
) -> AsyncIterator[int]:
    """``start(port, stop)`` on a free port, answering (polled, not slept on) before the
    block runs, and stopped after it."""
    port, stop = free_port(), asyncio.Event()
    task = asyncio.create_task(start(port, stop))
    try:
        await answering(port, task, timeout=startup)
        yield port
    finally:
        stop.set()
        await asyncio.wait_for(task, shutdown)


def serving(ctx: ApiContext) -> contextlib.AbstractAsyncContextManager[int]:
    """The API of ``ctx`` on a free port, answering before the page opens."""
    return served(lambda port, stop: serve(create_app(ctx), "127.0.0.1", port, stop))


async def eventually(read: Callable[[], Awaitable[list[T]]], count: int) -> list[T]:
    """What ``read`` returns once it holds ``count`` things (polled: pages post
    asynchronously)."""
    deadline = time.monotonic() + 15
    while len(found := await read()) < count:
        assert time.monotonic() < deadline, f"{len(found)} stored, wanted {count}"
        await asyncio.sleep(0.1)
    return found


async def answering(port: int, task: asyncio.Task[None], timeout: float) -> None:
    """Until ``/healthz`` on ``port`` answers 200 (polled); fails if ``task`` ends first."""
    async with httpx.AsyncClient(timeout=1) as client:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            assert time.monotonic() < deadline and not task.done(), "API never answered"
            await asyncio.sleep(0.05)


async def click(browser: Browser, selector: str) -> None:
    """A real mouse click (pressed and released) at the middle of the element."""
    box = await until(
        browser,
        f"(e => e && (r => r.width > 0 && ({{x: r.x + r.width / 2, y: r.y + r.height / 2}}))"
        f"(e.getBoundingClientRect()))(document.querySelector({json.dumps(selector)}))",
    )
    for kind in ("mousePressed", "mouseReleased"):
        await browser.send(
            "Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left",
            clickCount=1,
        )  # fmt: skip


async def press(browser: Browser, key: str) -> None:
    """A real key stroke (down, up) of one printable key, sent to the focused element."""
    code = f"Key{key.upper()}" if key.isalpha() else ""
    await browser.send("Input.dispatchKeyEvent", type="keyDown", key=key, code=code, text=key)
    await browser.send("Input.dispatchKeyEvent", type="keyUp", key=key, code=code)


async def type_into(browser: Browser, selector: str, text: str) -> None:
    """Click into a text field and type ``text`` as keyboard input (input events fire)."""
    await click(browser, selector)
    await browser.send("Input.insertText", text=text)
