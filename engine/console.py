"""dbt-style progress lines and the closing summary of a run."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from engine.checks.expectations import ExpectationResult

LINE_WIDTH = 72
# A step shows a live line only once it has run this long, so quick steps never flicker.
LIVE_AFTER_SECONDS = 1.0
LIVE_EVERY_SECONDS = 0.25


class Progress:
    """What a long step reports about itself ("k = 5 of 2..10", "3.0M of 9.9M customers")."""

    def __init__(self) -> None:
        self.detail = ""

    def update(self, detail: str) -> None:
        self.detail = detail


class _LiveLine:
    """Rewrites one terminal line with the step's elapsed time and detail until stopped.

    Writes go through ``lock``, which the console also holds to print, so a line printed
    meanwhile (another model finishing) first blanks the live line; the next tick redraws it.
    """

    def __init__(self, out: TextIO, head: str, progress: Progress, lock: threading.Lock):
        self._out, self._head, self._progress, self._lock = out, head, progress, lock
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._shown = 0
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._stop.wait(LIVE_AFTER_SECONDS):
            return
        while not self._stop.is_set():
            elapsed = time.perf_counter() - self._started
            detail = f" {self._progress.detail}," if self._progress.detail else ""
            text = f"{self._head} ...{detail} {elapsed:.0f}s"[: LINE_WIDTH + 40]
            with self._lock:
                if not self._stop.is_set():
                    self._out.write("\r" + text.ljust(self._shown))
                    self._out.flush()
                    self._shown = len(text)
            self._stop.wait(LIVE_EVERY_SECONDS)

    def blank(self) -> None:
        """Clear the line; the caller holds the lock."""
        if self._shown:
            self._out.write("\r" + " " * self._shown + "\r")
            self._out.flush()
            self._shown = 0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            self.blank()  # so the step's result line takes its place


@dataclass
class Console:
    quiet: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    # A long step's live line is redrawn by a thread of its own; every print blanks it first.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _live: _LiveLine | None = field(default=None, repr=False)

    def _print(self, text: str, stream: TextIO) -> None:
        with self._lock:
            if self._live is not None:
                self._live.blank()
            print(text, file=stream, flush=True)

    def info(self, text: str) -> None:
        if not self.quiet:
            self._print(text, self.out)

    def summary(self, text: str) -> None:
        """The closing line of a command: printed even when quiet."""
        self._print(text, self.out)

    def error(self, text: str) -> None:
        self._print(text, self.err)

    def live(self) -> bool:
        """Live progress only for a person watching: not under --quiet, not into a pipe or file."""
        isatty = getattr(self.out, "isatty", None)
        return not self.quiet and bool(isatty and isatty())

    @contextmanager
    def step(self, index: int, total: int, table: str) -> Iterator[Progress]:
        """Around a model's build: on a terminal, a line that shows it is still running."""
        progress = Progress()
        head = f"{index:>3} of {total} {'RUN':<5} {table}"
        line = None
        with self._lock:
            if self._live is None and self.live():
                line = self._live = _LiveLine(self.out, head, progress, self._lock)
        try:
            yield progress
        finally:
            if line is not None:
                line.stop()
                with self._lock:
                    self._live = None

    def model_line(
        self, index: int, total: int, status: str, table: str, detail: str, seconds: float
    ) -> None:
        head = f"{index:>3} of {total} {status:<5} {table} "
        tail = f" {detail} in {seconds:.2f}s"
        dots = "." * max(3, LINE_WIDTH - len(head) - len(tail))
        self.info(f"{head}{dots}{tail}")

    def expectation_line(self, table: str, results: list[ExpectationResult]) -> None:
        passed = sum(r.success for r in results)
        failed = [r for r in results if r.blocking_failure]
        warned = [r for r in results if not r.success and not r.blocking_failure]
        status = "FAIL" if failed else ("WARN" if warned else "PASS")
        self.info(
            f"           {status:<5} {len(results)} expectations on {table}: "
            f"{passed} passed, {len(warned)} warned, {len(failed)} failed"
        )
        for result in failed:
            self.error(f"             FAIL {result.describe()}")
        for result in warned:
            self.info(f"             WARN {result.describe()}")
