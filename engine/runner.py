"""Build the selected models into a fresh DuckDB file, validate each, and publish if all pass."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import sys
import time
import traceback
import typing
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from engine import forked_workers, meta, publish, quality, seeds, statements
from engine.config import Config
from engine.console import Console, Progress
from engine.errors import (
    ExpectationsFailed,
    ModelError,
    PipelineError,
    ProjectError,
    is_interrupt,
)
from engine.loader import load_source
from engine.memory import release_unused
from engine.model_api import ModelResult
from engine.project import PREVIOUS_PREFIX, Model, Project, discover, model_configs, select
from engine.run_results import new_run_id, write_run_result
from engine.validation_service import ValidationService

REJECTED_SUFFIX = "_rejected"
RECONCILIATION_SUFFIX = "_reconciliation"


@dataclass
class ModelRun:
    table: str
    layer: str
    kind: str
    status: str  # success | error | skipped | failed_expectations
    rows: int | None = None
    seconds: float = 0.0
    started_at: datetime | None = None
    message: str | None = None


@dataclass
class RunResult:
    run_id: str
    started_at: datetime
    selection: list[str]
    warehouse: str
    config_fingerprint: str
    finished_at: datetime | None = None
    status: str = "running"
    exit_code: int = 0
    message: str | None = None
    published: bool = False
    models: list[ModelRun] = field(default_factory=list)
    expectations: list[quality.ExpectationResult] = field(default_factory=list)
    reconciliation: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        end = self.finished_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()

    def count(self, status: str) -> int:
        return sum(m.status == status for m in self.models)

    @property
    def rows_rejected(self) -> int:
        return sum(
            m.rows or 0
            for m in self.models
            if m.table.endswith(REJECTED_SUFFIX) and m.status == "success"
        )

    def expectation_counts(self) -> tuple[int, int, int]:
        passed = sum(r.success for r in self.expectations)
        failed = sum(r.blocking_failure for r in self.expectations)
        return passed, len(self.expectations) - passed - failed, failed

    def to_json(self) -> dict[str, Any]:
        passed, warned, failed = self.expectation_counts()
        return {
            "run_id": self.run_id,
            "status": self.status,
            "exit_code": self.exit_code,
            "message": self.message,
            "published": self.published,
            "warehouse": self.warehouse,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "seconds": round(self.seconds, 3),
            "selection": self.selection,
            "config_fingerprint": self.config_fingerprint,
            "counts": {
                "models_built": self.count("success"),
                "models_failed": self.count("error") + self.count("failed_expectations"),
                "models_skipped": self.count("skipped"),
                "rows_rejected": self.rows_rejected,
                "expectations_passed": passed,
                "expectations_warned": warned,
                "expectations_failed": failed,
            },
            "reconciliation": self.reconciliation,
            "models": [
                {**asdict(m), "started_at": m.started_at.isoformat() if m.started_at else None}
                for m in self.models
            ],
            "expectations": [asdict(r) for r in self.expectations],
        }


# --- building one model ----------------------------------------------------------------------


def _fetch_arrow(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[str] | None = None
) -> pa.Table:
    layer, name = table.split(".", 1)
    return con.sql(statements.select_columns(layer, name, columns)).to_arrow_table()


def _validation_input(
    con: duckdb.DuckDBPyConnection, table: str, suite: quality.Suite
) -> tuple[pa.Table, pa.Table]:
    """The rows of just the columns a suite's data expectations read, and the table's schema.

    A 10M-row table fetched whole would cost the validation worker gigabytes as pandas objects.
    """
    layer, name = table.split(".", 1)
    schema = con.sql(statements.select_columns(layer, name, None)).limit(0).to_arrow_table()
    wanted = suite.columns
    # Row-count checks need rows of something: the first column when no other is read.
    columns = [c for c in schema.column_names if c in wanted] or schema.column_names[:1]
    return _fetch_arrow(con, table, columns), schema


PREVIOUS_CATALOG = "previous"


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

    def previous_table(
        self, table: str, as_relation: bool = False
    ) -> pd.DataFrame | duckdb.DuckDBPyRelation | None:
        """The table as last published, or None when there is none."""
        if not self.has_previous:
            return None
        layer, name = table.split(".", 1)
        found = self.con.execute(
            "select count(*) from duckdb_tables() "
            "where database_name = ? and schema_name = ? and table_name = ?",
            [PREVIOUS_CATALOG, layer, name],
        ).fetchall()[0][0]
        if not found:
            return None
        source = exp.table_(name, db=layer, catalog=PREVIOUS_CATALOG, quoted=True)
        connection = self.reader if as_relation else self.con
        relation = connection.sql(exp.select("*").from_(source).sql(statements.DIALECT))
        return relation if as_relation else relation.to_arrow_table().to_pandas()


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
    except (PipelineError, duckdb.Error):
        raise
    except Exception as exc:  # a generator model fails while it is being consumed
        raise _model_failure(model, exc) from exc
    if not written:
        raise ModelError(f"{model.path}: model() returned an iterator that yielded nothing")


def _install_functions(
    con: duckdb.DuckDBPyConnection, model: Model, functions: tuple[exp.Create, ...]
) -> None:
    for function in functions:
        if not isinstance(function, exp.Create) or function.kind not in ("MACRO", "FUNCTION"):
            raise ModelError(f"{model.path}: ModelResult.functions must be CREATE MACRO statements")
        try:
            con.execute(function.sql(statements.DIALECT))
        except duckdb.Error as exc:
            raise ModelError(f"{model.path}: installing a SQL function failed: {exc}") from exc


def _load_python_model(model: Model) -> Callable[..., Any]:
    assert model.path is not None
    spec = importlib.util.spec_from_file_location(f"python_models.{model.name}", model.path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered like any imported module, so what it defines can be pickled by name (a forked
    # worker is handed the model's own functions that way).
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.model


def _python_inputs(
    context: BuildContext,
    model: Model,
    function: Callable[..., Any],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError):
        hints = {}
    by_name = context.project.by_name
    arguments: dict[str, Any] = {}
    for parameter in model.parameters:
        if parameter == "config":
            arguments[parameter] = context.model_params[model.name]
        elif parameter == "seed":
            arguments[parameter] = context.config.seed
        elif parameter == "run_id":
            arguments[parameter] = context.run_id
        elif parameter == "progress":  # a long model says how far it is: progress("k = 5")
            arguments[parameter] = progress
        elif parameter == "variables":
            arguments[parameter] = context.config.variables
        elif parameter.startswith(PREVIOUS_PREFIX):
            table = by_name[parameter.removeprefix(PREVIOUS_PREFIX)].table
            relation = duckdb.DuckDBPyRelation in typing.get_args(hints.get(parameter))
            arguments[parameter] = context.previous_table(table, as_relation=relation)
        else:
            table = by_name[parameter].table
            wanted = hints.get(parameter)
            if wanted is duckdb.DuckDBPyRelation:
                arguments[parameter] = context.reader.sql(
                    statements.select_columns(*table.split(".", 1), None)
                )
            elif wanted is pa.Table:
                arguments[parameter] = _fetch_arrow(context.con, table)
            else:
                arguments[parameter] = _fetch_arrow(context.con, table).to_pandas()
    return arguments


def _model_failure(model: Model, exc: BaseException) -> ModelError:
    where = model.path.name if model.path else model.table
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if model.path and f.filename == str(model.path)
    ]
    at = f" (line {frames[-1].lineno})" if frames else ""
    return ModelError(f"{where}{at}: {type(exc).__name__}: {exc}")


def build_model(context: BuildContext, model: Model, progress: Callable[[str], None]) -> None:
    con, config = context.con, context.config
    if model.kind == "seed":
        _write_table(con, model, seeds.SEED_BUILDERS[model.name](config))
    elif model.kind == "source":
        _write_table(con, model, load_source(config, config.sources[model.name], progress).table)
    elif model.kind == "sql":
        assert model.query is not None
        try:
            con.execute(statements.create_table_as(model.layer, model.name, model.query))
        except duckdb.Error as exc:
            raise ModelError(f"{model.path}: {exc}") from exc
    else:
        try:
            function = _load_python_model(model)
            result = function(**_python_inputs(context, model, function, progress))
        except PipelineError:
            raise
        except Exception as exc:  # a model's own bug: report it against the model file
            raise _model_failure(model, exc) from exc
        if isinstance(result, ModelResult):
            _write_table(con, model, result.table)
            _install_functions(con, model, result.functions)
        else:
            _write_table(con, model, result)


def _build_in_thread(
    context: BuildContext, model: Model, step: contextlib.AbstractContextManager[Progress]
) -> int:
    """Build one model on connections of its own (a connection is not shared by threads)."""
    con, reader = context.con.cursor(), context.reader.cursor()
    try:
        with step as progress:
            build_model(
                dataclasses.replace(context, con=con, reader=reader), model, progress.update
            )
        release_unused()
        _describe(con, model)
        return _row_count(con, f"{model.layer}.{model.name}")
    finally:
        reader.close()
        con.close()


def _describe(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """COMMENT ON the table and its described columns, so BI tools show the descriptions."""
    if model.description:
        con.execute(statements.comment_on_table(model.layer, model.name, model.description))
    columns = {
        row[0]
        for row in con.execute(
            "select column_name from duckdb_columns() where schema_name = ? and table_name = ?",
            [model.layer, model.name],
        ).fetchall()
    }
    for column, text in (model.column_descriptions or {}).items():
        if column not in columns:
            raise ModelError(f"{model.path}: describes column '{column}', which it does not write")
        con.execute(statements.comment_on_column(model.layer, model.name, column, text))


def _row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    layer, name = table.split(".", 1)
    return int(con.execute(statements.row_count(layer, name)).fetchall()[0][0])


# --- the whole run ---------------------------------------------------------------------------


@dataclass
class Runner:
    root: Path
    config: Config
    console: Console
    validation: ValidationService
    selectors: list[str] | None = None
    inputs_fingerprint: str | None = None

    def run(self) -> RunResult:
        started = datetime.now(UTC)
        result = RunResult(
            run_id=new_run_id(started),
            started_at=started,
            selection=list(self.selectors or []),
            warehouse=str(self.config.warehouse_path),
            config_fingerprint=self.config.fingerprint(),
        )
        try:
            self._run(result)
            result.status = "success"
        except PipelineError as exc:
            result.status = "error"
            result.exit_code = exc.exit_code
            result.message = str(exc)
        finally:
            result.finished_at = datetime.now(UTC)
            self._write_run_result(result)
        return result

    def _run(self, result: RunResult) -> None:
        project = discover(self.root, self.config)
        suites = quality.load_suites(self.root / "expectations")
        for table, suite in suites.items():
            if table not in project.models:
                raise ProjectError(f"{suite.path}: guards '{table}', which no model builds")
        params = model_configs(project, self.config)
        selected = select(project, self.selectors)
        validating = any(t in suites for t in selected)

        paths = publish.WarehousePaths(self.config.warehouse_path)
        with publish.exclusive_lock(paths):
            for leftover in publish.remove_leftovers(paths):
                self.console.info(f"Removed {leftover.name}, left behind by an interrupted run")
            partial = len(selected) < len(project.order)
            build = publish.start_build(paths, result.run_id, copy_published=partial)
            if not validating:
                self.validation.close()  # nothing selected has a suite: free the other core now
            try:
                ok = self._build_all(
                    build,
                    paths,
                    project,
                    params,
                    selected,
                    suites,
                    result,
                    self.validation if validating else None,
                )
            except BaseException:
                publish.discard_build(build)
                raise
            if not ok:
                publish.discard_build(build)
                self._raise_failure(result)
            publish.publish(build, paths)
            result.published = True

    def _build_all(
        self,
        build: Path,
        paths: publish.WarehousePaths,
        project: Project,
        params: dict[str, dict[str, Any]],
        selected: list[str],
        suites: dict[str, quality.Suite],
        result: RunResult,
        service: ValidationService | None,
    ) -> bool:
        settings = {"memory_limit": self.config.memory_limit} if self.config.memory_limit else {}
        con = duckdb.connect(str(build), config=settings)
        reader = con.cursor()
        has_previous = paths.published.exists()
        interrupted = False
        try:
            meta.ensure_meta_tables(con)
            if has_previous:
                con.execute(f"attach ? as {PREVIOUS_CATALOG} (read_only)", [str(paths.published)])
                if len(selected) == len(project.order):
                    meta.carry_history(con, PREVIOUS_CATALOG)
            if self.config.history_runs:
                # One place fewer: this run's own rows are appended when it is recorded.
                dropped = meta.prune_history(con, self.config.history_runs - 1)
                if dropped:
                    self.console.info(
                        f"Run history: this build leaves out the {dropped} oldest run(s); meta "
                        f"keeps the last {self.config.history_runs} (warehouse.history_runs)"
                    )
            context = BuildContext(
                con, project, self.config, result.run_id, params, has_previous, reader
            )
            for layer in sorted({project.models[t].layer for t in selected}):
                con.execute(statements.create_schema(layer))
            self._check_unselected_inputs(con, project, selected)
            blocked: set[str] = set()
            expectations_params = _expectation_parameters(self.config, params)
            # Tables go to the validation worker as they are built; results are taken in
            # before each model starts, so a model whose input failed is skipped once known.
            runs: dict[str, ModelRun] = {}

            def take(results: list[tuple[str, list[quality.ExpectationResult]]]) -> None:
                for table, outcomes in results:
                    result.expectations.extend(outcomes)
                    self.console.expectation_line(table, outcomes)
                    if any(o.blocking_failure for o in outcomes):
                        runs[table].status = "failed_expectations"
                        blocked.add(table)

            index = {table: i for i, table in enumerate(selected, start=1)}
            waiting = list(selected)  # topological order: the first ready one starts first
            finished: set[str] = set()
            running: dict[Future[int], tuple[str, ModelRun, float]] = {}
            # Two models at once, each in its own thread with its own connections, while the
            # tables are small: a model waiting on its forked workers or on DuckDB leaves the
            # GIL to the other. From the first table of concurrent_max_rows on, one at a time,
            # so two models' memory never adds up.
            concurrent = self.config.concurrent_max_rows > 0

            def start(table: str) -> None:
                model = project.models[table]
                run = ModelRun(table=table, layer=model.layer, kind=model.kind, status="skipped")
                result.models.append(run)
                failed_inputs = [t for t in model.inputs if t in blocked]
                if failed_inputs:
                    blocked.add(table)
                    finished.add(table)
                    run.message = f"skipped: upstream {failed_inputs[0]} did not pass"
                    self.console.model_line(
                        index[table], len(selected), "SKIP", table, "upstream failed", 0.0
                    )
                    return
                run.started_at = datetime.now(UTC)
                step = self.console.step(index[table], len(selected), table)
                future = pool.submit(_build_in_thread, context, model, step)
                running[future] = (table, run, time.perf_counter())

            def complete(future: Future[int], table: str, run: ModelRun, clock: float) -> None:
                finished.add(table)
                run.seconds = time.perf_counter() - clock
                try:
                    run.rows = future.result()
                except ModelError as exc:
                    run.status, run.message = "error", str(exc)
                    blocked.add(table)
                    self.console.model_line(
                        index[table], len(selected), "ERROR", table, "failed", run.seconds
                    )
                    self.console.error(f"           {exc}")
                    return
                run.status = "success"
                self.console.model_line(
                    index[table], len(selected), "OK", table, f"{run.rows} rows", run.seconds
                )
                if table.endswith(RECONCILIATION_SUFFIX):
                    result.reconciliation[table] = _first_row(con, table)
                if table in suites and service is not None:
                    runs[table] = run
                    service.submit(
                        suites[table],
                        *_validation_input(con, table, suites[table]),
                        expectations_params,
                    )
                    if run.rows >= self.config.serial_validation_rows:
                        take(service.wait_all())

            pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="model")
            try:
                # Closed before the model threads end: the workers die with the thread that forked
                # them (engine.forked_workers).
                with forked_workers.shared_by_the_build():
                    while waiting or running:
                        if service is not None:
                            take(service.ready())
                        for table in list(waiting):
                            if len(running) >= (2 if concurrent else 1):
                                break
                            if all(
                                t in finished or t not in index
                                for t in project.models[table].inputs
                            ):
                                waiting.remove(table)
                                start(table)
                        if not running:
                            continue  # every ready model was skipped: look again
                        done, _ = wait(running, return_when=FIRST_COMPLETED)
                        for future in sorted(done, key=lambda f: index[running[f][0]]):
                            table, run, clock = running.pop(future)
                            complete(future, table, run, clock)
                            if (run.rows or 0) >= self.config.concurrent_max_rows:
                                concurrent = False
            except BaseException as exc:
                if is_interrupt(exc):
                    # Do not wait for a model still building; its build file is discarded.
                    pool.shutdown(wait=False, cancel_futures=True)
                    interrupted = True
                else:
                    pool.shutdown(cancel_futures=True)  # let a model still building finish
                raise
            pool.shutdown()
            result.models.sort(key=lambda m: index[m.table])
            if service is not None:
                take(service.wait_all())
            if has_previous:
                con.execute(f"detach {PREVIOUS_CATALOG}")
            if blocked:
                return False
            self._record(con, result)
            con.execute("checkpoint")
            return True
        finally:
            # After Ctrl-C a model thread may still be reading through these, and DuckDB refuses
            # to close a connection in use; the process exits right after, which closes them.
            if not interrupted:
                reader.close()
                con.close()

    def _check_unselected_inputs(
        self, con: duckdb.DuckDBPyConnection, project: Project, selected: list[str]
    ) -> None:
        chosen = set(selected)
        present = {
            f"{schema}.{name}"
            for schema, name in con.execute(
                "select schema_name, table_name from duckdb_tables()"
            ).fetchall()
        }
        for table in selected:
            for parent in project.models[table].inputs:
                if parent not in chosen and parent not in present:
                    raise ProjectError(
                        f"{table} reads {parent}, which is neither selected nor in the published "
                        f"warehouse; select '+{project.models[table].name}' to build it too"
                    )

    def _record(self, con: duckdb.DuckDBPyConnection, result: RunResult) -> None:
        now = datetime.now(UTC)
        passed, warned, failed = result.expectation_counts()
        meta.append(
            con,
            "runs",
            [
                {
                    "run_id": result.run_id,
                    "started_at": result.started_at,
                    "finished_at": now,
                    "status": "success",
                    "selection": " ".join(result.selection) or None,
                    "config_fingerprint": result.config_fingerprint,
                    "inputs_fingerprint": None if result.selection else self.inputs_fingerprint,
                    "models_built": result.count("success"),
                    "models_failed": 0,
                    "models_skipped": result.count("skipped"),
                    "rows_rejected": result.rows_rejected,
                    "expectations_passed": passed,
                    "expectations_warned": warned,
                    "expectations_failed": failed,
                    "seconds": (now - result.started_at).total_seconds(),
                }
            ],
        )
        meta.append(
            con,
            "model_runs",
            [
                {
                    "run_id": result.run_id,
                    "model": m.table,
                    "layer": m.layer,
                    "kind": m.kind,
                    "status": m.status,
                    "rows": m.rows,
                    "seconds": m.seconds,
                    "started_at": m.started_at,
                    "message": m.message,
                }
                for m in result.models
            ],
        )
        meta.append(
            con,
            "expectation_results",
            [{"run_id": result.run_id, **asdict(r)} for r in result.expectations],
        )

    def _raise_failure(self, result: RunResult) -> None:
        errors = [m for m in result.models if m.status == "error"]
        if errors:
            raise ModelError(
                f"{len(errors)} model(s) failed: "
                + "; ".join(f"{m.table}: {(m.message or '').rstrip('.')}" for m in errors)
                + ". Nothing was published."
            )
        failed = [r for r in result.expectations if r.blocking_failure]
        raise ExpectationsFailed(
            f"{len(failed)} blocking expectation(s) failed: "
            + "; ".join(r.describe() for r in failed)
            + ". Nothing was published; the warehouse is unchanged."
        )

    def _write_run_result(self, result: RunResult) -> None:
        directory = self.config.run_results_dir
        try:
            write_run_result(directory, result.run_id, result.to_json())
        except OSError as exc:
            self.console.error(f"could not write the run result to {directory}: {exc}")


def _expectation_parameters(config: Config, params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Config values suites may use: rules, plus every scalar model parameter as model__key."""
    values = config.expectation_parameters()
    for model, settings in params.items():
        for key, value in settings.items():
            if isinstance(value, int | float | str | bool):
                values[f"{model}__{key}"] = value
    return values


def _first_row(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, Any]:
    rows = _fetch_arrow(con, table).to_pylist()
    return rows[0] if rows else {}
