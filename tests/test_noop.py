"""No-op refreshes: nothing rebuilt when nothing changed, and a rebuild whenever anything did."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.project.config import load_config, with_engine
from engine.refresh.noop import inputs_fingerprint

from conftest import ProjectCopy, copy_project


def _bump_mtime(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


CHANGES: dict[str, Callable[[ProjectCopy], None]] = {
    "a landing file is rewritten": lambda p: _bump_mtime(p.raw / "Mall_Customers.csv"),
    "a landing file is added": lambda p: p.write_csv(
        "more.csv", "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)\n"
    ),
    "a SQL model changes": lambda p: (p.root / "sql/marts/dim_segments.sql").write_text(
        (p.root / "sql/marts/dim_segments.sql").read_text() + "\n"
    ),
    "a Python helper changes": lambda p: (p.root / "python_models/_segmentation.py").write_text(
        (p.root / "python_models/_segmentation.py").read_text() + "\n# changed\n"
    ),
    "an expectation changes": lambda p: (p.root / "expectations/raw.customers.json").write_text(
        (p.root / "expectations/raw.customers.json").read_text() + " "
    ),
    "a config value changes": lambda p: p.edit_config("seed = 42", "seed = 43"),
    "an experiment log appears": lambda p: (
        (p.root / "warehouse/raw/experiments").mkdir(),
        (p.root / "warehouse/raw/experiments/x.csv").write_text("experiment\n"),
    ),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_fingerprint_changes_with_every_input(tmp_path: Path, change) -> None:
    project = copy_project(tmp_path / "project")
    before = inputs_fingerprint(project.root, load_config(project.config))
    assert inputs_fingerprint(project.root, load_config(project.config)) == before
    change(project)
    assert inputs_fingerprint(project.root, load_config(project.config)) != before


def test_unchanged_refresh_is_a_recorded_no_op_and_changes_rebuild(project: ProjectCopy) -> None:
    assert project.run("run", "-q", "--no-report").returncode == 0
    models_before = project.query("select count(*) from meta.model_runs")
    noop = project.run("run")
    assert noop.returncode == 0, noop.stderr
    assert "Nothing changed since run" in noop.stdout
    assert project.query("select status from meta.runs order by started_at") == [
        ("success",),
        ("no-op",),
    ]
    assert project.query("select count(*) from meta.model_runs") == models_before

    forced = project.run("run", "-q", "--no-report", "--full-refresh")
    assert "Done in" in forced.stdout
    project.edit_config("seed = 42", "seed = 7")
    changed = project.run("run", "-q", "--no-report")
    assert "Done in" in changed.stdout, changed.stdout
    statuses = project.query("select status from meta.runs order by started_at")
    assert statuses == [("success",), ("no-op",), ("success",), ("success",)]
    again = project.run("run", "-q", "--no-report")
    assert "Nothing changed" in again.stdout


def test_the_engine_chosen_on_the_command_line_is_part_of_the_fingerprint(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    config = load_config(project.config)
    on_spark = inputs_fingerprint(project.root, with_engine(config, "spark"))
    assert on_spark != inputs_fingerprint(project.root, config)
    assert inputs_fingerprint(project.root, with_engine(config, "duckdb")) == inputs_fingerprint(
        project.root, config
    )
