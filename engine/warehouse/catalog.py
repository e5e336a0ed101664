"""The build file: the DuckDB catalog every engine builds into and every reader opens.

Whatever engine builds the tables, the published warehouse is one DuckDB file: the DuckDB
engine's tables themselves, or the Spark engine's views over its Parquet files. What the run
loop does to that file, whichever engine it runs, is here: the meta history carried forward,
schemas, the descriptions (COMMENT ON), row counts, the tables a Python model reads, the last
published warehouse (attached read-only), tables written from what a model returned, SQL
macros for readers, and the run's record.
"""

from __future__ import annotations

import re
import traceback
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from engine.errors import ConfigError, ModelError, PipelineError, is_interrupt
from engine.project.constraints import ParameterError
from engine.project.discovery import Model
from engine.warehouse import meta, statements
from engine.warehouse.published import opening
from engine.warehouse.recording import RunResult, record_in_meta

PREVIOUS_CATALOG = "previous"
DEFAULT_PERFECT_HASH_BITS = 12  # DuckDB's perfect_ht_threshold
MAX_PERFECT_HASH_BITS = 32  # the most DuckDB takes
_OUTPUT = "__model_output"
COLUMN_COMMENTS = (
    "select schema_name || '.' || table_name, column_name, comment from duckdb_columns() "
    "where database_name = current_database()"
)


@dataclass
class BuildCatalog:
    """An open build file; ``previous`` is the last published warehouse, when there is one."""

    con: duckdb.DuckDBPyConnection
    # Relations handed to Python models read through a second connection, so a model may
    # stream its input while the engine writes its output through ``con``.
    reader: duckdb.DuckDBPyConnection
    # Validation's counts run on a connection of their own, with settings of their own.
    counter: duckdb.DuckDBPyConnection
    has_previous: bool

    @classmethod
    def open(
        cls, path: Path, published: Path, storage_version: str, memory_limit: str | None = None
    ) -> BuildCatalog:
        """A new build file, written in ``storage_version``'s format (DuckDB clients from that
        release on open it); a partial run's copy of the published file keeps its format."""
        settings = {"storage_compatibility_version": storage_version}
        if memory_limit:
            settings["memory_limit"] = memory_limit
        try:
            con = duckdb.connect(str(path), config=settings)
        except duckdb.InvalidInputException as exc:
            known = str(exc).split("valid options are:")[-1].strip()
            raise ConfigError(
                f"key 'warehouse.storage_version' = {storage_version!r} is not a DuckDB release "
                f"DuckDB {duckdb.__version__} can write for; it knows: {known}"
            ) from exc
        has_previous = published.exists()
        if has_previous:
            with opening(published):
                con.execute(f"attach ? as {PREVIOUS_CATALOG} (read_only)", [str(published)])
        return cls(con, con.cursor(), con.cursor(), has_previous)

    def close(self, checkpoint: bool = False) -> None:
        if checkpoint:
            self.con.execute("checkpoint")
        self.reader.close()
        self.counter.close()
        self.con.close()

    # --- the run's history -------------------------------------------------------------------

    def start_history(self, carry: bool, keep_runs: int) -> int:
        """Meta tables, with the published history when ``carry``; how many of the oldest runs
        were left out to keep ``keep_runs`` (0: all) once this run is appended."""
        meta.ensure_meta_tables(self.con)
        if carry and self.has_previous:
            meta.carry_history(self.con, PREVIOUS_CATALOG)
        # One place fewer: this run's own rows are appended when it is recorded.
        return meta.prune_history(self.con, keep_runs - 1) if keep_runs else 0

    def record(self, result: RunResult, inputs_fingerprint: str | None) -> None:
        record_in_meta(self.con, result, inputs_fingerprint)

    def detach_previous(self) -> None:
        if self.has_previous:
            self.con.execute(f"detach {PREVIOUS_CATALOG}")
            self.has_previous = False

    # --- what is in it -----------------------------------------------------------------------

    def create_schema(self, layer: str) -> None:
        self.con.execute(statements.create_schema(layer))

    def relations(self, database: str | None = None) -> dict[str, str]:
        """Every table and view of the build (or of ``database``): ``layer.name`` -> its kind."""
        where = "database_name = ?" if database else "database_name = current_database()"
        rows = self.con.execute(
            f"select schema_name, name, kind from {statements.RELATIONS} where {where}",
            [database] if database else [],
        ).fetchall()
        return {f"{schema}.{name}": kind for schema, name, kind in rows}

    def drop(self, table: str) -> None:
        """Whatever the build holds under the table's name (a partial run starts from a copy)."""
        kind = self.relations().get(table)
        if kind:
            self.con.execute(statements.drop(*table.split(".", 1), kind))

    def row_count(self, table: str) -> int:
        return int(self.con.execute(statements.row_count(*table.split(".", 1))).fetchall()[0][0])

    def fetch_arrow(self, table: str, columns: list[str] | None = None) -> pa.Table:
        return fetch_arrow(self.con, table, columns)

    def schema(self, table: str) -> pa.Table:
        """The table's columns, no rows."""
        query = statements.select_columns(*table.split(".", 1), None)
        return self.con.sql(query).limit(0).to_arrow_table()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.sql(sql).fetchall()

    def counting(self, rows: int) -> Callable[[str], list[tuple[Any, ...]]]:
        """Queries that count a table of ``rows`` rows (validation's aggregates).

        DuckDB groups by an integer key through an array indexed by the key (a perfect hash
        aggregate) when the key's range fits in ``2^perfect_ht_threshold`` (2^12 by default),
        and by a hash table otherwise. The array's size is the key's range, so these counts,
        whose one state is a count, allow a range up to about four times the rows: at 10M
        customers the ids' distinct count then takes about a sixth of the time. A model's
        group-by, whose states may be wide, keeps the default.
        """
        bits = min(max(rows.bit_length() + 2, DEFAULT_PERFECT_HASH_BITS), MAX_PERFECT_HASH_BITS)
        self.counter.execute(f"set perfect_ht_threshold = {bits}")
        return lambda sql: self.counter.sql(sql).fetchall()

    # --- what a Python model reads -----------------------------------------------------------

    def read(self, table: str, wanted: Any) -> Any:
        """The table as a model's parameter annotation asks: an unread DuckDB relation, an
        Arrow table, or else a pandas DataFrame."""
        if wanted is duckdb.DuckDBPyRelation:
            return self.reader.sql(statements.select_columns(*table.split(".", 1), None))
        arrow = self.fetch_arrow(table)
        return arrow if wanted is pa.Table else arrow.to_pandas()

    def previous(self, table: str, wanted: Any) -> Any:
        """The table as last published (a relation when the annotation allows one, else a
        DataFrame), or None when there is none."""
        if not self.has_previous or table not in self.relations(PREVIOUS_CATALOG):
            return None
        layer, name = table.split(".", 1)
        source = exp.table_(name, db=layer, catalog=PREVIOUS_CATALOG, quoted=True)
        query = exp.select("*").from_(source).sql(statements.DIALECT)
        if duckdb.DuckDBPyRelation in typing.get_args(wanted):
            return self.reader.sql(query)
        return self.con.sql(query).to_arrow_table().to_pandas()

    def previous_rows(self, table: str) -> list[tuple[Any, ...]]:
        """Every row of a table of the last published warehouse (none when it has no such
        table)."""
        if not self.has_previous or table not in self.relations(PREVIOUS_CATALOG):
            return []
        layer, name = table.split(".", 1)
        source = exp.table_(name, db=layer, catalog=PREVIOUS_CATALOG, quoted=True)
        return self.con.execute(exp.select("*").from_(source).sql(statements.DIALECT)).fetchall()

    # --- what a model made -------------------------------------------------------------------

    def write(self, model: Model, data: Any) -> None:
        """Create the model's table from what it returned.

        An iterator (a generator of pyarrow record batches, say) is written one part at a time,
        so a model over 10M customers never holds its whole output: the first part creates the
        table, the rest are appended.
        """
        parts = iter(data) if isinstance(data, Iterator) else iter([data])
        written = 0
        try:
            for position, part in enumerate(parts):
                self.con.register(_OUTPUT, _registrable(model, part))
                try:
                    if position == 0:
                        create = statements.create_table_from(model.layer, model.name, _OUTPUT)
                        self.con.execute(create)
                    else:
                        insert = statements.insert_by_name(model.layer, model.name, _OUTPUT)
                        self.con.execute(insert)
                finally:
                    self.con.unregister(_OUTPUT)
                written += 1
        except (PipelineError, ParameterError):
            raise
        except duckdb.OutOfMemoryException as exc:
            raise out_of_memory(model, exc) from exc
        except duckdb.Error as exc:
            if is_interrupt(exc):  # Ctrl-C while DuckDB was reading the model's frame
                raise KeyboardInterrupt from exc
            raise
        except Exception as exc:  # a generator model fails while it is being consumed
            raise model_failure(model, exc) from exc
        if not written:
            raise ModelError(f"{model.path}: model() returned an iterator that yielded nothing")

    def create_as(self, model: Model, query: exp.Query) -> None:
        """CREATE TABLE layer.name AS the query, run by DuckDB."""
        try:
            self.con.execute(statements.create_table_as(model.layer, model.name, query))
        except duckdb.OutOfMemoryException as exc:
            raise out_of_memory(model, exc) from exc
        except duckdb.Error as exc:
            if is_interrupt(exc):
                raise KeyboardInterrupt from exc
            raise ModelError(f"{model.path}: {exc}") from exc

    def install_functions(self, model: Model, functions: tuple[exp.Create, ...]) -> None:
        for function in functions:
            if not isinstance(function, exp.Create) or function.kind not in ("MACRO", "FUNCTION"):
                raise ModelError(
                    f"{model.path}: ModelResult.functions must be CREATE MACRO statements"
                )
            try:
                self.con.execute(function.sql(statements.DIALECT))
            except duckdb.Error as exc:
                raise ModelError(f"{model.path}: installing a SQL function failed: {exc}") from exc

    def describe(self, model: Model) -> None:
        """COMMENT ON the table and its columns, so BI tools show the descriptions.

        A column the model does not describe itself takes the description of the column of that
        name in its first input that has one: a column passed through means what it meant
        there."""
        comments: dict[str, dict[str, str | None]] = {}
        for table, column, comment in self.con.execute(COLUMN_COMMENTS).fetchall():
            comments.setdefault(table, {})[column] = comment
        commenting = _comment_statements(model, comments)
        # One commit for the model's comments, not one per statement: each COMMENT ON alone
        # commits to the build file (the sample's 769 comments: 1.36-1.53 s, 0.90-0.96 s so).
        self.con.begin()
        try:
            for statement in commenting:
                self.con.execute(statement)
        except BaseException:
            self.con.rollback()
            raise
        self.con.commit()


def _comment_statements(model: Model, comments: dict[str, dict[str, str | None]]) -> list[str]:
    """The COMMENT ON statements describing ``model``'s table; ``comments`` holds the build
    file's column comments by table."""
    commenting = []
    if model.description:
        commenting.append(statements.comment_on_table(model.layer, model.name, model.description))
    columns = comments.get(model.table, {})
    own = _described_columns(model.column_descriptions or {}, list(columns))
    for column in model.column_descriptions or {}:
        if column not in own and not _is_template(column):
            raise ModelError(f"{model.path}: describes column '{column}', which it does not write")
    for column in columns:
        inherited = (comments.get(t, {}).get(column) for t in model.inputs)
        text = own.get(column) or next((c for c in inherited if c), None)
        if text is None and model.kind == "source":
            text = f"A column of the landing files that no sources.{model.name}.columns maps, text"
        if text:
            commenting.append(statements.comment_on_column(model.layer, model.name, column, text))
    return commenting


TEMPLATE_FIELD = re.compile(r"\{(\w+)\}")


def _is_template(name: str) -> bool:
    return TEMPLATE_FIELD.search(name) is not None


def _described_columns(descriptions: dict[str, str], columns: list[str]) -> dict[str, str]:
    """Descriptions by column. A key with a field in braces ("expected_purchases_{days}d")
    describes every column it matches, the field's value put into its text: a model whose
    columns follow its config describes them once."""
    found = {c: descriptions[c] for c in columns if c in descriptions}
    for template, text in descriptions.items():
        if not _is_template(template):
            continue
        parts = TEMPLATE_FIELD.split(template)
        pattern = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts)
        )
        for column in columns:
            match = re.fullmatch(pattern, column)
            if match and column not in found:
                found[column] = text.format(**match.groupdict())
    return found


def fetch_arrow(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[str] | None = None
) -> pa.Table:
    return con.sql(statements.select_columns(*table.split(".", 1), columns)).to_arrow_table()


def _registrable(model: Model, data: Any) -> pa.Table | pa.RecordBatch | pd.DataFrame:
    if isinstance(data, duckdb.DuckDBPyRelation):
        data = data.to_arrow_table()
    if not isinstance(data, pa.Table | pa.RecordBatch | pd.DataFrame):
        raise ModelError(
            f"{model.path}: model() returned {type(data).__name__}; expected a pandas "
            "DataFrame, a pyarrow Table, a DuckDB relation, an iterator of record batches or "
            "an engine.model_api.ModelResult"
        )
    return data


def out_of_memory(model: Model, exc: duckdb.OutOfMemoryException) -> ModelError:
    """DuckDB's own advice names its SQL settings; say which config key sets the limit."""
    first = str(exc).strip().splitlines()[0]
    return ModelError(
        f"{model.path.name if model.path else model.table}: DuckDB ran out of memory ({first}): "
        "raise warehouse.memory_limit in the config (past it DuckDB spills to disk, but a single "
        "operation can still need more), or give the machine more memory"
    )


def model_failure(model: Model, exc: BaseException) -> ModelError:
    """A model's own exception as an error naming its file and line."""
    if is_interrupt(exc):  # Ctrl-C that surfaced as DuckDB's error: still Ctrl-C
        raise KeyboardInterrupt from exc
    if isinstance(exc, duckdb.OutOfMemoryException):
        return out_of_memory(model, exc)
    where = model.path.name if model.path else model.table
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if model.path and f.filename == str(model.path)
    ]
    at = f" (line {frames[-1].lineno})" if frames else ""
    return ModelError(f"{where}{at}: {type(exc).__name__}: {exc}")
