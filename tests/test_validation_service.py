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
    from engine.adapters.duckdb.validation_worker import ValidationService

    service = ValidationService(spool_beside=Path(sys.argv[1]))
    os.kill(service._process.pid, signal.SIGKILL)
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
    service.close()
    """
)


def test_a_builder_whose_worker_died_reports_it_and_exits(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BUILDER, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,  # without cancel_join_thread, its exit handlers wait forever
    )
    assert done.returncode == 0, done.stderr
    assert "the validation worker stopped unexpectedly (killed by SIGKILL" in done.stdout
    assert "lower warehouse.serial_validation_rows" in done.stdout  # what to change
    assert list(tmp_path.iterdir()) == []  # the spool folder went with the worker
