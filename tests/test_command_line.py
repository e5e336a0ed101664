"""The command line's own promises: --config before or after the command."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from conftest import EXAMPLE, ProjectCopy


def test_config_may_follow_the_command(project: ProjectCopy) -> None:
    example = str(EXAMPLE / "pipeline.toml")
    default = project.run("compile", "stg_transactions_checked")
    before = project.run("--config", example, "compile", "stg_transactions_checked")
    after = project.run("compile", "stg_transactions_checked", "--config", example)
    assert default.returncode == before.returncode == after.returncode == 0, after.stderr
    assert after.stdout == before.stdout != default.stdout


def test_the_summary_counts_what_the_error_says(project: ProjectCopy) -> None:
    suite = project.root / "expectations" / "marts.eda_profile.json"
    text = suite.read_text()
    impossible = '{"type": "expect_table_row_count_to_equal", "kwargs": {"value": 999}},'
    suite.write_text(text.replace('"expectations": [', '"expectations": [' + impossible, 1))
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 1
    assert "1 blocking expectation(s) failed" in done.stderr
    assert "0 failed, 1 failed their expectations" in done.stderr


def test_the_summary_times_the_command_not_its_launcher(project: ProjectCopy) -> None:
    """A launcher that waits and then execs the command (the process keeps the launcher's start
    time) adds nothing to 'Done in'."""
    started = time.perf_counter()
    done = subprocess.run(
        ["sh", "-c", f'sleep 3; exec "{sys.executable}" pipeline.py run -q --no-report'],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    said = float(re.search(r"Done in ([0-9.]+)s", done.stdout)[1])
    assert said <= wall - 3.0
