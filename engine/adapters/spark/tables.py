"""Tables between Spark and DuckDB, as Parquet files, with no Python pass over the rows.

A Spark table is Parquet files in the warehouse folder, which DuckDB reads as they are; so the
Spark engine's catalog has a ``layer.name`` view over each table's files, through which Python
models receive their inputs by the same contract as with the DuckDB engine (a relation, an
Arrow table or a DataFrame, by its annotation). What a model writes is copied to a Parquet
file, which becomes the Spark table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from engine.adapters.spark.sql import DIALECT
from engine.warehouse import statements


def duckdb_view(table: str, location: Path | str) -> str:
    """CREATE VIEW layer.name over a Spark table's Parquet files, for DuckDB."""
    files = exp.func("read_parquet", exp.Literal.string(f"{location}/*.parquet"))
    return exp.Create(
        this=statements.table_ref(*table.split(".", 1)),
        kind="VIEW",
        expression=exp.select("*").from_(files),
    ).sql(statements.DIALECT)


def to_spark_table(spark: Any, con: duckdb.DuckDBPyConnection, table: str, folder: Path) -> None:
    """The DuckDB table as a Parquet file in ``folder`` and a Spark table of the same name
    over it."""
    layer, name = table.split(".", 1)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{table}.parquet"
    con.execute(statements.copy_to(layer, name, path, "parquet"))
    spark.sql(statements.schema_creation(layer).sql(DIALECT))
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
    spark.sql(create.sql(DIALECT))
