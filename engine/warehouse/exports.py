"""Write a layer's tables as Parquet or CSV files for tools that read files.

Each file is written under a temporary name and renamed into place, so a reader of the export
folder sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlglot import exp

from engine.warehouse import statements
from engine.warehouse.atomic_files import replace_atomically, write_text_atomically
from engine.warehouse.published import connect_read_only

EXTENSIONS = {"parquet": "parquet", "csv": "csv"}


def export_layer(warehouse: Path, layer: str, file_format: str, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with connect_read_only(warehouse) as con:
        tables = [
            row[0]
            for row in con.execute(
                f"select name from {statements.RELATIONS} "
                "where database_name = current_database() and schema_name = ? order by 1",
                [layer],
            ).fetchall()
        ]
        for table in tables:
            target = directory / f"{table}.{EXTENSIONS[file_format]}"
            rows = _sorted_rows(layer, table)
            replace_atomically(
                target,
                lambda partial, q=rows: con.execute(
                    statements.copy_query_to(q, partial, file_format)
                ),
            )
            written.append(target)
    return written


def _sorted_rows(layer: str, table: str) -> exp.Query:
    """The table's rows sorted by every column: the same table is written as the same file,
    whatever order it is stored in (marts.dim_customers is stored unsorted)."""
    return exp.select("*").from_(statements.table_ref(layer, table)).order_by(exp.var("all"))


def _audience_query(audience: str, columns: list[str]) -> exp.Query:
    """The audience's target customers, with the configured columns of marts.dim_customers."""
    members = statements.table_ref("marts", "audience_members").as_("members")
    customers = statements.table_ref("marts", "dim_customers").as_("customers")
    picked = [exp.column("customer_id", "members", quoted=True)]
    picked += [exp.column(c, "customers", quoted=True) for c in columns]
    return (
        exp.select(*picked)
        .from_(members)
        .join(customers, on="members.customer_id = customers.customer_id", join_type="left")
        .where(
            exp.and_(
                exp.column("audience", "members").eq(exp.Literal.string(audience)),
                exp.column("audience_group", "members").eq(exp.Literal.string("target")),
            )
        )
        .order_by(exp.column("customer_id", "members"))
    )


def export_audiences(warehouse: Path, directory: Path) -> list[Path]:
    """One CSV per audience of its target customers (the holdout never in it), and a manifest
    of what each file holds; every file written atomically, the manifest last."""
    written = []
    with connect_read_only(warehouse) as con:
        audiences = con.sql(
            "select s.*, a.columns from marts.audience_summary s "
            "join config.audiences a using (audience) order by audience"
        ).fetchdf()
        (run_id,) = con.execute(
            "select run_id from meta.runs where status = 'success' order by started_at desc limit 1"
        ).fetchone()
        for row in audiences.itertuples():
            target = directory / f"{row.audience}.csv"
            query = _audience_query(row.audience, list(row.columns))
            replace_atomically(
                target, lambda partial, q=query: con.execute(statements.copy_query_to(q, partial))
            )
            written.append(target)
    manifest = {
        "run_id": run_id,
        "audiences": [
            {
                "audience": row.audience,
                "file": f"{row.audience}.csv",
                "condition": row.condition,
                "rows": int(row.target_customers),
                "holdout_customers": int(row.holdout_customers),
                "customers": int(row.customers),
                "columns": ["customer_id", *row.columns],
            }
            for row in audiences.itertuples()
        ],
    }
    written.append(
        write_text_atomically(directory / "manifest.json", json.dumps(manifest, indent=2))
    )
    return written
