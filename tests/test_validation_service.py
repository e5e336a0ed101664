"""The GX worker process: a worker that dies is reported, and never keeps the builder alive."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import REPO

# A builder that loses its worker with many tables still queued: more than the pipe between
# them holds, so those requests can never be delivered. It must still exit normally.
BUILDER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path

    import pyarrow as pa

    from engine.errors import ProjectError
    from engine.checks.expectations import Suite
    from engine.adapters.validation_worker import ValidationService

    service = ValidationService(spool_beside=Path(sys.argv[1]))
    os.kill(service._process.pid, getattr(signal, sys.argv[2]))
    service._process.join()
    suite = Suite(
        "staging.t",
        Path("staging.t.json"),
        {"expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "x" * 4000}}]},
    )
    table = pa.table({"x": [1, 2, 3]})
    for _ in range(100):
        service.submit(suite, table, table.slice(0, 0), {})
    try:
        service.wait_all()
    except ProjectError as exc:
        print(exc)
    except KeyboardInterrupt:
        from engine.refresh import interrupts

        print(f"interrupted, exit {interrupts.exit_code()}")
    service.close()
    """
)


def test_a_builder_whose_worker_died_reports_it_and_exits(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BUILDER, str(tmp_path), "SIGKILL"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,  # without cancel_join_thread, its exit handlers wait forever
    )
    assert done.returncode == 0, done.stderr
    assert "the validation worker stopped unexpectedly (killed by SIGKILL" in done.stdout
    assert "lower warehouse.serial_validation_rows" in done.stdout  # what to change
    assert list(tmp_path.iterdir()) == []  # the spool folder went with the worker


def test_a_worker_stopped_by_sigterm_stops_the_run_as_sigterm(tmp_path: Path) -> None:
    """SIGTERM goes to every process of a job: when the worker's death is seen before the
    builder's own signal, the run still ends as stopped by SIGTERM (exit 143), not as a broken
    worker (exit 4). Seen in the SIGTERM test about one time in three."""
    done = subprocess.run(
        [sys.executable, "-c", BUILDER, str(tmp_path), "SIGTERM"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "interrupted, exit 143", done.stdout
    assert list(tmp_path.iterdir()) == []
