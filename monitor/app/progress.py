"""Progress on stderr for the long commands (``vqm scan``, ``vqm train``, ``vqm eval``).

A bar is drawn (with rich) only when stderr is a terminal: a CI log, a pipe or a file gets
nothing, so stdout's output contract and machine-read stderr stay as they were. While a bar is
up, log lines are printed above it rather than through it.

    with progress("scanning rec.ts", total=3600.0, unit="s") as advance:
        for chunk in chunks:
            advance(to=chunk_end)           # or advance(1) per item

    for clip in track(clips, "evaluating", total=len(clips)):
        ...
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")


class Advance(Protocol):
    """Moves the bar: by ``step``, or to the absolute position ``to``."""

    def __call__(self, step: float = 1.0, *, to: float | None = None) -> None: ...


def _no_op(step: float = 1.0, *, to: float | None = None) -> None:
    return None


def enabled() -> bool:
    """Whether a bar would be drawn: only for a person watching a terminal."""
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress(description: str, total: float | None = None, unit: str = "") -> Iterator[Advance]:
    """A bar for one task on stderr (a spinner when ``total`` is unknown); a no-op off a tty."""
    if not enabled():
        yield _no_op
        return
    # Imported here: rich costs import time that `vqm --help` and the stage commands never need.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    count = (
        TextColumn("{task.completed:.0f}/{task.total:.0f} " + unit)
        if unit
        else MofNCompleteColumn()
    )
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        count,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,  # the bar goes when the task ends; the command's own output stays
    )
    terminal = sys.stderr
    with bar, _logs_above(terminal):
        task = bar.add_task(description, total=total)

        def advance(step: float = 1.0, *, to: float | None = None) -> None:
            if to is None:
                bar.advance(task, step)
            else:
                bar.update(task, completed=to)

        yield advance


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """``items`` one by one, with a bar of ``total`` (default ``len(items)`` when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress(description, total=total) as advance:
        for item in items:
            yield item
            advance()


def track_time(items: Iterable[T], description: str, seconds: float) -> Iterator[T]:
    """``items`` one by one, with a bar of the wall-clock seconds spent against ``seconds``
    (for a loop that runs for a time budget rather than a count)."""
    started = time.monotonic()
    with progress(description, total=round(seconds), unit="s") as advance:
        for item in items:
            yield item
            advance(to=min(seconds, time.monotonic() - started))


@contextlib.contextmanager
def _logs_above(terminal: object) -> Iterator[None]:
    """Point the root logger's handlers that write to ``terminal`` at the live display's proxy
    (rich replaces ``sys.stderr`` while it draws), so a log line scrolls above the bar instead
    of tearing it; put them back afterwards."""
    moved: list[tuple[logging.StreamHandler, object]] = []  # type: ignore[type-arg]
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is terminal:
            moved.append((handler, handler.setStream(sys.stderr)))
    try:
        yield
    finally:
        for handler, previous in moved:
            handler.setStream(previous)
