"""A model's fits spread over forked fit workers must never change what is built."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool

import pandas as pd
import pytest

from engine.refresh.fit_workers import FitWorkers

from conftest import REPO, ProjectCopy

# The tables made from the work the fit workers spread, and the one that depends on them.
SPREAD_TABLES = ("ml.segment_model_selection", "ml.feature_importance", "ml.customer_segments")


def _square_after_a_pause(value: int) -> tuple[int, int]:
    time.sleep(0.05)  # long enough that the forked worker starts before this process is done
    return value * value, os.getpid()


@pytest.mark.parametrize("workers", [0, 1, 2, 3])
def test_results_come_back_in_order_however_many_workers(workers: int) -> None:
    pool = FitWorkers(workers)
    try:
        results = list(pool.map(_square_after_a_pause, range(8)))
    finally:
        pool.close()
    assert [square for square, _ in results] == [v * v for v in range(8)]
    pids = {pid for _, pid in results}
    if workers > 1:
        # The forked workers do it all, each its share; this process only waits.
        assert os.getpid() not in pids and len(pids) == workers
    else:
        assert pids == {os.getpid()}


def _alive_workers(pids: set[int]) -> set[int]:
    return {pid for pid in pids if _alive(pid)}


def test_a_build_forks_its_workers_once_and_closes_them_at_its_end() -> None:
    pool = FitWorkers(2)
    first = {pid for _, pid in pool.map(_square_after_a_pause, range(6))}
    second = {pid for _, pid in pool.map(_square_after_a_pause, range(6))}
    assert first == second and len(first) == 2 and os.getpid() not in first
    assert _alive_workers(first) == first
    pool.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive_workers(first):
        time.sleep(0.05)
    assert not _alive_workers(first)


@pytest.mark.parametrize("started", [True, False])
def test_workers_started_while_the_builder_was_small_stay_in_use_when_it_has_grown(
    started: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build starts its workers before its first model; past FORK_BELOW_BYTES (10M customers
    read), the fits still go to them, and only a builder without workers fits alone."""
    from engine.refresh import fit_workers

    pool = FitWorkers(2)
    try:
        if started:
            pool.start()
        monkeypatch.setattr(fit_workers, "_small_enough_to_fork", lambda: False)
        pool.start()  # too big now: forks nothing
        pids = {pid for _, pid in pool.map(_square_after_a_pause, range(6))}
    finally:
        pool.close()
    assert (os.getpid() not in pids and len(pids) == 2) if started else pids == {os.getpid()}


def _fails_on_three(value: int) -> int:
    if value == 3:
        raise ValueError("three")
    return value


@pytest.fixture
def two_workers() -> Iterator[FitWorkers]:
    pool = FitWorkers(2)
    yield pool
    pool.close()


def test_a_failing_piece_of_work_raises_its_own_error_and_the_workers_go_on(
    two_workers: FitWorkers,
) -> None:
    with pytest.raises(ValueError, match="three"):
        list(two_workers.map(_fails_on_three, range(6)))
    assert list(two_workers.map(_fails_on_three, [1, 2])) == [1, 2]


def _killed_on_three(value: int) -> int:
    if value == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
    time.sleep(0.05)
    return value


def test_a_killed_worker_is_reported_and_the_next_model_gets_fresh_workers(
    two_workers: FitWorkers,
) -> None:
    with pytest.raises(BrokenProcessPool, match="fit worker stopped abruptly"):
        list(two_workers.map(_killed_on_three, range(6)))
    assert list(two_workers.map(_fails_on_three, [1, 2])) == [1, 2]


def _tables(project: ProjectCopy) -> dict[str, pd.DataFrame]:
    return {table: project.frame(f"select * from {table} order by all") for table in SPREAD_TABLES}


def test_fit_workers_and_the_builder_alone_give_identical_tables(
    built_sample: ProjectCopy, project: ProjectCopy
) -> None:
    """The shipped config fits on two forked workers; one worker fits everything in the builder."""
    forked = _tables(built_sample)
    serial = project.config.read_text().replace("fit_workers = 2", "fit_workers = 1")
    assert "fit_workers = 1" in serial
    project.config.write_text(serial)
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    for table, frame in _tables(project).items():
        pd.testing.assert_frame_equal(frame, forked[table], check_exact=True, obj=table)


def test_forked_workers_die_with_a_killed_builder(tmp_path) -> None:
    """SIGKILL gives the builder no chance to stop its workers; Linux must do it."""
    script = tmp_path / "builder.py"
    script.write_text(
        "import os, sys, time\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from engine.refresh.fit_workers import FitWorkers\n"
        "def nap(i):\n"
        f"    open({str(tmp_path)!r} + f'/worker-{{os.getpid()}}', 'w').close()\n"
        "    time.sleep(60)\n"
        "list(FitWorkers(2).map(nap, range(4)))\n"
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


@pytest.mark.parametrize("api", ["blas", "openmp"])
@pytest.mark.parametrize(("preset", "expected"), [(None, 1), ("2", 2)])
def test_blas_and_openmp_run_on_one_thread_unless_the_user_says_otherwise(
    api: str, preset: str | None, expected: int
) -> None:
    """The command line turns BLAS's and OpenMP's threads off before numpy loads; a user's
    value wins."""
    variable = {"blas": "OPENBLAS_NUM_THREADS", "openmp": "OMP_NUM_THREADS"}[api]
    probe = (
        f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
        "import pipeline\n"
        "import numpy, scipy.linalg, sklearn.cluster\n"
        "from threadpoolctl import threadpool_info\n"
        f"found = {{i['num_threads'] for i in threadpool_info() if i['user_api'] == {api!r}}}\n"
        "print(sorted(found))\n"
    )
    environment = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    }
    if preset is not None:
        environment[variable] = preset
    shown = subprocess.run(
        [sys.executable, "-c", probe], env=environment, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == str([expected])


def test_a_builder_too_big_to_fork_runs_the_pieces_itself(monkeypatch) -> None:
    from engine.refresh import fit_workers

    monkeypatch.setattr(fit_workers, "FORK_BELOW_BYTES", 1)  # any builder is bigger
    pool = FitWorkers(2)
    try:
        results = list(pool.map(_square_after_a_pause, range(4)))
    finally:
        pool.close()
    assert [square for square, _ in results] == [0, 1, 4, 9]
    assert {pid for _, pid in results} == {os.getpid()}


WHERE_LOADED = """
import os

import pandas as pd

LOADED_IN = os.getpid()


def _where(item):
    return LOADED_IN, os.getpid()


def model(stg_customers, parallel):
    found = list(parallel(_where, range(4)))
    return pd.DataFrame(
        {
            "loaded_in": [loaded for loaded, _ in found],
            "worker": [worker for _, worker in found],
            "builder": os.getpid(),
        }
    )
"""


def test_workers_inherit_the_imports_of_the_models_that_share_work(project: ProjectCopy) -> None:
    """The builder imports the models that take ``parallel`` before it forks the workers, so a
    worker does not import scikit-learn again (on the sample, model selection 1.9 -> 1.0 s)."""
    (project.root / "python_models" / "where_loaded.py").write_text(WHERE_LOADED)
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    rows = project.query("select loaded_in, worker, builder from ml.where_loaded")
    assert len(rows) == 4
    assert all(worker != builder for _, worker, builder in rows)  # the work ran in workers
    assert all(loaded == builder for loaded, _, builder in rows)  # on the builder's import
