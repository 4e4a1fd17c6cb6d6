"""The README's screenshot of `vqm demo`'s status wall, taken with headless Chromium.

Runs the demo in this process, opens the wall at 1440x810 and waits until the music channel's
silence and the remote feed's loudness are both on the wall (about 40 s in), then saves a
PNG. From a checkout, with the dev extra installed and Chromium on PATH:

    .venv/bin/python scripts/demo_screenshot.py docs/demo_wall.png
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.test_status_wall import Browser, demo_running, until  # noqa: E402

WIDTH, HEIGHT = 1440, 810
BOTH_ALERTING = (
    "['music', 'remote'].every(id => document.querySelector('#channel-' + id)"
    "?.querySelector('.alerts li'))"
)


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="vqm-shot-", ignore_cleanup_errors=True) as profile:
        browser = await Browser.start(profile)
        try:
            async with demo_running() as port:
                await browser.open(f"http://127.0.0.1:{port}/")
                await browser.send(
                    "Emulation.setDeviceMetricsOverride",
                    width=WIDTH,
                    height=HEIGHT,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                await until(browser, BOTH_ALERTING, timeout=90)
                await asyncio.sleep(2.5)  # one more poll of the wall: fresh pictures everywhere
                await browser.screenshot(out)
        finally:
            await browser.close()
    _shrink(out)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


def _shrink(path: Path) -> None:
    """32 levels a channel and the strongest PNG compression: under half the bytes, and the
    wall's flat colours and text look the same."""
    import cv2

    picture = cv2.imread(str(path))
    cv2.imwrite(str(path), picture & 0xF8, [cv2.IMWRITE_PNG_COMPRESSION, 9])


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/demo_wall.png")))
