"""Build one model into the build connection: a seed, a raw source, a SQL or a Python model.

A Python model's parameters are filled from one table of providers (config, seed, run_id,
variables, progress); every other parameter is a table it reads, handed over in the type its
annotation asks for (a DuckDB relation, a pyarrow Table, or else a pandas DataFrame).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import traceback
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from engine.errors import ConfigError, ModelError, PipelineError, is_interrupt
from engine.model_api import ModelResult
from engine.project import seeds
from engine.project.config import Config
from engine.project.constraints import ParameterError
from engine.project.discovery import PREVIOUS_PREFIX, Model, Project
from engine.refresh.loader import source_parts
from engine.warehouse import statements

PREVIOUS_CATALOG = "previous"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildContext:
    """What building a model may use: the build connection and what this run was given."""

    con: duckdb.DuckDBPyConnection
    project: Project
    config: Config
    run_id: str
    model_params: dict[str, dict[str, Any]]
    has_previous: bool  # the last published warehouse is attached as PREVIOUS_CATALOG
    # Relations handed to Python models read through a second connection, so a model may
    # stream its input while the engine writes its output through ``con``.
    reader: duckdb.DuckDBPyConnection
    # Runs a model's independent pieces of work side by side: the build's FitWorkers.map.
    parallel: Callable[[Callable[[Any], Any], Any], Iterator[Any]]
    # --reset-history: models are given no previous table, as on a first build.
    reset_history: bool = False
    # Inputs read from another table instead (the Spark engine's fit samples): table -> table.
    stand_ins: Mapping[str, str] = field(default_factory=dict)

    def previous_table(self, table: str, as_relation: bool) -> Any:
        """The table as last published (a relation or a DataFrame), or None when there is none
        (or the run resets history)."""
        if not self.has_previous or self.reset_history:
            return None
        layer, name = table.split(".", 1)
        found = self.con.execute(
            f"select count(*) from {statements.RELATIONS} "
            "where database_name = ? and schema_name = ? and name = ?",
            [PREVIOUS_CATALOG, layer, name],
        ).fetchall()[0][0]
        if not found:
            return None
        source = exp.table_(name, db=layer, catalog=PREVIOUS_CATALOG, quoted=True)
        connection = self.reader if as_relation else self.con
        relation = connection.sql(exp.select("*").from_(source).sql(statements.DIALECT))
        return relation if as_relation else relation.to_arrow_table().to_pandas()


def fetch_arrow(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[str] | None = None
) -> pa.Table:
    layer, name = table.split(".", 1)
    return con.sql(statements.select_columns(layer, name, columns)).to_arrow_table()


def row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    layer, name = table.split(".", 1)
    return int(con.execute(statements.row_count(layer, name)).fetchall()[0][0])


# --- what a Python model's parameters receive ----------------------------------------------

Provider = Callable[[BuildContext, Model, Progress], Any]

PROVIDERS: dict[str, Provider] = {
    "config": lambda context, model, _: context.model_params[model.name],
    "seed": lambda context, _, __: context.config.seed,
    "run_id": lambda context, _, __: context.run_id,
    "variables": lambda context, _, __: context.config.variables,
    "progress": lambda _, __, progress: progress,  # a long model says how far it is
    "parallel": lambda context, _, __: context.parallel,  # parallel(function, items)
}

TableReader = Callable[[BuildContext, str], Any]

TABLE_READERS: dict[Any, TableReader] = {
    duckdb.DuckDBPyRelation: lambda context, table: context.reader.sql(
        statements.select_columns(*table.split(".", 1), None)
    ),
    pa.Table: lambda context, table: fetch_arrow(context.con, table),
}


def _read_table(context: BuildContext, table: str, wanted: Any) -> Any:
    reader = TABLE_READERS.get(wanted)
    return reader(context, table) if reader else fetch_arrow(context.con, table).to_pandas()


def _python_inputs(
    context: BuildContext, model: Model, function: Callable[..., Any], progress: Progress
) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError):
        hints = {}
    by_name = context.project.by_name
    arguments: dict[str, Any] = {}
    for parameter in model.parameters:
        if parameter in PROVIDERS:
            arguments[parameter] = PROVIDERS[parameter](context, model, progress)
        elif parameter.startswith(PREVIOUS_PREFIX):
            table = by_name[parameter.removeprefix(PREVIOUS_PREFIX)].table
            as_relation = duckdb.DuckDBPyRelation in typing.get_args(hints.get(parameter))
            arguments[parameter] = context.previous_table(table, as_relation)
        else:
            table = by_name[parameter].table
            arguments[parameter] = _read_table(
                context, context.stand_ins.get(table, table), hints.get(parameter)
            )
    return arguments


# --- writing what a model made -----------------------------------------------------------

_OUTPUT = "__model_output"


def _as_registrable(model: Model, data: Any) -> pa.Table | pa.RecordBatch | pd.DataFrame:
    if isinstance(data, duckdb.DuckDBPyRelation):
        data = data.to_arrow_table()
    if not isinstance(data, pa.Table | pa.RecordBatch | pd.DataFrame):
        raise ModelError(
            f"{model.path}: model() returned {type(data).__name__}; expected a pandas "
            "DataFrame, a pyarrow Table, a DuckDB relation, an iterator of record batches or "
            "an engine.model_api.ModelResult"
        )
    return data


def _write_table(con: duckdb.DuckDBPyConnection, model: Model, data: Any) -> None:
    """Create the model's table from what it returned.

    An iterator (a generator of pyarrow record batches, say) is written one part at a time, so
    a model over 10M customers never holds its whole output: the first part creates the table,
    the rest are appended.
    """
    parts = iter(data) if isinstance(data, Iterator) else iter([data])
    written = 0
    try:
        for position, part in enumerate(parts):
            con.register(_OUTPUT, _as_registrable(model, part))
            try:
                if position == 0:
                    con.execute(statements.create_table_from(model.layer, model.name, _OUTPUT))
                else:
                    con.execute(statements.insert_by_name(model.layer, model.name, _OUTPUT))
            finally:
                con.unregister(_OUTPUT)
            written += 1
    except (PipelineError, ParameterError):
        raise
    except duckdb.Error as exc:
        if is_interrupt(exc):  # Ctrl-C while DuckDB was reading the model's frame
            raise KeyboardInterrupt from exc
        raise
    except Exception as exc:  # a generator model fails while it is being consumed
        raise model_failure(model, exc) from exc
    if not written:
        raise ModelError(f"{model.path}: model() returned an iterator that yielded nothing")


def install_functions(
    con: duckdb.DuckDBPyConnection, model: Model, functions: tuple[exp.Create, ...]
) -> None:
    for function in functions:
        if not isinstance(function, exp.Create) or function.kind not in ("MACRO", "FUNCTION"):
            raise ModelError(f"{model.path}: ModelResult.functions must be CREATE MACRO statements")
        try:
            con.execute(function.sql(statements.DIALECT))
        except duckdb.Error as exc:
            raise ModelError(f"{model.path}: installing a SQL function failed: {exc}") from exc


COLUMN_COMMENTS = (
    "select schema_name || '.' || table_name, column_name, comment from duckdb_columns() "
    "where database_name = current_database()"
)


def describe(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """COMMENT ON the table and its columns, so BI tools show the descriptions.

    A column the model does not describe itself takes the description of the column of that
    name in its first input that has one: a column passed through means what it meant there."""
    if model.description:
        con.execute(statements.comment_on_table(model.layer, model.name, model.description))
    comments: dict[str, dict[str, str | None]] = {}
    for table, column, comment in con.execute(COLUMN_COMMENTS).fetchall():
        comments.setdefault(table, {})[column] = comment
    columns = comments.get(model.table, {})
    own = model.column_descriptions or {}
    for column in own:
        if column not in columns:
            raise ModelError(f"{model.path}: describes column '{column}', which it does not write")
    for column in columns:
        inherited = (comments.get(t, {}).get(column) for t in model.inputs)
        text = own.get(column) or next((c for c in inherited if c), None)
        if text is None and model.kind == "source":
            text = f"A column of the landing files that no sources.{model.name}.columns maps, text"
        if text:
            con.execute(statements.comment_on_column(model.layer, model.name, column, text))


# --- one model ---------------------------------------------------------------------------


def _load_python_model(model: Model) -> Callable[..., Any]:
    assert model.path is not None
    spec = importlib.util.spec_from_file_location(f"python_models.{model.name}", model.path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered like any imported module, so what it defines can be pickled by name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.model


def model_failure(model: Model, exc: BaseException) -> ModelError:
    if is_interrupt(exc):  # Ctrl-C that surfaced as DuckDB's error: still Ctrl-C
        raise KeyboardInterrupt from exc
    where = model.path.name if model.path else model.table
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if model.path and f.filename == str(model.path)
    ]
    at = f" (line {frames[-1].lineno})" if frames else ""
    return ModelError(f"{where}{at}: {type(exc).__name__}: {exc}")


def _run_python_model(context: BuildContext, model: Model, progress: Progress) -> Any:
    try:
        function = _load_python_model(model)
        return function(**_python_inputs(context, model, function, progress))
    except (PipelineError, ParameterError):
        raise
    except Exception as exc:  # a model's own bug: report it against the model file
        raise model_failure(model, exc) from exc


def _create_from_query(con: duckdb.DuckDBPyConnection, model: Model, query: exp.Query) -> None:
    try:
        con.execute(statements.create_table_as(model.layer, model.name, query))
    except duckdb.Error as exc:
        if is_interrupt(exc):
            raise KeyboardInterrupt from exc
        raise ModelError(f"{model.path}: {exc}") from exc


@contextlib.contextmanager
def parameter_errors_as_config(config: Config) -> Iterator[None]:
    """A model's own check of what the config gave it fails as a config error."""
    try:
        yield
    except ParameterError as exc:
        raise ConfigError(f"{config.path.name}: {exc}") from exc


def python_result(context: BuildContext, model: Model, progress: Progress) -> ModelResult:
    """Run a Python model; what it returned, as a ModelResult."""
    result = _run_python_model(context, model, progress)
    if not isinstance(result, ModelResult):
        return ModelResult(table=result)
    if result.table is not None and result.query is not None:
        raise ModelError(f"{model.path}: a ModelResult has a table or a query, not both")
    return result


def write_python_result(con: duckdb.DuckDBPyConnection, model: Model, result: ModelResult) -> None:
    if result.query is not None:
        _create_from_query(con, model, result.query)
    else:
        _write_table(con, model, result.table)
    install_functions(con, model, result.functions)


def build_model(context: BuildContext, model: Model, progress: Progress) -> None:
    con, config = context.con, context.config
    if model.kind == "seed":
        _write_table(con, model, seeds.SEED_BUILDERS[model.name](config))
    elif model.kind == "source":
        _write_table(con, model, source_parts(config, config.sources[model.name], progress))
    elif model.kind == "sql":
        assert model.query is not None
        _create_from_query(con, model, model.query)
    else:
        with parameter_errors_as_config(config):
            write_python_result(con, model, python_result(context, model, progress))
