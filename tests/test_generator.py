"""The data generator is seeded, its dirty rows are all accounted for, sampled fits repeat."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from benchmarks.generate import generate

from conftest import ProjectCopy


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    first = generate(3000, tmp_path / "a", seed=5, dirty_rate=0.04)
    generate(3000, tmp_path / "b", seed=5, dirty_rate=0.04)
    generate(3000, tmp_path / "c", seed=6, dirty_rate=0.04)
    name = first.files[0]
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()
    frame = pd.read_csv(tmp_path / "a" / name, dtype=str)
    assert len(frame) == first.raw_rows == 3000 + 30 + 30
    assert list(frame.columns) == [
        "CustomerID",
        "Gender",
        "Age",
        "Annual Income (k$)",
        "Spending Score (1-100)",
    ]


def test_dirty_rows_are_all_accounted_for_and_sampled_fits_repeat(project: ProjectCopy) -> None:
    workspace = project.root / "generated"
    done = project.run(
        "generate", "--customers", "4000", "--dirty-rate", "0.04", "--output", str(workspace)
    )
    assert done.returncode == 0, done.stderr
    config = workspace / "pipeline.toml"
    # A small fit sample, so the sampled path (fit on a sample, assign everyone) is exercised.
    config.write_text(
        config.read_text() + "\n[models.segment_model_selection]\nfit_sample_size = 1500\n"
    )
    expected = json.loads((workspace / "generation.json").read_text())
    run = project.run("--config", str(config), "run", "-q", "--no-report")
    assert run.returncode == 0, run.stderr
    assert "matches no source's files" not in run.stderr
    warehouse = workspace / "segments.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        counts = con.execute(
            "select raw_rows, staged_rows, rejected_rows, collapsed_rows, is_balanced "
            "from staging.stg_customers_reconciliation"
        ).fetchall()
        first = con.sql("select * from ml.segment_centroids order by all").df()
        fit_rows = con.execute(
            "select distinct fit_rows from ml.segment_model_selection"
        ).fetchall()
    assert counts == [
        (
            expected["raw_rows"],
            expected["staged_rows"],
            expected["rejected_rows"],
            expected["collapsed_rows"],
            True,
        )
    ]
    assert fit_rows == [(1500,)]
    again = project.run("--config", str(config), "run", "-q", "--no-report", "--full-refresh")
    assert again.returncode == 0, again.stderr
    with duckdb.connect(str(warehouse), read_only=True) as con:
        second = con.sql("select * from ml.segment_centroids order by all").df()
    pd.testing.assert_frame_equal(first, second, check_exact=True)
