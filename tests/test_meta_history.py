"""Run history retention: the build keeps the meta rows of the most recent runs only."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from engine.warehouse import meta
from tests.conftest import ProjectCopy


def _history(con: duckdb.DuckDBPyConnection, runs: int, seed: int) -> list[str]:
    """``runs`` runs with two model rows and three expectation rows each, appended in a shuffled
    order; returns their ids from newest to oldest."""
    meta.ensure_meta_tables(con)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [f"run-{n:03d}" for n in range(runs)]
    shuffled = ids.copy()
    random.Random(seed).shuffle(shuffled)
    for run_id in shuffled:
        at = start + timedelta(hours=int(run_id.removeprefix("run-")))
        meta.append(con, "runs", [{"run_id": run_id, "started_at": at, "status": "success"}])
        meta.append(con, "model_runs", [{"run_id": run_id, "model": m} for m in ("a", "b")])
        meta.append(
            con, "expectation_results", [{"run_id": run_id, "suite": s} for s in ("x", "y", "z")]
        )
    return ids[::-1]


def _ids(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, int]]:
    return con.execute(
        f"select run_id, count(*) from meta.{table} group by run_id order by run_id desc"
    ).fetchall()


@pytest.mark.parametrize("keep", [1, 4, 9])
def test_prune_keeps_the_most_recent_runs_and_all_their_rows(tmp_path: Path, keep: int) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        newest_first = _history(con, 10, seed=keep)
        assert meta.prune_history(con, keep) == 10 - keep
        kept = sorted(newest_first[:keep], reverse=True)
        assert _ids(con, "runs") == [(r, 1) for r in kept]
        assert _ids(con, "model_runs") == [(r, 2) for r in kept]
        assert _ids(con, "expectation_results") == [(r, 3) for r in kept]


def test_prune_changes_nothing_within_the_limit(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        _history(con, 5, seed=0)
        before = {t: _ids(con, t) for t in meta.META_TABLES}
        assert meta.prune_history(con, 5) == 0
        assert meta.prune_history(con, 50) == 0
        assert {t: _ids(con, t) for t in meta.META_TABLES} == before


def _latest_run_id(project: ProjectCopy) -> str:
    return json.loads((project.root / "warehouse/run_results/latest.json").read_text())["run_id"]


def test_published_history_is_capped_by_history_runs(project: ProjectCopy) -> None:
    project.config.write_text(
        project.config.read_text().replace("history_runs = 1000", "history_runs = 2")
    )
    run_ids = []
    partial = ("run", "--select", "eda_profile")  # a quick build that records a run too
    for args in (("run", "-q"), partial, partial):
        done = project.run(*args)
        assert done.returncode == 0, done.stderr
        run_ids.append(_latest_run_id(project))
    assert "leaves out the 1 oldest run(s); meta keeps the last 2" in done.stdout
    kept = sorted(run_ids[1:])
    assert [r for (r,) in project.query("select run_id from meta.runs order by run_id")] == kept
    for table in ("model_runs", "expectation_results"):
        found = project.query(f"select distinct run_id from meta.{table} order by run_id")
        assert [r for (r,) in found] == kept
