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


def test_two_models_at_once_share_one_live_line_and_printed_lines_stay_whole(monkeypatch) -> None:
    monkeypatch.setattr(console_module, "LIVE_AFTER_SECONDS", 0.05)
    monkeypatch.setattr(console_module, "LIVE_EVERY_SECONDS", 0.01)
    out = Terminal()
    console = Console(out=out)
    with console.step(17, 32, "ml.segment_model_selection"):
        with console.step(31, 32, "marts.eda_profile"):
            time.sleep(0.2)
            console.info(" 31 of 32 OK    marts.eda_profile ... 31 rows in 0.20s")
        time.sleep(0.2)
    written = out.getvalue()
    assert "17 of 32 RUN   ml.segment_model_selection" in written
    assert "31 of 32 RUN" not in written  # the first model to start keeps the line
    # The printed line starts on a blanked line: after its last carriage return comes nothing
    # but the line itself, with no live text left in front of it.
    printed = next(line for line in written.split("\n") if "OK" in line)
    assert printed.split("\r")[-1] == " 31 of 32 OK    marts.eda_profile ... 31 rows in 0.20s"
    assert printed.split("\r")[-2].strip() == ""
