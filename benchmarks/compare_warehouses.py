"""Compare every published table of two warehouses, exactly unless told otherwise.

    python -m benchmarks.compare_warehouses A.duckdb B.duckdb

For checking that a change to the engine leaves the results as they were: the same tables, the
same columns and types, the same rows (as multisets; floats by exact value) and the same SQL
functions. The ``meta`` schema (timings, run ids) and the columns that hold a run's id
(``run_id``, ``previous_run_id``, ``first_seen_run_id``) differ by construction and are left
out. ``differences`` can also allow columns new in the second warehouse, a tolerance for a
table's DOUBLE columns (relative, absolute near zero), and tables expected to change. Exit
code 0 when the two are identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb
import numpy as np
from sqlglot import exp

from engine.warehouse.statements import DIALECT

SKIPPED_SCHEMAS = ("meta",)
RUN_COLUMNS = ("run_id", "previous_run_id", "first_seen_run_id")


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute(
        "select schema_name, table_name, column_name, data_type from duckdb_columns() "
        "where database_name = ? order by schema_name, table_name, column_index",
        [catalog],
    ).fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for schema, table, column, data_type in rows:
        if schema not in SKIPPED_SCHEMAS:
            tables.setdefault(f"{schema}.{table}", []).append((column, data_type))
    return tables


def _functions(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, str]:
    rows = con.execute(
        "select schema_name, function_name, macro_definition from duckdb_functions() "
        "where database_name = ? and function_type in ('macro', 'table_macro')",
        [catalog],
    ).fetchall()
    return {f"{schema}.{name}": str(definition) for schema, name, definition in rows}


def _rows_only_in(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[str], first: str, second: str
) -> int:
    layer, name = table.split(".", 1)

    def side(catalog: str) -> exp.Select:
        source = exp.table_(name, db=layer, catalog=catalog, quoted=True)
        return exp.select(*(exp.column(c, quoted=True) for c in columns)).from_(source)

    difference = exp.Except(this=side(first), expression=side(second), distinct=False)
    query = exp.select(exp.func("count", exp.Star())).from_(difference.subquery("d"))
    return int(con.execute(query.sql(DIALECT)).fetchall()[0][0])


def _floats_apart(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]], relative: float
) -> int:
    """Rows whose DOUBLE columns differ by more than ``relative`` × (1 + |value|): relative for
    big values, absolute for those near zero (the last bits of two distances are a large share
    of the margin between them); all else exactly equal, a null matching only a null."""
    layer, name = table.split(".", 1)
    floats = [c for c, kind in columns if kind == "DOUBLE"]
    keys = [c for c, kind in columns if kind != "DOUBLE" and c not in RUN_COLUMNS]

    def side(catalog: str) -> exp.Select:
        source = exp.table_(name, db=layer, catalog=catalog, quoted=True)
        ordered = [exp.column(c, quoted=True) for c in keys + floats]
        return exp.select(*ordered).from_(source).order_by(*ordered)

    a, b = (con.execute(side(c).sql(DIALECT)).df() for c in ("a", "b"))
    if len(a) != len(b) or not a[keys].equals(b[keys]):
        return max(len(a), len(b))
    close = np.isclose(
        a[floats].to_numpy(), b[floats].to_numpy(), rtol=relative, atol=relative, equal_nan=True
    )
    return int((~close.all(axis=1)).sum())


def differences(
    first: Path,
    second: Path,
    new_columns: dict[str, set[str]] | None = None,
    float_tolerance: dict[str, float] | None = None,
    changed: frozenset[str] = frozenset(),
    dropped_columns: dict[str, set[str]] | None = None,
) -> list[str]:
    """What differs between the two warehouses, one line each; empty when they are identical.

    ``new_columns``: columns (by table) that only the second is expected to have.
    ``float_tolerance``: tables whose DOUBLE columns may differ by this relative amount
    (absolute near zero: see _floats_apart).
    ``changed``: tables (or SQL functions) expected to differ, be added or be removed.
    ``dropped_columns``: columns (by table) that only the first is expected to have.
    """
    new_columns, float_tolerance = new_columns or {}, float_tolerance or {}
    dropped_columns = dropped_columns or {}
    con = duckdb.connect()
    try:
        con.execute("attach ? as a (read_only)", [str(first)])
        con.execute("attach ? as b (read_only)", [str(second)])
        found: list[str] = []
        tables_a, tables_b = _tables(con, "a"), _tables(con, "b")
        for table in sorted((set(tables_a) ^ set(tables_b)) - changed):
            found.append(f"{table}: only in {'A' if table in tables_a else 'B'}")
        for table in sorted((set(tables_a) & set(tables_b)) - changed):
            added = new_columns.get(table, set())
            tables_b[table] = [(c, t) for c, t in tables_b[table] if c not in added]
            dropped = dropped_columns.get(table, set())
            tables_a[table] = [(c, t) for c, t in tables_a[table] if c not in dropped]
            if tables_a[table] != tables_b[table]:
                found.append(f"{table}: columns differ: {tables_a[table]} vs {tables_b[table]}")
                continue
            if table in float_tolerance:
                apart = _floats_apart(con, table, tables_a[table], float_tolerance[table])
                if apart:
                    found.append(f"{table}: {apart} row(s) differ beyond the tolerance")
                continue
            columns = [c for c, _ in tables_a[table] if c not in RUN_COLUMNS]
            only_a = _rows_only_in(con, table, columns, "a", "b")
            only_b = _rows_only_in(con, table, columns, "b", "a")
            if only_a or only_b:
                found.append(f"{table}: {only_a} row(s) only in A, {only_b} only in B")
        functions_a, functions_b = _functions(con, "a"), _functions(con, "b")
        for function in sorted((set(functions_a) | set(functions_b)) - changed):
            if functions_a.get(function) != functions_b.get(function):
                found.append(f"{function}: SQL function differs")
        return found
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args(argv)
    found = differences(args.first, args.second)
    for line in found:
        print(line)
    print("identical" if not found else f"{len(found)} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
