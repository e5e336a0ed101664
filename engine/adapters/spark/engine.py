"""The Spark engine: the same models, checks and publish, with the tables held by Spark.

Each run writes every table it builds as Parquet under ``<warehouse_dir>/runs/<run_id>/<layer>/
<name>``: SQL models run in Spark (engine/adapters/spark/sql.py), raw sources are read by Spark
(engine/adapters/spark/loader.py), and a Python model or seed gets its inputs as DuckDB views
over those files, by the usual contract, its output written as one Parquet file (or, when it
gives a query, run in Spark). GX validates each table: a small one in the GX worker, as the
DuckDB engine's tables are (read from its Parquet files), a big one as a Spark DataFrame.

What is published is still a DuckDB file, now a catalog: a view per table over its Parquet files,
with the descriptions, the scorers as macros and the meta tables. It is built beside the
published one and swapped in by the run loop's atomic rename, so a reader (show, export,
docs, report, a BI tool) sees one run's tables or the next run's, never a mix; a failed or
killed run leaves it as it was. ``meta.table_files`` lists the folders the catalog reads and
those its predecessor read; every other folder is deleted after a publish (and, left by a killed
run, at the next run's start), so a reader that opened the previous catalog keeps working.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from engine.adapters.base import Build, ModelInputs, Progress, Validated, validation_input
from engine.adapters.spark import session
from engine.adapters.spark.expectations import spark_validator
from engine.adapters.spark.loader import load
from engine.adapters.spark.serving import serve
from engine.adapters.spark.settings import SECTION, SparkSettings
from engine.adapters.spark.sql import DIALECT, Catalog, to_spark
from engine.adapters.spark.tables import duckdb_view, parquet_properties, register_parquet
from engine.adapters.validation_worker import ValidationService, remove_dead_spools
from engine.checks.expectations import Suite, Validator
from engine.console import Console
from engine.errors import ModelError, ProjectError, is_interrupt
from engine.project.config import Config
from engine.project.discovery import Model
from engine.warehouse import statements
from engine.warehouse.catalog import BuildCatalog
from engine.warehouse.meta import META_LAYER
from engine.warehouse.publish import WarehousePaths

TABLE_FILES = "table_files"
TABLE_FILES_TABLE = f"{META_LAYER}.{TABLE_FILES}"
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
    return _locations(published_files(warehouse))


def _locations(files: dict[str, list[tuple[str, str]]]) -> set[str]:
    return {location for pairs in files.values() for _, location in pairs}


@dataclass
class SparkEngine:
    """Spark builds each table into its run's folder; the build file holds the catalog."""

    config: Config
    console: Console
    service: ValidationService | None  # GX on pandas, for small tables; None once not needed
    spark: Any = None  # the session, started by begin()
    build: Build | None = None
    published: dict[str, str] = field(default_factory=dict)  # table -> folder, as published
    locations: dict[str, str] = field(default_factory=dict)  # this build's table -> folder
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    validator: Validator | None = None  # GX on Spark DataFrames
    _due: list[Validated] = field(default_factory=list)

    @property
    def settings(self) -> SparkSettings:
        return self.config.engine_settings[SECTION]

    @property
    def concurrent_models(self) -> int:
        return self.settings.concurrent_models

    @property
    def folders(self) -> RunFolders:
        return RunFolders(self.settings.warehouse_dir / "runs")

    @property
    def catalog(self) -> BuildCatalog:
        assert self.build is not None, "begin() first"
        return self.build.catalog

    def remove_leftovers(self, paths: WarehousePaths) -> list[Path]:
        """Table folders no published catalog reads, and the GX worker's spools of killed
        runs."""
        unread = self.folders.remove_unreferenced(_referenced(paths.published))
        return unread + remove_dead_spools(paths.published.parent)

    def begin(self, build: Build) -> None:
        self.build = build
        if self.service is not None and not any(t in build.suites for t in build.selected):
            self._close_service()  # nothing selected has a suite: free the other core now
        self.published = {
            table: location
            for publish_name, table, location in build.catalog.previous_rows(TABLE_FILES_TABLE)
            if publish_name == "current"
        }
        self.locations, self.columns = {}, {}
        settings = self.settings
        if settings.metastore is not None:
            settings.metastore.check_available()
        self.spark = session.start_session(settings.master, settings.catalog_dir, settings.conf)
        self.console.info(
            f"Spark {self.spark.version} on {settings.master}, tables in {self.folders.root}"
        )
        project = build.project
        for layer in sorted({m.layer for m in project.models.values()}):
            _empty_database(self.spark, layer)
        chosen = set(build.selected)
        for table in build.selected:
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
        self._known(table, location)

    def _known(self, table: str, location: str) -> None:
        self.locations[table] = location
        self.columns[table] = tuple(self.spark.table(table).columns)

    # --- the tables ---------------------------------------------------------------------------

    def _location(self, model: Model) -> Path:
        """Where the model's table goes; whatever the catalog had under its name is dropped
        (a partial run starts from a copy of the published catalog)."""
        assert self.build is not None
        self.catalog.drop(model.table)
        return self.folders.table(self.build.run_id, model.table)

    def _made(self, model: Model, location: Path) -> None:
        """The table Spark now holds, as a view in the catalog for readers and Python models."""
        self._known(model.table, str(location))
        self.catalog.con.execute(duckdb_view(model.table, location))

    def load_source(self, model: Model, progress: Progress) -> None:
        location = self._location(model)
        with _spark_failures(model), self._waiting_on_spark():
            load(self.spark, self.config, self.config.sources[model.name], location)
            register_parquet(self.spark, model.table, location)
        self._made(model, location)

    def create_table(self, model: Model, query: exp.Query) -> None:
        location = self._location(model)
        self._run_in_spark(model, query, location)
        self._made(model, location)

    def write_table(self, model: Model, data: Any) -> None:
        """What a Python model or seed returned is written by DuckDB as one Parquet file, which
        becomes the Spark table (the catalog keeps a view over it)."""
        location = self._location(model)
        self.catalog.write(model, data)
        location.mkdir(parents=True)
        self.catalog.con.execute(
            statements.copy_to(model.layer, model.name, location / "part-0.parquet", "parquet")
        )
        self.catalog.con.execute(statements.drop(model.layer, model.name, "TABLE"))
        with self._waiting_on_spark():
            register_parquet(self.spark, model.table, location)
        self._made(model, location)

    def install_functions(self, model: Model, functions: tuple[exp.Create, ...]) -> None:
        """Into both: the catalog (for readers) and Spark (for later models)."""
        self.catalog.install_functions(model, functions)
        for function in functions:
            self.spark.sql(to_spark(function.copy(), {}))

    @contextlib.contextmanager
    def model_inputs(self, model: Model) -> Iterator[ModelInputs]:
        """A model that fits on a sample (FIT_SAMPLE_KEY) reads, of each input over
        ``fit_sample_rows`` rows that has the key, the rows whose key (with the seed) hashes
        below a cut, taken in Spark: the same sample on every run and however the data is
        partitioned."""
        stand_ins = self._fit_samples(model) if model.fit_sample_key else {}
        notes = [
            f"{self.catalog.row_count(s)} of {self.catalog.row_count(t)} rows of {t}"
            for t, s in stand_ins.items()
        ]
        limit = self.settings.fit_sample_rows
        how = f"{model.fit_sample_key} hashed; spark.fit_sample_rows = {limit}"
        note = f"fitted on {'; '.join(notes)} ({how})" if notes else None
        try:
            yield ModelInputs(stand_ins, note)
        finally:
            for stand_in in stand_ins.values():
                self.catalog.con.execute(statements.drop(*stand_in.split(".", 1), "VIEW"))

    def _fit_samples(self, model: Model) -> dict[str, str]:
        """Input -> the view of its sample, for each input large enough to sample."""
        from pyspark.sql import functions as F

        assert self.build is not None
        limit, key = self.settings.fit_sample_rows, model.fit_sample_key
        stand_ins: dict[str, str] = {}
        for table in model.inputs:
            rows = self.catalog.row_count(table)
            if key not in self.columns.get(table, ()) or rows <= limit:
                continue
            buckets = 1 << 30
            cut = F.pmod(F.xxhash64(F.col(key), F.lit(self.config.seed)), F.lit(buckets))
            sample = self.spark.table(table).where(cut < F.lit(buckets * limit // rows))
            stand_in = f"{FIT_SAMPLES}.{model.name}__{table.replace('.', '__')}"
            location = self.folders.table(self.build.run_id, stand_in)
            sample.write.parquet(str(location))
            self.catalog.create_schema(FIT_SAMPLES)
            self.catalog.con.execute(duckdb_view(stand_in, location))
            stand_ins[table] = stand_in
        return stand_ins

    def _run_in_spark(self, model: Model, query: exp.Query, location: Path) -> None:
        create = exp.Create(
            this=statements.table_ref(model.layer, model.name),
            kind="TABLE",
            expression=query.copy(),
            properties=parquet_properties(location),
        )
        statement = to_spark(create, self._input_columns(model))
        with _spark_failures(model), self._waiting_on_spark():
            self.spark.sql(statement)

    def _waiting_on_spark(self) -> contextlib.AbstractContextManager[None]:
        """Another model may take its turn while this one waits for Spark."""
        assert self.build is not None
        return self.build.turn.given_away()

    def _input_columns(self, model: Model) -> Catalog:
        return {t: self.columns[t] for t in model.inputs if t in self.columns}

    # --- checks -------------------------------------------------------------------------------

    def validate(self, table: str, suite: Suite, parameters: dict[str, Any], rows: int) -> None:
        """A table of at most ``spark.local_validation_rows`` rows goes to the GX worker, read
        from its Parquet files by DuckDB (GX on a Spark DataFrame runs a Spark job per
        expectation, a second or more each), and is waited for if it has at least
        ``warehouse.serial_validation_rows``; a bigger one is validated here, now, as a Spark
        DataFrame."""
        if rows <= self.settings.local_validation_rows:
            assert self.service is not None, "a suite to validate, so the worker was kept"
            self.service.submit(suite, *validation_input(self.catalog, table, suite), parameters)
            if rows >= self.config.serial_validation_rows:
                # Validated before the next model, so the worker's and Spark's peaks never add.
                self._due.extend(self.service.wait_all())
            return
        if self.validator is None:
            self.validator = spark_validator()
        outcomes = self.validator.validate(suite, self.spark.table(table), parameters)
        self._due.append((table, outcomes))

    def validated(self, wait: bool) -> list[Validated]:
        arrived, self._due = self._due, []
        if self.service is not None:
            arrived += self.service.wait_all() if wait else self.service.ready()
        return arrived

    # --- the end of a build -------------------------------------------------------------------

    def finish(self, build: Build) -> None:
        self.catalog.con.execute(statements.drop_schema(FIT_SAMPLES))
        shutil.rmtree(self.folders.root / build.run_id / FIT_SAMPLES, ignore_errors=True)
        # A partial run keeps the tables it did not rebuild where they are.
        current = {**self.published, **self.locations} if build.partial else self.locations
        _write_table_files(
            self.catalog,
            [("current", t, loc) for t, loc in sorted(current.items())]
            + [("previous", t, loc) for t, loc in sorted(self.published.items())],
        )

    def discard(self, run_id: str) -> None:
        shutil.rmtree(self.folders.root / run_id, ignore_errors=True)

    def after_publish(self, paths: WarehousePaths) -> list[str]:
        """Serve the new tables from the metastore, if there is one, then delete the folders
        neither the published catalog nor the one before it reads."""
        settings, files = self.settings, published_files(paths.published)
        said = []
        if settings.metastore is not None:
            said.append(serve(settings.metastore, settings.catalog_dir, paths.published, files))
        removed = self.folders.remove_unreferenced(_locations(files))
        if removed:
            said.append(f"Removed {len(removed)} table folder(s) of older Spark runs")
        return said

    def cancel(self) -> None:
        """Cancel the Spark jobs still running: pyspark does on Ctrl-C, not on SIGTERM, and
        not for a Spark Connect session."""
        if self.spark is None:
            return
        if self.settings.master.startswith(session.CONNECT):
            self.spark.interruptAll()
        else:
            self.spark.sparkContext.cancelAllJobs()

    def stop(self) -> None:
        """The GX worker is stopped; the session stays for the process (starting one costs
        seconds)."""
        self._close_service()

    def _close_service(self) -> None:
        if self.service is not None:
            self.service.close()
            self.service = None


@contextlib.contextmanager
def _spark_failures(model: Model) -> Iterator[None]:
    """A failure in Spark as the model's error, in a few lines; a JVM that ran out of memory
    (Spark then stops it) as what to change."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JError, ConnectionError) as exc:
        text = _text_of(exc)
        # A job cancelled by Ctrl-C or by cancel(): the run was stopped, the model did not fail.
        if is_interrupt(exc) or "[SPARK_JOB_CANCELLED]" in text:
            raise KeyboardInterrupt from exc
        if isinstance(exc, ConnectionError) or "OutOfMemoryError" in text:
            raise ModelError(
                f"{model.path}: Spark ran out of memory and stopped ({_first_lines(exc, 1)}); "
                "give it more: spark.driver.memory in [spark.conf] on local[N], "
                "spark.executor.memory on a cluster"
            ) from exc
        raise ModelError(f"{model.path}: {_first_lines(exc)}") from exc


def _text_of(exc: BaseException) -> str:
    """The error's text, and its cause's: py4j fails to describe an error once the JVM is gone."""
    texts = []
    for error in (exc, exc.__context__):
        if error is None:
            continue
        try:
            texts.append(str(error))
        except Exception:  # py4j asks the JVM that just died
            texts.append(type(error).__name__)
    return "\n".join(texts)


def _empty_database(spark: Any, layer: str) -> None:
    """The layer's database with no table: dropping a table over files keeps the files.
    Dropped with its tables and made again, since listing them costs a quarter second even
    when there are none."""
    spark.sql(statements.schema_dropping(layer, cascade=True).sql(DIALECT))
    spark.sql(statements.schema_creation(layer).sql(DIALECT))


def _write_table_files(catalog: BuildCatalog, rows: list[tuple[str, str, str]]) -> None:
    names = ("publish", "table_name", "location")
    table = pa.table({n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)})
    catalog.con.register("__table_files", table)
    try:
        catalog.con.execute(statements.create_table_from(META_LAYER, TABLE_FILES, "__table_files"))
    finally:
        catalog.con.unregister("__table_files")
    catalog.con.execute(statements.comment_on_table(META_LAYER, TABLE_FILES, TABLE_FILES_COMMENT))


def _first_lines(exc: BaseException, count: int = 3) -> str:
    """Spark's message without the JVM stack trace it may carry."""
    lines = [line for line in _text_of(exc).splitlines() if line.strip()]
    kept = [line for line in lines if not line.lstrip().startswith(("at ", "JVM stacktrace"))]
    return "\n".join(kept[:count])
