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


COLUMN_TYPES = (
    "select table_schema, table_name, column_name, data_type from information_schema.columns "
    "order by all"
)


def test_the_same_customers_continue_the_lineage(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    before = project.query("select segment_id, segment_name from marts.dim_segments order by 1")
    first_types = project.query(COLUMN_TYPES)
    assert project.run("run", "-q", "--full-refresh").returncode == 0
    assert _lineage(project) == [(1, True, None, 200), (1, False, 200, 200)]
    # Every column keeps its type from the first refresh on (shared_customers became a DOUBLE).
    assert project.query(COLUMN_TYPES) == first_types
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


def _groups(project: ProjectCopy, groups: list[tuple[range, float, float]]) -> None:
    """Customers in tight groups of (ids, income, spending score), ages spread alike."""
    rng = np.random.default_rng(29)
    lines = [HEADER]
    for ids, income, score in groups:
        for customer in ids:
            lines.append(
                f"{customer},Female,{rng.integers(20, 60)},"
                f"{income + rng.normal(0, 3):.1f},{int(score + rng.integers(-3, 4))}"
            )
    project.write_csv(SAMPLE.name, "\n".join(lines) + "\n")


FIXED_K = """[models.segment_model_selection]
selection = "fixed"
fixed_k = {k}

"""


def test_an_id_goes_only_to_the_segment_that_continues_it(project: ProjectCopy) -> None:
    """k goes from 2 to 3: group A splits, and the part that left it moves next to where group B
    was, while B's customers all move on together. Closest centroids would hand B's id to A's
    part; the members say B's id belongs to B's customers, and A's part is a new segment split
    from A."""
    for old, new in (
        ('columns = ["age", ', "columns = ["),
        ('age = "Age (years)"\n', ""),
        ('age = ["Younger", "Older"]\n', ""),
        ('age = ["Age", ""]\n', ""),
        ("[features.labels]", FIXED_K.format(k=2) + "[features.labels]"),
    ):
        project.edit_config(old, new)
    a, b = range(1, 301), range(301, 501)
    _groups(project, [(a, 30, 20), (b, 90, 80)])
    assert project.run("run", "-q", "--no-report").returncode == 0
    before = dict(project.query("select customer_id, segment_id from ml.customer_segments"))
    assert {before[1], before[301]} == {1, 2} and before[1] != before[301]
    project.edit_config("fixed_k = 2", "fixed_k = 3")
    _groups(project, [(range(1, 181), 30, 20), (range(181, 301), 80, 70), (b, 120, 95)])
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    after = dict(project.query("select customer_id, segment_id from ml.customer_segments"))
    assert after[301] == before[301]  # B's customers keep B's id
    assert after[1] == before[1]  # most of A stays A
    assert after[181] not in (before[1], before[301])  # A's part that left is a new segment
    changes = {
        (f, t): (customers, change)
        for f, t, customers, change in project.query(
            "select from_segment_id, to_segment_id, customers, change from ml.segment_migrations"
        )
    }
    assert changes == {
        (before[1], before[1]): (180, "stayed"),
        (before[1], after[181]): (120, "split"),
        (before[301], before[301]): (200, "stayed"),
    }
