"""The benchmark's floor does the refresh's least work: the same customers, the same segments."""

from __future__ import annotations

from pathlib import Path

import duckdb

from benchmarks.floor import customers_floor

from conftest import ProjectCopy


def test_the_floor_assigns_every_customer_as_the_pipeline_does(
    built_sample: ProjectCopy, tmp_path: Path
) -> None:
    floor_file = tmp_path / "floor.duckdb"
    seconds = customers_floor(built_sample.raw, built_sample.warehouse, floor_file)
    assert seconds > 0
    with duckdb.connect(str(floor_file), read_only=True) as con:
        floor = con.execute("select customer_id, segment_id from assignments order by 1").fetchall()
    pipeline = built_sample.query(
        "select customer_id, segment_id from ml.customer_segments order by 1"
    )
    assert len(floor) == 200 and floor == pipeline
