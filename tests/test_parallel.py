"""Spreading a model's work over both cores must never change what it computes."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest

from python_models._parallel import parallel_map

from conftest import ProjectCopy

# The tables made from the work parallel_map spreads, and the one that depends on them.
SPREAD_TABLES = ("ml.segment_model_selection", "ml.feature_importance", "ml.customer_segments")


def _square_after_a_pause(value: int) -> tuple[int, int]:
    time.sleep(0.05)  # long enough that the forked worker starts before this process is done
    return value * value, os.getpid()


@pytest.mark.parametrize(
    ("workers", "processes"), [(1, False), (1, True), (2, False), (2, True), (3, True)]
)
def test_results_come_back_in_order_whichever_way_the_work_is_spread(
    workers: int, processes: bool
) -> None:
    results = list(parallel_map(_square_after_a_pause, range(8), workers, processes))
    assert [square for square, _ in results] == [v * v for v in range(8)]
    pids = {pid for _, pid in results}
    if workers > 1 and processes:
        # This process works too, and the forked workers take their share.
        assert os.getpid() in pids and len(pids) == workers
    else:
        assert pids == {os.getpid()}


def _fails_on_three(value: int) -> int:
    if value == 3:
        raise ValueError("three")
    return value


@pytest.mark.parametrize("processes", [False, True])
def test_a_failing_piece_of_work_raises_its_own_error(processes: bool) -> None:
    with pytest.raises(ValueError, match="three"):
        list(parallel_map(_fails_on_three, range(6), 2, processes))


def _tables(project: ProjectCopy) -> dict[str, pd.DataFrame]:
    return {table: project.frame(f"select * from {table} order by all") for table in SPREAD_TABLES}


def test_processes_threads_and_one_core_give_identical_tables(
    built_sample: ProjectCopy, project: ProjectCopy
) -> None:
    """The sample is below parallel_min_rows, so the default build forked workers."""
    forked = _tables(built_sample)
    base = project.config.read_text()
    for spread in ("workers = 2\nparallel_min_rows = 0", "workers = 1"):
        project.config.write_text(
            base
            + f"\n[models.segment_model_selection]\n{spread}\n"
            + f"\n[models.feature_importance]\n{spread}\n"
        )
        done = project.run("run", "-q", "--no-report")
        assert done.returncode == 0, done.stderr
        for table, frame in _tables(project).items():
            pd.testing.assert_frame_equal(frame, forked[table], check_exact=True, obj=table)
