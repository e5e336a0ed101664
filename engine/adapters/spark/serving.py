"""The published tables, served from a Hive metastore (``spark.metastore``) to Spark SQL readers.

Each published table is an external Parquet table in a database of the run that wrote its files
(``marts__run_20261205t130329z_5bac55.dim_segments``), and the layer's database (``marts``) has
a view of the same name over it, with the table's and its columns' descriptions. A publish
registers the new run's tables first (readers see no change), then replaces the layer views,
then drops the views of tables no longer published and the run databases that neither the
current nor the previous catalog reads (their files are the engine's to delete). A reader sees
each view switch to the new run as it is replaced: one statement per table, all within about a
second, per table rather than at once. A reader that must see one run throughout can read a run
database, which keeps its tables until the next-but-one publish.

The metastore is opened by a short-lived Spark session in a child process with the Hive catalog,
so the build's own session keeps its in-memory catalog (its tables are never served), and an
embedded Derby metastore is held only while the child runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from engine.adapters.spark.metastore import KEY, Metastore
from engine.adapters.spark.sql import DIALECT
from engine.errors import PipelineError

# sqlglot does not build Spark's SHOW; the database is a parameter, never pasted.
SHOW_TABLES = "SHOW TABLES IN IDENTIFIER(:db)"
RUN_DATABASE = re.compile(r"^(?P<layer>[a-z0-9_]+?)__run_[0-9a-z_]+$")


class NotServed(PipelineError):
    """The catalog was published, but the metastore still serves the previous run."""

    exit_code = 4


@dataclass(frozen=True)
class ServedTable:
    table: str  # layer.name
    location: str  # the folder of its Parquet files
    comment: str | None
    columns: tuple[tuple[str, str | None], ...]  # (name, description)

    @property
    def layer(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.table.split(".", 1)[1]

    @property
    def run_database(self) -> str:
        return run_database(self.layer, self.location)


def run_database(layer: str, location: str) -> str:
    """``<layer>__run_<run id>``: the database of the run whose folder holds the files
    (``…/runs/<run_id>/<layer>/<name>``); Hive folds names to lower case."""
    run_id = Path(location).parent.parent.name
    return f"{layer}__run_{re.sub(r'[^0-9a-z]+', '_', run_id.lower())}"


def served_tables(
    published: Path, files: dict[str, list[tuple[str, str]]]
) -> tuple[list[ServedTable], set[str]]:
    """The published catalog's current tables (``files``: its ``meta.table_files`` by publish)
    with their descriptions, and the run databases its current and previous tables are in."""
    with duckdb.connect(str(published), read_only=True) as con:
        comments = dict(
            con.execute(
                "select schema_name || '.' || view_name, comment from duckdb_views() "
                "where not internal"
            ).fetchall()
        )
        columns: dict[str, list[tuple[str, str | None]]] = {}
        for table, column, comment in con.execute(
            "select schema_name || '.' || table_name, column_name, comment from duckdb_columns() "
            "order by schema_name, table_name, column_index"
        ).fetchall():
            columns.setdefault(table, []).append((column, comment))
    tables = [
        ServedTable(table, location, comments.get(table), tuple(columns[table]))
        for table, location in files.get("current", [])
    ]
    keep = {
        run_database(table.split(".", 1)[0], location)
        for pairs in files.values()
        for table, location in pairs
    }
    return sorted(tables, key=lambda t: t.table), keep


def _comment(text: str | None) -> list[exp.Expression]:
    return [] if not text else [exp.SchemaCommentProperty(this=exp.Literal.string(text))]


def _database(name: str) -> str:
    return exp.Create(
        this=exp.Table(this=exp.to_identifier(name, quoted=True)), kind="DATABASE", exists=True
    ).sql(DIALECT)


def registration(tables: list[ServedTable]) -> list[str]:
    """The databases, and each table in its run's database (a run's table already there is
    kept: a partial run serves the tables it did not rebuild from their old run)."""
    databases = sorted({t.layer for t in tables} | {t.run_database for t in tables})
    creates = [
        exp.Create(
            this=exp.table_(t.name, db=t.run_database, quoted=True),
            kind="TABLE",
            exists=True,
            properties=exp.Properties(
                expressions=[
                    exp.FileFormatProperty(this=exp.var("parquet")),
                    exp.LocationProperty(this=exp.Literal.string(t.location)),
                    *_comment(t.comment),
                ]
            ),
        ).sql(DIALECT)
        for t in tables
    ]
    return [_database(d) for d in databases] + creates


def repointing(tables: list[ServedTable]) -> list[str]:
    """Each layer's view over its table in the run database, with the descriptions."""
    return [_view(t).sql(DIALECT) for t in tables]


def _view(table: ServedTable) -> exp.Create:
    columns = [
        exp.ColumnDef(
            this=exp.to_identifier(name, quoted=True),
            constraints=[]
            if not comment
            else [
                exp.ColumnConstraint(
                    kind=exp.CommentColumnConstraint(this=exp.Literal.string(comment))
                )
            ],
        )
        for name, comment in table.columns
    ]
    source = exp.table_(table.name, db=table.run_database, quoted=True)
    query = exp.select(*(exp.column(n, quoted=True) for n, _ in table.columns)).from_(source)
    return exp.Create(
        this=exp.Schema(
            this=exp.table_(table.name, db=table.layer, quoted=True), expressions=columns
        ),
        kind="VIEW",
        replace=True,
        expression=query,
        properties=exp.Properties(expressions=_comment(table.comment)),
    )


def removals(
    tables: list[ServedTable], keep: set[str], existing: dict[str, list[str]]
) -> list[str]:
    """Drop what the metastore still has of earlier publishes: a layer's views of tables no
    longer published, and the run databases neither catalog reads. ``existing``: each
    database's tables and views."""
    layers = {t.layer for t in tables}
    served = {t.table for t in tables}
    drops = [
        exp.Drop(tables=[exp.table_(name, db=layer, quoted=True)], kind="VIEW", exists=True)
        for layer in sorted(layers & set(existing))
        for name in sorted(existing[layer])
        if f"{layer}.{name}" not in served
    ]
    for database in sorted(existing):
        match = RUN_DATABASE.match(database)
        if match and match["layer"] in layers and database not in keep:
            drops.append(
                exp.Drop(
                    tables=[exp.Table(this=exp.to_identifier(database, quoted=True))],
                    kind="DATABASE",
                    exists=True,
                    cascade=True,
                )
            )
    return [d.sql(DIALECT) for d in drops]


def serve(
    metastore: Metastore,
    warehouse_dir: Path,
    published: Path,
    files: dict[str, list[tuple[str, str]]],
) -> str:
    """Serve the published catalog's tables (``files``: its ``meta.table_files`` by publish)
    from the metastore; what was done, in a line."""
    tables, keep = served_tables(published, files)
    request = {
        "conf": metastore.spark_conf(),
        "java_properties": metastore.java_properties(),
        "warehouse_dir": str(warehouse_dir),
        "statements": registration(tables) + repointing(tables),
        "tables": [t.__dict__ for t in tables],
        "keep": sorted(keep),
    }
    done = subprocess.run(
        [sys.executable, "-m", __name__],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    answer = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if done.returncode != 0 or "error" in answer:
        reason = answer.get("error") or _last_lines(done.stderr)
        raise NotServed(
            f"{published} is published, but {KEY} ({metastore.where}) still serves the "
            f"previous run: {reason}. Run again once the metastore takes it."
        )
    return (
        f"Served {len(tables)} tables from {KEY} ({metastore.where}); "
        f"dropped {answer['dropped']} older definition(s)"
    )


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("\t")]
    return " / ".join(lines[-count:]) or "the metastore process failed"


def _serve_in_child(request: dict[str, Any]) -> dict[str, Any]:
    from engine.adapters.spark.session import start_session

    spark = start_session(
        "local[1]", Path(request["warehouse_dir"]), request["conf"], request["java_properties"]
    )
    for statement in request["statements"]:
        spark.sql(statement)
    tables = [
        ServedTable(t["table"], t["location"], t["comment"], tuple(map(tuple, t["columns"])))
        for t in request["tables"]
    ]
    # SHOW, not spark.catalog.listTables, which fetches every table's metadata too.
    databases = [row[0] for row in spark.sql("SHOW DATABASES").collect()]
    layers = {t.layer for t in tables}
    existing: dict[str, list[str]] = {
        database: (
            [row.tableName for row in spark.sql(SHOW_TABLES, args={"db": database}).collect()]
            if database in layers
            else []
        )
        for database in databases
    }
    drops = removals(tables, set(request["keep"]), existing)
    for statement in drops:
        spark.sql(statement)
    return {"dropped": len(drops)}


def main() -> int:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        answer = _serve_in_child(json.load(sys.stdin))
    except (PySparkException, Py4JJavaError) as exc:
        print(json.dumps({"error": _reason(exc)}))
        return 1
    print(json.dumps(answer))
    return 0


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "Another instance of Derby" in text:
        return "its embedded Derby database is open in another process"
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("at ")
    ]
    return " / ".join(lines[:2])


if __name__ == "__main__":
    sys.exit(main())
