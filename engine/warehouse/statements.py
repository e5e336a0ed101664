"""The SQL the engine itself runs, built as sqlglot expressions with quoted identifiers.

Model and table names come from file names and config keys, so they are quoted, never pasted.
"""

from __future__ import annotations

from pathlib import Path

from sqlglot import exp

DIALECT = "duckdb"

# Every table and view (an engine may publish views over its own storage), as a subquery.
RELATIONS = (
    "(select database_name, schema_name, table_name as name, 'TABLE' as kind from duckdb_tables() "
    "union all select database_name, schema_name, view_name, 'VIEW' from duckdb_views() "
    "where not internal)"
)


def table_ref(layer: str, name: str) -> exp.Table:
    return exp.table_(name, db=layer, quoted=True)


def schema_creation(layer: str) -> exp.Create:
    """CREATE SCHEMA IF NOT EXISTS, as an expression (an engine renders it in its dialect)."""
    return exp.Create(
        this=exp.Table(this=exp.to_identifier(layer, quoted=True)), kind="SCHEMA", exists=True
    )


def create_schema(layer: str) -> str:
    return schema_creation(layer).sql(DIALECT)


def create_table_as(layer: str, name: str, query: exp.Query) -> str:
    return exp.Create(
        this=table_ref(layer, name), kind="TABLE", expression=query, replace=True
    ).sql(DIALECT)


def create_table_from(layer: str, name: str, relation: str) -> str:
    """Materialize a registered relation (an Arrow table or a DataFrame) as a table."""
    query = exp.select("*").from_(exp.to_identifier(relation, quoted=True))
    return create_table_as(layer, name, query)


def create_empty_table_like(layer: str, name: str, relation: str) -> str:
    query = exp.select("*").from_(exp.to_identifier(relation, quoted=True)).limit(0)
    return exp.Create(this=table_ref(layer, name), kind="TABLE", expression=query, exists=True).sql(
        DIALECT
    )


def insert_by_name(layer: str, name: str, source: exp.Table | str) -> str:
    if isinstance(source, str):
        source = exp.Table(this=exp.to_identifier(source, quoted=True))
    return exp.Insert(
        this=table_ref(layer, name), expression=exp.select("*").from_(source), by_name=True
    ).sql(DIALECT)


def dropping(layer: str, name: str, kind: str) -> exp.Drop:
    """DROP TABLE / VIEW IF EXISTS layer.name, as an expression."""
    return exp.Drop(tables=[table_ref(layer, name)], kind=kind, exists=True)


def drop(layer: str, name: str, kind: str) -> str:
    return dropping(layer, name, kind).sql(DIALECT)


def schema_dropping(layer: str, cascade: bool = False) -> exp.Drop:
    """DROP SCHEMA IF EXISTS, with what is in it when ``cascade``, as an expression."""
    schema = exp.Table(this=exp.to_identifier(layer, quoted=True))
    return exp.Drop(tables=[schema], kind="SCHEMA", exists=True, cascade=cascade)


def drop_schema(layer: str) -> str:
    return schema_dropping(layer).sql(DIALECT)


def delete_all(layer: str, name: str) -> str:
    return exp.Delete(this=table_ref(layer, name)).sql(DIALECT)


def row_count(layer: str, name: str) -> str:
    return exp.select(exp.func("count", exp.Star())).from_(table_ref(layer, name)).sql(DIALECT)


def select_columns(
    layer: str, name: str, columns: list[str] | None, limit: int | None = None
) -> str:
    projection = [exp.column(c, quoted=True) for c in columns] if columns else [exp.Star()]
    query = exp.select(*projection).from_(table_ref(layer, name))
    return (query.limit(limit) if limit is not None else query).sql(DIALECT)


def comment_on_table(layer: str, name: str, text: str) -> str:
    return exp.Comment(
        this=table_ref(layer, name), kind="TABLE", expression=exp.Literal.string(text)
    ).sql(DIALECT)


def comment_on_column(layer: str, name: str, column: str, text: str) -> str:
    target = exp.Column(
        this=exp.to_identifier(column, quoted=True),
        table=exp.to_identifier(name, quoted=True),
        db=exp.to_identifier(layer, quoted=True),
    )
    return exp.Comment(this=target, kind="COLUMN", expression=exp.Literal.string(text)).sql(DIALECT)


def copy_to(layer: str, name: str, path: Path, file_format: str) -> str:
    """COPY (SELECT * FROM layer.name) TO 'path' WITH (format ..., header true for CSV)."""
    return copy_query_to(exp.select("*").from_(table_ref(layer, name)), path, file_format)


def copy_query_to(query: exp.Query, path: Path, file_format: str = "csv") -> str:
    """COPY (query) TO 'path' WITH (format ..., header true for CSV)."""
    parameters = [exp.CopyParameter(this=exp.var("format"), expression=exp.var(file_format))]
    if file_format == "csv":
        parameters.append(exp.CopyParameter(this=exp.var("header"), expression=exp.true()))
    return exp.Copy(
        this=exp.Subquery(this=query),
        kind=False,
        files=[exp.Literal.string(str(path))],
        params=parameters,
    ).sql(DIALECT)
