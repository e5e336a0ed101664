"""The published warehouse opens in the DuckDB 1.x clients that BI tools ship, each run as its own
process on the real file: the DuckDB CLI 1.5.6 (PyPI's duckdb-cli, from the test extra) and the
Node API 1.5.6 (npm's @duckdb/node-api, installed in tests/clients by the test command), the
driver of Node-based BI tools. Both read a mart, a column's description and call the scorer
macro, and must see what this project's own DuckDB sees.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb

from conftest import ProjectCopy

CLI = Path(sys.executable).with_name("duckdb")
NODE_CLIENTS = Path(__file__).resolve().parent / "clients"
QUERIES = {
    "mart": "select segment_id, segment_name, customers from marts.dim_segments "
    "order by segment_id",
    "comment": "select comment from duckdb_columns() where schema_name = 'marts' "
    "and table_name = 'dim_segments' and column_name = 'customers'",
    "scorer": "select count(*) as agree from marts.dim_customers "
    "where ml.assign_segment(age, annual_income_k, spending_score) = segment_id",
}


def _ours(warehouse: Path, sql: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        relation = con.sql(sql)
        names = relation.columns
        return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_duckdb_cli_1_5_opens_the_published_warehouse(built_sample: ProjectCopy) -> None:
    assert CLI.exists(), f"{CLI} is missing: install the test extra (duckdb-cli)"
    assert _run([str(CLI), "-version"]).startswith("v1.5.")
    for name, sql in QUERIES.items():
        text = _run([str(CLI), "-readonly", "-json", str(built_sample.warehouse), "-c", sql])
        assert json.loads(text) == _ours(built_sample.warehouse, sql), name
    assert _ours(built_sample.warehouse, QUERIES["scorer"]) == [{"agree": 200}]


def test_duckdb_node_api_1_5_opens_the_published_warehouse(built_sample: ProjectCopy) -> None:
    module = NODE_CLIENTS / "node_modules" / "@duckdb" / "node-api"
    assert module.is_dir(), f"run 'npm ci --prefix {NODE_CLIENTS}' (the test command does)"
    script = str(NODE_CLIENTS / "query.mjs")
    warehouse = str(built_sample.warehouse)
    version = json.loads(_run(["node", script, warehouse, "select version() as v"]))
    assert version[0]["v"].startswith("v1.5.")
    for name, sql in QUERIES.items():
        rows = json.loads(_run(["node", script, warehouse, sql]))
        # The Node API gives JSON-safe values: 64-bit integers as text.
        ours = [{k: str(v) if isinstance(v, int) else v for k, v in r.items()} for r in rows]
        want = _ours(built_sample.warehouse, sql)
        want = [{k: str(v) if isinstance(v, int) else v for k, v in r.items()} for r in want]
        assert ours == want, name


def test_a_newer_storage_version_is_what_old_clients_cannot_open(project: ProjectCopy) -> None:
    """The setting is what makes the difference: the current format locks the 1.5 CLI out."""
    project.edit_config("[warehouse]", '[warehouse]\nstorage_version = "latest"')
    assert project.run("run", "-q", "--no-report").returncode == 0
    done = subprocess.run(
        [str(CLI), "-readonly", str(project.warehouse), "-c", "select 1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "version" in done.stderr.lower()


def test_a_storage_version_duckdb_does_not_know_is_a_config_error(project: ProjectCopy) -> None:
    project.edit_config("[warehouse]", '[warehouse]\nstorage_version = "v9.9.9"')
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 2
    assert "key 'warehouse.storage_version' = 'v9.9.9' is not a DuckDB release" in done.stderr
    assert not project.warehouse.exists()
