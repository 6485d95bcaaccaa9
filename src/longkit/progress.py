"""Progress that is visible wherever output goes: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def _fmt_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


class Progress:
    """Count work done; draws a rich bar on a TTY, else prints `label: done/total (rate/s, ETA)` every `interval` s.

    Use as a context manager: ``with Progress("niah", total=40, done=3) as p: ...; p.advance()``.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        done: int = 0,
        *,
        unit: str = "items",
        interval: float = 10.0,
        stream: TextIO | None = None,
        enabled: bool = True,
        tty: bool | None = None,
    ):
        self.label, self.total, self.done, self.unit = label, total, done, unit
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty() if tty is None else tty
        self._start_done = done
        self._t0 = 0.0
        self._last = 0.0
        self._bar: Any = None
        self._tid: Any = None

    def __enter__(self) -> Progress:
        self._t0 = self._last = time.monotonic()
        if not self.enabled:
            return self
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
            )
            self._bar.start()
            self._tid = self._bar.add_task(self.label, total=self.total, completed=self.done)
        else:
            self._line(final=False)
        return self

    def advance(self, n: int = 1) -> None:
        """Record n more units done."""
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.advance(self._tid, n)
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._line(final=False)

    def rate(self) -> float:
        """Units per second since the start (0 before any progress)."""
        elapsed = time.monotonic() - self._t0
        return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds left at the current rate, or None when unknown."""
        r = self.rate()
        if self.total is None or r <= 0:
            return None
        return max(0.0, (self.total - self.done) / r)

    def _line(self, final: bool) -> None:
        total = "?" if self.total is None else str(self.total)
        parts = [f"{self.label}: {self.done}/{total} {self.unit}"]
        if self.done > self._start_done:
            parts.append(f"{self.rate():.2f}/s")
        elapsed = time.monotonic() - self._t0
        parts.append(f"elapsed {_fmt_seconds(elapsed)}")
        eta = self.eta()
        if not final and eta is not None:
            parts.append(f"ETA {_fmt_seconds(eta)}")
        print(", ".join(parts), file=self.stream, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.stop()
        else:
            self._line(final=True)
