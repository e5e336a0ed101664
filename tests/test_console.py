"""Live progress on a terminal, and none anywhere else."""

from __future__ import annotations

import io
import time

from engine import console as console_module
from engine.console import Console


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _long_step(console: Console, seconds: float) -> None:
    with console.step(17, 32, "ml.segment_model_selection") as progress:
        progress.update("scoring k = 5")
        time.sleep(seconds)


def test_a_long_step_shows_a_live_line_on_a_terminal_then_clears_it(monkeypatch) -> None:
    monkeypatch.setattr(console_module, "LIVE_AFTER_SECONDS", 0.1)
    out = Terminal()
    _long_step(Console(out=out), 0.6)
    written = out.getvalue()
    assert "17 of 32 RUN   ml.segment_model_selection ... scoring k = 5," in written
    # The live line is overwritten in place and blanked at the end, leaving no stray text.
    assert written.endswith("\r") and written.split("\r")[-2].strip() == ""


def test_a_quick_step_shows_nothing(monkeypatch) -> None:
    monkeypatch.setattr(console_module, "LIVE_AFTER_SECONDS", 0.5)
    out = Terminal()
    _long_step(Console(out=out), 0.05)
    assert out.getvalue() == ""


def test_no_live_line_when_quiet_or_not_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr(console_module, "LIVE_AFTER_SECONDS", 0.05)
    quiet, piped = Terminal(), io.StringIO()
    _long_step(Console(quiet=True, out=quiet), 0.3)
    _long_step(Console(out=piped), 0.3)
    assert quiet.getvalue() == "" and piped.getvalue() == ""
