"""dbt-style progress lines and the closing summary of a run."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from engine.quality import ExpectationResult

LINE_WIDTH = 72


@dataclass
class Console:
    quiet: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    def info(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.out, flush=True)

    def summary(self, text: str) -> None:
        """The closing line of a command: printed even when quiet."""
        print(text, file=self.out, flush=True)

    def error(self, text: str) -> None:
        print(text, file=self.err, flush=True)

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
