"""Same inputs and config, identical tables (benchmarks.compare_warehouses)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.compare_warehouses import differences
from benchmarks.generate import generate, write_config

from conftest import REPO


def _build(code: Path, config: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(code / "pipeline.py"),
            "--config",
            str(config),
            "run",
            "-q",
            "--no-report",
        ],
        cwd=code,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{code}: {done.stdout[-2000:]}{done.stderr[-2000:]}"


def test_two_builds_of_the_same_large_input_are_identical(tmp_path: Path) -> None:
    """Same inputs and config, identical tables: also where DuckDB aggregates in parallel."""
    first, second = tmp_path / "first", tmp_path / "second"
    generate(300_000, first / "raw" / "customers", seed=7, dirty_rate=0.01)
    shutil.copytree(first / "raw", second / "raw")
    for workspace in (first, second):
        _build(REPO, write_config(REPO / "pipeline.toml", workspace))
    assert differences(first / "segments.duckdb", second / "segments.duckdb") == []
