"""A different population starts a new segment lineage; --reset-history starts one on request."""

from __future__ import annotations

import numpy as np

from conftest import SAMPLE, ProjectCopy

HEADER = "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)"


def _other_population(project: ProjectCopy, first_id: int, n: int) -> None:
    rng = np.random.default_rng(first_id)
    lines = [HEADER] + [
        f"{first_id + i},{rng.choice(['Male', 'Female'])},{rng.integers(18, 70)},"
        f"{rng.integers(15, 140)},{rng.integers(1, 100)}"
        for i in range(n)
    ]
    (project.raw / SAMPLE.name).unlink()
    project.write_csv("other.csv", "\n".join(lines) + "\n")


def _lineage(project: ProjectCopy) -> list[tuple]:
    return project.query(
        "select lineage, is_new_lineage, shared_customers, customers from ml.segment_lineage "
        "order by lineage, run_id"
    )


def test_a_different_population_starts_a_new_lineage(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    first_segments = project.query("select count(*) from ml.segment_centroids")[0][0]
    _other_population(project, 50_001, 300)
    done = project.run("run", "-q")
    assert done.returncode == 0, done.stderr
    assert _lineage(project) == [(1, True, None, 200), (2, True, 0, 300)]
    (reason,) = project.query("select reason from ml.segment_lineage where lineage = 2")[0]
    assert "only 0 of 300 customers (0.0%) were in the last refresh" in reason
    ids = [r[0] for r in project.query("select segment_id from marts.dim_segments order by 1")]
    assert ids == list(range(1, len(ids) + 1))  # a new lineage numbers its segments from 1
    moved_from = project.query(
        "select count(*) from ml.segment_migrations where from_segment_id is not null"
    )
    assert moved_from == [(0,)]  # nobody "moved" from a Mall segment into the new data's
    history = dict(
        project.query("select lineage, count(distinct run_id) from ml.segment_history group by 1")
    )
    assert history == {1: 1, 2: 1}  # the old lineage's history is kept, under its number
    assert project.query("select count(*) from ml.segment_history where lineage = 1")[0][0] == (
        first_segments
    )


def test_the_same_customers_continue_the_lineage(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    before = project.query("select segment_id, segment_name from marts.dim_segments order by 1")
    assert project.run("run", "-q", "--full-refresh").returncode == 0
    assert _lineage(project) == [(1, True, None, 200), (1, False, 200, 200)]
    assert project.query("select segment_id, segment_name from marts.dim_segments order by 1") == (
        before
    )


def test_reset_history_starts_over_but_keeps_the_run_log(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    _other_population(project, 1, 300)  # ids overlap the sample's: no automatic new lineage
    done = project.run("run", "-q", "--reset-history")
    assert done.returncode == 0, done.stderr
    assert _lineage(project) == [(1, True, None, 300)]
    ids = [r[0] for r in project.query("select segment_id from marts.dim_segments order by 1")]
    assert ids == list(range(1, len(ids) + 1))
    assert project.query("select count(distinct run_id) from ml.segment_history") == [(1,)]
    assert project.query(
        "select count(*) from ml.segment_migrations where from_segment_id is not null"
    ) == [(0,)]
    assert project.query("select count(*) from meta.runs") == [(2,)]
