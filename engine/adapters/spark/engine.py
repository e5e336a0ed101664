"""The Spark engine: the same models, checks and publish, with the tables held by Spark.

Each run writes every table it builds as Parquet under ``<warehouse_dir>/runs/<run_id>/<layer>/
<name>``: SQL models run in Spark (engine/adapters/spark/sql.py), raw sources are read by Spark
(engine/adapters/spark/loader.py), and a Python model or seed gets its inputs as DuckDB views
over those files, by the usual contract, its output written as one Parquet file (or, when it
gives a query,
run in Spark). GX validates each table as a Spark DataFrame.

What is published is still a DuckDB file, now a catalog: a view per table over its Parquet files,
with the descriptions, the scorers as macros and the meta tables. It is built beside the
published one and swapped in by the DuckDB engine's atomic rename, so a reader (show, export,
docs, report, a BI tool) sees one run's tables or the next run's, never a mix; a failed or
killed run leaves it as it was. ``meta.table_files`` lists the folders the catalog reads and
those its predecessor read; every other folder is deleted after a publish (and, left by a killed
run, at the next run's start), so a reader that opened the previous catalog keeps working.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from engine.adapters.spark import session as spark_session
from engine.adapters.spark.loader import source_frame
from engine.adapters.spark.sql import Catalog, to_spark
from engine.adapters.spark.tables import duckdb_view, parquet_properties, register_parquet
from engine.checks import expectations as quality
from engine.errors import ModelError, ProjectError, is_interrupt
from engine.project.discovery import Model
from engine.refresh.building import (
    build_model,
    install_functions,
    parameter_errors_as_config,
    python_result,
    row_count,
    write_python_result,
)
from engine.refresh.runner import Runner, _Build
from engine.warehouse import publish, statements
from engine.warehouse.meta import META_LAYER
from engine.warehouse.recording import RunResult

TABLE_FILES = "table_files"
FIT_SAMPLES = "fit_samples"  # a schema of the build only, never published
TABLE_FILES_COMMENT = (
    "Spark engine: the Parquet folder each published view reads ('current'), and the folders "
    "the previously published catalog read ('previous'), kept for readers that still have it"
)


@dataclass(frozen=True)
class RunFolders:
    """``<warehouse_dir>/runs/<run_id>/<layer>/<name>``: one folder of Parquet files a table."""

    root: Path

    def table(self, run_id: str, table: str) -> Path:
        layer, name = table.split(".", 1)
        return self.root / run_id / layer / name

    def remove_unreferenced(self, referenced: set[str]) -> list[Path]:
        """Delete every table folder no published catalog reads: a run's whole folder when
        none of its tables is read. What was removed (run folders, or table folders)."""
        removed = []
        for run in sorted(p for p in self.root.glob("*") if p.is_dir()):
            tables = [p for p in run.glob("*/*") if p.is_dir()]
            unread = [p for p in tables if str(p) not in referenced]
            if len(unread) == len(tables):
                shutil.rmtree(run)
                removed.append(run)
                continue
            for folder in unread:
                shutil.rmtree(folder)
                removed.append(folder)
            for layer in run.glob("*"):
                if layer.is_dir() and not any(layer.iterdir()):
                    layer.rmdir()
        return removed


def published_files(warehouse: Path) -> dict[str, list[tuple[str, str]]]:
    """The published catalog's ``meta.table_files``: (table, folder) pairs by publish."""
    if not warehouse.exists():
        return {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        present = con.execute(
            f"select count(*) from {statements.RELATIONS} where schema_name = ? and name = ?",
            [META_LAYER, TABLE_FILES],
        ).fetchall()[0][0]
        if not present:
            return {}
        rows = con.execute(
            exp.select("publish", "table_name", "location")
            .from_(statements.table_ref(META_LAYER, TABLE_FILES))
            .sql(statements.DIALECT)
        ).fetchall()
    files: dict[str, list[tuple[str, str]]] = {}
    for publish_name, table, location in rows:
        files.setdefault(publish_name, []).append((table, location))
    return files


def _referenced(warehouse: Path) -> set[str]:
    return {location for pairs in published_files(warehouse).values() for _, location in pairs}


@dataclass
class SparkRunner(Runner):
    """The Runner with Spark building the tables (``warehouse.engine = "spark"``)."""

    @property
    def folders(self) -> RunFolders:
        return RunFolders(self.config.spark.warehouse_dir / "runs")

    def _remove_leftovers(self, paths: publish.WarehousePaths) -> list[Path]:
        return publish.remove_leftovers(paths) + self.folders.remove_unreferenced(
            _referenced(paths.published)
        )

    def _discard(self, build: Path, result: RunResult) -> None:
        publish.discard_build(build)
        shutil.rmtree(self.folders.root / result.run_id, ignore_errors=True)

    def _after_publish(self, paths: publish.WarehousePaths) -> None:
        removed = self.folders.remove_unreferenced(_referenced(paths.published))
        if removed:
            self.console.info(f"Removed {len(removed)} table folder(s) of older Spark runs")

    def _build_type(self) -> type[_Build]:
        return _SparkBuild


@dataclass
class _SparkBuild(_Build):
    """A build whose tables Spark writes; the DuckDB connection holds the catalog."""

    spark: Any = None  # the session, started by prepare()
    published: dict[str, str] = field(default_factory=dict)  # table -> folder, as published
    locations: dict[str, str] = field(default_factory=dict)  # this build's table -> folder
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    validator: quality.Validator | None = None

    @property
    def folders(self) -> RunFolders:
        assert isinstance(self.runner, SparkRunner)
        return self.runner.folders

    def prepare(self) -> None:
        # Read before super() attaches the published file to the build connection.
        self.published = dict(published_files(self.config.warehouse_path).get("current", []))
        super().prepare()
        settings = self.config.spark
        self.spark = spark_session.start_session(
            settings.master, settings.warehouse_dir / "catalog", settings.conf
        )
        self.console.info(
            f"Spark {self.spark.version} on {self.spark.sparkContext.master}, "
            f"tables in {self.folders.root}"
        )
        project = self.plan.project
        for layer in sorted({m.layer for m in project.models.values()}):
            _empty_database(self.spark, layer)
        chosen = set(self.plan.selected)
        for table in self.plan.selected:
            for parent in project.models[table].inputs:
                if parent not in chosen and parent not in self.locations:
                    self._register_published(parent)

    def _register_published(self, table: str) -> None:
        """An input this partial run does not build: its published files, as a Spark table."""
        location = self.published.get(table)
        if location is None:
            raise ProjectError(
                f"{table} was not published by the Spark engine; run the whole project once "
                "with warehouse.engine = 'spark' before selecting models"
            )
        register_parquet(self.spark, table, location)
        self._catalog(table, location)

    def _catalog(self, table: str, location: str) -> None:
        self.locations[table] = location
        self.columns[table] = tuple(self.spark.table(table).columns)

    def _make(self, model: Model, progress: Callable[[str], None]) -> None:
        location = self.folders.table(self.result.run_id, model.table)
        _drop_relation(self.con, model)
        if model.kind == "sql":
            assert model.query is not None
            self._run_in_spark(model, model.query, location)
        elif model.kind == "source":
            frame = source_frame(self.spark, self.config, self.config.sources[model.name])
            frame.write.parquet(str(location))
            register_parquet(self.spark, model.table, location)
        elif model.kind == "seed":
            build_model(self.context, model, progress)
            self._hand_to_spark(model, location)
        else:
            with parameter_errors_as_config(self.config):
                self._make_python(model, progress, location)
        self._catalog(model.table, str(location))
        self.con.execute(duckdb_view(model.table, location))

    def _make_python(self, model: Model, progress: Callable[[str], None], location: Path) -> None:
        """A model that gives a query has it run in Spark; a table it returns is handed over.
        Its scorers go to both: the catalog (for readers) and Spark (for later models)."""
        stand_ins = self._fit_samples(model) if model.fit_sample_key else {}
        try:
            result = python_result(replace(self.context, stand_ins=stand_ins), model, progress)
            if result.query is not None:
                self._run_in_spark(model, result.query, location)
                install_functions(self.con, model, result.functions)
            else:
                write_python_result(self.con, model, result)
                self._hand_to_spark(model, location)
        finally:
            for stand_in in stand_ins.values():
                self.con.execute(statements.drop(*stand_in.split(".", 1), "VIEW"))
        for function in result.functions:
            self.spark.sql(to_spark(function.copy(), {}))

    def _fit_samples(self, model: Model) -> dict[str, str]:
        """Each input over ``fit_sample_rows`` rows that has the model's key, sampled in Spark:
        the rows whose key (with the seed) hashes below a cut, so the sample is the same on
        every run and however the data is partitioned. Input -> the view of its sample."""
        from pyspark.sql import functions as F

        limit, key = self.config.spark.fit_sample_rows, model.fit_sample_key
        stand_ins: dict[str, str] = {}
        notes = []
        for table in model.inputs:
            rows = row_count(self.con, table)
            if key not in self.columns.get(table, ()) or rows <= limit:
                continue
            buckets = 1 << 30
            cut = F.pmod(F.xxhash64(F.col(key), F.lit(self.config.seed)), F.lit(buckets))
            sample = self.spark.table(table).where(cut < F.lit(buckets * limit // rows))
            stand_in = f"{FIT_SAMPLES}.{model.name}__{table.replace('.', '__')}"
            location = self.folders.table(self.result.run_id, stand_in)
            sample.write.parquet(str(location))
            self.con.execute(statements.create_schema(FIT_SAMPLES))
            self.con.execute(duckdb_view(stand_in, location))
            stand_ins[table] = stand_in
            notes.append(f"{row_count(self.con, stand_in)} of {rows} rows of {table}")
        if notes:
            how = f"{key} hashed; spark.fit_sample_rows = {limit}"
            self.runs[model.table].message = f"fitted on {'; '.join(notes)} ({how})"
        return stand_ins

    def _run_in_spark(self, model: Model, query: exp.Query, location: Path) -> None:
        from pyspark.errors import PySparkException

        create = exp.Create(
            this=statements.table_ref(model.layer, model.name),
            kind="TABLE",
            expression=query.copy(),
            properties=parquet_properties(location),
        )
        try:
            self.spark.sql(to_spark(create, self._input_columns(model)))
        except PySparkException as exc:
            if is_interrupt(exc):
                raise KeyboardInterrupt from exc
            raise ModelError(f"{model.path}: {_first_lines(exc)}") from exc

    def _input_columns(self, model: Model) -> Catalog:
        return {t: self.columns[t] for t in model.inputs if t in self.columns}

    def _hand_to_spark(self, model: Model, location: Path) -> None:
        """The DuckDB table a Python model or seed wrote, as the Parquet file of its Spark table
        (the catalog keeps a view over it)."""
        location.mkdir(parents=True)
        self.con.execute(
            statements.copy_to(model.layer, model.name, location / "part-0.parquet", "parquet")
        )
        self.con.execute(statements.drop(model.layer, model.name, "TABLE"))
        register_parquet(self.spark, model.table, location)

    def _validate(self, table: str, rows: int) -> None:
        suite = self.plan.suites.get(table)
        if suite is None:
            return
        if self.validator is None:
            self.validator = quality.Validator(spark=True)
        outcomes = self.validator.validate(
            suite, self.spark.table(table), self.expectation_parameters
        )
        self._take([(table, outcomes)])

    def finish(self) -> None:
        super().finish()
        self.con.execute(statements.drop_schema(FIT_SAMPLES))
        shutil.rmtree(self.folders.root / self.result.run_id / FIT_SAMPLES, ignore_errors=True)
        # A partial run keeps the tables it did not rebuild where they are.
        current = {**self.published, **self.locations} if self.plan.partial else self.locations
        _write_table_files(
            self.con,
            [("current", t, loc) for t, loc in sorted(current.items())]
            + [("previous", t, loc) for t, loc in sorted(self.published.items())],
        )


def _empty_database(spark: Any, layer: str) -> None:
    """The layer's database with no table: dropping a table over files keeps the files."""
    spark.sql(statements.create_schema(layer, dialect="spark"))
    for table in spark.catalog.listTables(layer):
        if table.isTemporary:
            continue
        spark.sql(statements.drop(layer, table.name, "TABLE", dialect="spark"))


def _drop_relation(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """What the catalog has under the model's name (a partial run starts from a copy)."""
    for (kind,) in con.execute(
        f"select kind from {statements.RELATIONS} where database_name = current_database() "
        "and schema_name = ? and name = ?",
        [model.layer, model.name],
    ).fetchall():
        con.execute(statements.drop(model.layer, model.name, kind))


def _write_table_files(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str, str]]) -> None:
    names = ("publish", "table_name", "location")
    table = pa.table({n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)})
    con.register("__table_files", table)
    try:
        con.execute(statements.create_table_from(META_LAYER, TABLE_FILES, "__table_files"))
    finally:
        con.unregister("__table_files")
    con.execute(statements.comment_on_table(META_LAYER, TABLE_FILES, TABLE_FILES_COMMENT))


def _first_lines(exc: Exception, count: int = 3) -> str:
    """Spark's message without the JVM stack trace it may carry."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    kept = [line for line in lines if not line.lstrip().startswith(("at ", "JVM stacktrace"))]
    return "\n".join(kept[:count])
