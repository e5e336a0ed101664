"""Read only what a model needs from a warehouse table.

A Python model that declares an input as ``duckdb.DuckDBPyRelation`` gets the table unread; these
helpers fetch the columns it uses through Arrow, or let DuckDB aggregate first. At 10M customers
a whole table in pandas costs gigabytes; the two or three columns a model reads cost a fraction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from engine.model_api import DIALECT


def _names(columns: Sequence[str]) -> str:
    return ", ".join(exp.column(c, quoted=True).sql(DIALECT) for c in columns)


def frame(
    relation: duckdb.DuckDBPyRelation, columns: Sequence[str], order_by: Sequence[str] = ()
) -> pd.DataFrame:
    """These columns of the relation as a pandas frame, optionally ordered (by any column)."""
    return arrow_table(relation, columns, order_by).to_pandas()


def arrow_table(
    relation: duckdb.DuckDBPyRelation, columns: Sequence[str], order_by: Sequence[str] = ()
) -> pa.Table:
    """These columns of the relation as an Arrow table, optionally ordered (by any column)."""
    ordered = relation.order(_names(order_by)) if order_by else relation
    return ordered.project(_names(columns)).to_arrow_table()


def counts(relation: duckdb.DuckDBPyRelation, column: str) -> pd.Series:
    """Rows per value of ``column``, counted by DuckDB, ordered by value."""
    grouped = relation.aggregate(f"{_names([column])}, count(*) as n", _names([column]))
    table = grouped.order(_names([column])).to_arrow_table().to_pandas()
    return table.set_index(column)["n"]


def distinct(relation: duckdb.DuckDBPyRelation, column: str) -> list[Any]:
    """The distinct values of one column, in order."""
    found = relation.project(_names([column])).distinct().order(_names([column])).fetchall()
    return [value for (value,) in found]


def where(relation: duckdb.DuckDBPyRelation, **equal: str | int) -> duckdb.DuckDBPyRelation:
    """The rows whose columns equal these values (quoted as literals, never pasted)."""
    literal = {str: exp.Literal.string, int: exp.Literal.number}
    condition = exp.and_(
        *(exp.column(c, quoted=True).eq(literal[type(v)](v)) for c, v in equal.items())
    )
    return relation.filter(condition.sql(DIALECT))
