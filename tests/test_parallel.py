"""Spreading the work over both cores (models two at a time, a model's fits over forked
workers) must never change what is built."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool

import pandas as pd
import pytest

from engine import forked_workers
from python_models._parallel import parallel_map

from conftest import REPO, ProjectCopy

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
        # The forked workers do it all, each its share; this process only waits.
        assert os.getpid() not in pids and len(pids) == workers
    else:
        assert pids == {os.getpid()}


def _alive_workers(pids: set[int]) -> set[int]:
    return {pid for pid in pids if _alive(pid)}


def test_a_build_forks_its_workers_once_and_closes_them_at_its_end() -> None:
    with forked_workers.shared_by_the_build():
        first = {pid for _, pid in parallel_map(_square_after_a_pause, range(6), 2, True)}
        second = {pid for _, pid in parallel_map(_square_after_a_pause, range(6), 2, True)}
        assert first == second and len(first) == 2 and os.getpid() not in first
        assert _alive_workers(first) == first
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive_workers(first):
        time.sleep(0.05)
    assert not _alive_workers(first)
    # Outside a build every call forks workers of its own.
    third = {pid for _, pid in parallel_map(_square_after_a_pause, range(6), 2, True)}
    assert not third & first


def test_a_failed_piece_of_work_leaves_the_next_model_fresh_shared_workers() -> None:
    with forked_workers.shared_by_the_build():
        before = {pid for _, pid in parallel_map(_square_after_a_pause, range(4), 2, True)}
        with pytest.raises(ValueError, match="three"):
            list(parallel_map(_fails_on_three, range(6), 2, True))
        after = {pid for _, pid in parallel_map(_square_after_a_pause, range(4), 2, True)}
        assert len(after) == 2 and not after & before


def test_a_build_shares_its_workers_only_once_at_a_time() -> None:
    with (
        forked_workers.shared_by_the_build(),
        pytest.raises(RuntimeError, match="already shared"),
        forked_workers.shared_by_the_build(),
    ):
        pass


def _fails_on_three(value: int) -> int:
    if value == 3:
        raise ValueError("three")
    return value


@pytest.mark.parametrize("processes", [False, True])
def test_a_failing_piece_of_work_raises_its_own_error(processes: bool) -> None:
    with pytest.raises(ValueError, match="three"):
        list(parallel_map(_fails_on_three, range(6), 2, processes))


def _killed_on_three(value: int) -> int:
    if value == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
    time.sleep(0.05)
    return value


def test_a_killed_worker_is_reported_and_the_next_model_gets_fresh_workers() -> None:
    with forked_workers.shared_by_the_build():
        with pytest.raises(BrokenProcessPool, match="fit worker stopped abruptly"):
            list(parallel_map(_killed_on_three, range(6), 2, True))
        assert list(parallel_map(_fails_on_three, [1, 2], 2, True)) == [1, 2]


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


def test_two_models_at_a_time_build_the_same_warehouse_as_one_at_a_time(
    built_sample: ProjectCopy, project: ProjectCopy
) -> None:
    one_at_a_time = project.config.read_text().replace(
        "concurrent_max_rows = 100000", "concurrent_max_rows = 0"
    )
    assert "concurrent_max_rows = 0" in one_at_a_time
    project.config.write_text(one_at_a_time)
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    tables = built_sample.query(
        "select schema_name || '.' || table_name from duckdb_tables() "
        "where schema_name not in ('meta', 'main') order by all"
    )
    assert len(tables) == 32
    for (table,) in tables:
        # segment_history records which run made each row; everything else is the data.
        columns = "* exclude (run_id)" if table == "ml.segment_history" else "*"
        pd.testing.assert_frame_equal(
            project.frame(f"select {columns} from {table} order by all"),
            built_sample.frame(f"select {columns} from {table} order by all"),
            check_exact=True,
            obj=table,
        )


def test_forked_workers_die_with_a_killed_builder(tmp_path) -> None:
    """SIGKILL gives the builder no chance to stop its workers; Linux must do it."""
    script = tmp_path / "builder.py"
    script.write_text(
        "import os, sys, time\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from python_models._parallel import parallel_map\n"
        "def nap(i):\n"
        f"    open({str(tmp_path)!r} + f'/worker-{{os.getpid()}}', 'w').close()\n"
        "    time.sleep(60)\n"
        "list(parallel_map(nap, range(4), 2, processes=True))\n"
    )
    builder = subprocess.Popen([sys.executable, str(script)])
    deadline = time.monotonic() + 30
    workers: list[int] = []
    while time.monotonic() < deadline:
        workers = [
            int(p.name.split("-")[1])
            for p in tmp_path.glob("worker-*")
            if int(p.name.split("-")[1]) != builder.pid
        ]
        if workers:
            break
        time.sleep(0.05)
    assert workers, "no forked worker started"
    builder.send_signal(signal.SIGKILL)
    builder.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A dead child not yet reaped by init shows as a zombie: that counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"


@pytest.mark.parametrize(("preset", "expected"), [(None, 1), ("2", 2)])
def test_blas_runs_on_one_thread_unless_the_user_says_otherwise(preset, expected) -> None:
    """The command line turns BLAS's own threads off before numpy loads; a user's value wins."""
    probe = (
        f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
        "import pipeline\n"
        "import numpy, scipy.linalg\n"
        "from threadpoolctl import threadpool_info\n"
        "print(sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}))\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        environment["OPENBLAS_NUM_THREADS"] = preset
    shown = subprocess.run(
        [sys.executable, "-c", probe], env=environment, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == str([expected])


def test_one_thread_holds_openmp_to_one_thread_in_the_block_only() -> None:
    import sklearn.cluster  # noqa: F401  loads scikit-learn's OpenMP runtime
    from threadpoolctl import threadpool_info, threadpool_limits

    from python_models._parallel import one_thread

    def openmp_threads() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"}

    with threadpool_limits(limits=2, user_api="openmp"):  # two, whatever the machine has
        assert openmp_threads() == {2}, "scikit-learn's OpenMP runtime is not loaded"
        with one_thread():
            assert openmp_threads() == {1}
        assert openmp_threads() == {2}
