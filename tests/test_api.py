"""engine/api.py, as a notebook or script calls it: in one Python process started with ``-c``
(not pipeline.py), on a copy of the project."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ProjectCopy

SCRIPT = """
import json
from pathlib import Path
from engine import api
from engine.console import Console
from engine.errors import PipelineError

root, config = Path("."), Path("pipeline.toml")
first = api.run(root, config, Console(quiet=True))
second = api.run(root, config, Console(quiet=True))
frame = api.show(config, "marts.dim_segments", limit=2)
try:
    api.show(config, "marts.no_such_table", limit=2)
    missing = None
except PipelineError as exc:
    missing = exc.exit_code
print(json.dumps({
    "first": [first.result.status, first.result.exit_code, first.result.published],
    "second_noop": second.noop is not None and second.result is None,
    "shown": len(frame),
    "missing_exit_code": missing,
    "models": [m.table for m in api.list_models(root, config)],
    "compiled": api.compile_model(root, config, "dim_segments"),
    "report": str(api.write_report(api.published_config(config))),
    "exports": len(api.export(config, "csv")),
}))
"""


def test_the_api_runs_in_a_plain_python_process(project: ProjectCopy) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # A DuckDB run imports no pyspark, even where it is installed (GX would, in its worker).
    assert "PySpark" not in done.stderr and "pyspark" not in done.stderr, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["first"] == ["success", 0, True]
    assert out["second_noop"] is True
    assert out["shown"] == 2
    assert out["missing_exit_code"] == 2
    listed = project.run("list")
    assert [line.split()[0] for line in listed.stdout.splitlines()] == out["models"]
    compiled = project.run("compile", "dim_segments")
    assert (
        out["compiled"] == compiled.stdout.strip() and "FROM segment_summaries" in out["compiled"]
    )
    assert (project.root / "warehouse" / "report.html").exists()
    assert out["report"].endswith("report.html")
    assert out["exports"] == len(
        project.query("select table_name from duckdb_tables() where schema_name = 'marts'")
    )
