"""Tables between Spark and DuckDB, as Parquet files, with no Python pass over the rows.

A Spark table is Parquet files in the warehouse folder, which DuckDB reads as they are; so a
Python model run for the Spark engine gets a DuckDB connection whose ``layer.name`` views read
its inputs' files, and receives them through the same contract as with the DuckDB engine (a
relation, an Arrow table or a DataFrame, by its annotation). What it writes is copied to a
Parquet file, which becomes the Spark table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from engine import statements


def parquet_location(spark: Any, table: str) -> str:
    """The folder (or file) a Spark table's Parquet data is in, as a local path."""
    layer, name = table.split(".", 1)
    describe = exp.Describe(this=statements.table_ref(layer, name), style="EXTENDED")
    rows = spark.sql(describe.sql("spark")).collect()
    location = next(r["data_type"] for r in rows if r["col_name"] == "Location")
    return location.removeprefix("file:")


def _files(location: str) -> str:
    return location if location.endswith(".parquet") else f"{location.rstrip('/')}/*.parquet"


def duckdb_views(con: duckdb.DuckDBPyConnection, spark: Any, tables: list[str]) -> None:
    """A view ``layer.name`` in ``con`` over each Spark table's Parquet files."""
    for table in tables:
        layer, name = table.split(".", 1)
        con.execute(statements.create_schema(layer))
        files = exp.func("read_parquet", exp.Literal.string(_files(parquet_location(spark, table))))
        view = exp.Create(
            this=statements.table_ref(layer, name),
            kind="VIEW",
            replace=True,
            expression=exp.select("*").from_(files),
        )
        con.execute(view.sql(statements.DIALECT))


def to_spark_table(spark: Any, con: duckdb.DuckDBPyConnection, table: str, folder: Path) -> None:
    """The DuckDB table as a Parquet file in ``folder`` and a Spark table of the same name
    over it."""
    layer, name = table.split(".", 1)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{table}.parquet"
    con.execute(statements.copy_to(layer, name, path, "parquet"))
    spark.sql(statements.create_schema(layer, dialect="spark"))
    register_parquet(spark, table, path)


def parquet_properties(location: Path | str) -> exp.Properties:
    """USING PARQUET LOCATION '…': a table over files that dropping it leaves in place."""
    return exp.Properties(
        expressions=[
            exp.FileFormatProperty(this=exp.var("parquet")),
            exp.LocationProperty(this=exp.Literal.string(str(location))),
        ]
    )


def register_parquet(spark: Any, table: str, location: Path | str) -> None:
    """A Spark table ``layer.name`` over Parquet files already written."""
    layer, name = table.split(".", 1)
    table_ref = statements.table_ref(layer, name)
    create = exp.Create(this=table_ref, kind="TABLE", properties=parquet_properties(location))
    spark.sql(create.sql("spark"))
