"""The ``meta`` layer: run history, per-model timings and every expectation result.

History lives inside the warehouse so BI tools can chart it; each build copies the previous
warehouse's history forward, drops what is beyond the configured number of runs, then appends the
current run.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
from sqlglot import exp

from engine import statements

META_LAYER = "meta"
META_TABLES: dict[str, dict[str, pa.DataType]] = {
    "runs": {
        "run_id": pa.string(),
        "started_at": pa.timestamp("us", tz="UTC"),
        "finished_at": pa.timestamp("us", tz="UTC"),
        "status": pa.string(),
        "selection": pa.string(),
        "config_fingerprint": pa.string(),
        # Set by full builds only: what a no-op check compares against.
        "inputs_fingerprint": pa.string(),
        "models_built": pa.int64(),
        "models_failed": pa.int64(),
        "models_skipped": pa.int64(),
        "rows_rejected": pa.int64(),
        "expectations_passed": pa.int64(),
        "expectations_warned": pa.int64(),
        "expectations_failed": pa.int64(),
        "seconds": pa.float64(),
    },
    "model_runs": {
        "run_id": pa.string(),
        "model": pa.string(),
        "layer": pa.string(),
        "kind": pa.string(),
        "status": pa.string(),
        "rows": pa.int64(),
        "seconds": pa.float64(),
        "started_at": pa.timestamp("us", tz="UTC"),
        "message": pa.string(),
    },
    "expectation_results": {
        "run_id": pa.string(),
        "suite": pa.string(),
        "table_name": pa.string(),
        "expectation_type": pa.string(),
        "column_name": pa.string(),
        "kwargs": pa.string(),
        "severity": pa.string(),
        "success": pa.bool_(),
        "observed_value": pa.string(),
        "unexpected_count": pa.int64(),
        "unexpected_percent": pa.float64(),
        "error": pa.string(),
    },
}


def _as_arrow(table: str, rows: list[dict]) -> pa.Table:
    columns = META_TABLES[table]
    return pa.table(
        {name: pa.array([r.get(name) for r in rows], kind) for name, kind in columns.items()}
    )


META_DESCRIPTIONS = {
    "runs": (
        "One row per published refresh (or recorded no-op): status, counts and seconds. "
        "The meta tables keep the last warehouse.history_runs runs."
    ),
    "model_runs": "One row per model per published refresh: status, rows and seconds.",
    "expectation_results": "Every expectation checked in a published refresh, with its outcome.",
}


def ensure_meta_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(statements.create_schema(META_LAYER))
    for table in META_TABLES:
        con.register("__meta_empty", _as_arrow(table, []))
        con.execute(statements.create_empty_table_like(META_LAYER, table, "__meta_empty"))
        con.unregister("__meta_empty")
        con.execute(statements.comment_on_table(META_LAYER, table, META_DESCRIPTIONS[table]))


def carry_history(con: duckdb.DuckDBPyConnection, previous: str) -> None:
    """Replace the build's history with that of the attached database ``previous``."""
    present = {
        row[0]
        for row in con.execute(
            "select table_name from duckdb_tables() where database_name = ? and schema_name = ?",
            [previous, META_LAYER],
        ).fetchall()
    }
    for table in META_TABLES:
        if table in present:
            source = exp.table_(table, db=META_LAYER, catalog=previous, quoted=True)
            con.execute(statements.delete_all(META_LAYER, table))
            con.execute(statements.insert_by_name(META_LAYER, table, source))


def prune_history(con: duckdb.DuckDBPyConnection, keep_runs: int) -> int:
    """Keep the history of the ``keep_runs`` most recent runs only; how many runs were dropped."""
    total = con.execute(statements.row_count(META_LAYER, "runs")).fetchall()[0][0]
    dropped = max(total - keep_runs, 0)
    if not dropped:
        return 0
    recent = (
        exp.select("run_id")
        .from_(statements.table_ref(META_LAYER, "runs"))
        .order_by(exp.column("started_at").desc(), exp.column("run_id").desc())
        .limit(keep_runs)
    )
    # Runs last: the other tables find what to keep through it.
    for table in [t for t in META_TABLES if t != "runs"] + ["runs"]:
        older = exp.column("run_id").isin(query=recent.copy()).not_()
        delete = exp.delete(statements.table_ref(META_LAYER, table), where=older)
        con.execute(delete.sql(statements.DIALECT))
    return dropped


def append(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    con.register("__meta_rows", _as_arrow(table, rows))
    try:
        con.execute(statements.insert_by_name(META_LAYER, table, "__meta_rows"))
    finally:
        con.unregister("__meta_rows")
