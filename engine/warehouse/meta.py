"""The ``meta`` layer: run history, per-model timings and every expectation result.

History lives inside the warehouse so BI tools can chart it; each build copies the previous
warehouse's history forward, drops what is beyond the configured number of runs, then appends the
current run.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
from sqlglot import exp

from engine.warehouse import statements

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
        "unexpected_values": pa.string(),
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


RUN_ID = "The refresh (meta.runs.run_id)"
META_COLUMNS: dict[str, dict[str, str]] = {
    "runs": {
        "run_id": "The refresh's id: start time (UTC) and a random suffix",
        "started_at": "When the refresh started (UTC)",
        "finished_at": "When it finished (UTC)",
        "status": "success, or no-op (nothing had changed, nothing was rebuilt)",
        "selection": "The --select it was given; empty for a full build",
        "config_fingerprint": "SHA-256 of the effective configuration",
        "inputs_fingerprint": "SHA-256 of landing files, config and code; no-op runs compare it",
        "models_built": "Models built",
        "models_failed": "Models that failed (0 in a published refresh)",
        "models_skipped": "Models skipped because an input failed",
        "rows_rejected": "Raw rows rejected in staging, with reasons",
        "expectations_passed": "Expectations that passed",
        "expectations_warned": "Non-blocking expectations that failed (warnings)",
        "expectations_failed": "Blocking expectations that failed (0 in a published refresh)",
        "seconds": "How long the refresh took",
    },
    "model_runs": {
        "run_id": RUN_ID,
        "model": "The model's table (layer.name)",
        "layer": "config, raw, staging, intermediate, ml or marts",
        "kind": "seed, source, sql or python",
        "status": "success, error, skipped or failed_expectations",
        "rows": "Rows the model wrote",
        "seconds": "How long it took to build",
        "started_at": "When it started (UTC)",
        "message": "What went wrong, if anything",
    },
    "expectation_results": {
        "run_id": RUN_ID,
        "suite": "The suite file (expectations/<layer>.<table>.json)",
        "table_name": "The table it checked",
        "expectation_type": "The Great Expectations expectation",
        "column_name": "The column it checked, if one",
        "kwargs": "Its arguments, as JSON",
        "severity": "critical (blocks the publish), warning or info",
        "success": "Whether it passed",
        "observed_value": "What GX observed",
        "unexpected_count": "Rows that broke it",
        "unexpected_percent": "Share of rows that broke it, in percent",
        "error": "GX's error, if the expectation could not be evaluated",
        "unexpected_values": "Up to five of the values that broke the expectation, as JSON",
    },
}


def ensure_meta_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(statements.create_schema(META_LAYER))
    for table in META_TABLES:
        con.register("__meta_empty", _as_arrow(table, []))
        con.execute(statements.create_empty_table_like(META_LAYER, table, "__meta_empty"))
        con.unregister("__meta_empty")
        con.execute(statements.comment_on_table(META_LAYER, table, META_DESCRIPTIONS[table]))
        for column, text in META_COLUMNS[table].items():
            con.execute(statements.comment_on_column(META_LAYER, table, column, text))


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
