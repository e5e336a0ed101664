"""What the command line does, as functions that tests and notebooks can call too.

Each takes the project folder and its config file and returns what it made; none prints
anything but a run's progress through the ``Console`` it is given. Heavy libraries are imported
only by the functions that need them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine.console import Console
from engine.errors import InputError, PipelineError, UsageError
from engine.project.config import Config, load_config, with_engine
from engine.refresh.interrupts import held_back

if TYPE_CHECKING:
    import pandas as pd

    from engine.project.discovery import Model
    from engine.refresh.noop import NoopRun
    from engine.warehouse.recording import RunResult

REPORT_NAME = "report.html"


@dataclass(frozen=True)
class Refresh:
    """What ``run`` did: a build (``result``) or a no-op (``noop``), with its config."""

    config: Config
    result: RunResult | None = None
    noop: NoopRun | None = None


def run(
    root: Path,
    config_path: Path,
    console: Console,
    selectors: list[str] | None = None,
    engine: str | None = None,
    full_refresh: bool = False,
    reset_history: bool = False,
) -> Refresh:
    """Build, validate and publish the warehouse, or record a no-op when nothing changed."""
    from engine.refresh.noop import inputs_fingerprint, try_noop
    from engine.warehouse.folders import require_writable
    from engine.warehouse.run_results import record_failed_start

    started = datetime.now(UTC)
    try:
        config = load_config(config_path)
        if engine:
            config = with_engine(config, engine)
        fingerprint = inputs_fingerprint(root, config)
        require_writable(
            config.warehouse_path.parent,
            "warehouse.path",
            "a refresh builds the new warehouse beside the published one",
        )
        require_writable(
            config.run_results_dir,
            "warehouse.run_results_dir",
            "every run records its result there",
        )
    except PipelineError as exc:
        # Every run that starts leaves its result, so latest.json never says an older run.
        problem = record_failed_start(Path(config_path), started, exc.exit_code, str(exc))
        if problem:
            console.error(problem)
        raise
    if not selectors and not full_refresh and not reset_history:
        noop = try_noop(root, config, fingerprint)
        if noop is not None:
            return Refresh(config, noop=noop)

    from engine import adapters

    started_engine = adapters.adapter(config.engine).start(config, console)
    try:
        with held_back():
            from engine.refresh.runner import Runner

        runner = Runner(
            root, config, console, started_engine, selectors, fingerprint, reset_history
        )
        return Refresh(config, result=runner.run())
    finally:
        started_engine.stop()


def published_config(config_path: Path) -> Config:
    """The config of a warehouse that must already exist (for commands that read it)."""
    config = load_config(config_path)
    if not config.warehouse_path.exists():
        raise InputError(
            f"no warehouse at {config.warehouse_path} yet: run 'python pipeline.py run' first"
        )
    return config


def write_report(config: Config, output: Path | None = None) -> Path:
    """The HTML report of the published warehouse (default: beside it)."""
    with held_back():
        from reporting.report import write_report as write

    destination = output or config.warehouse_path.with_name(REPORT_NAME)
    return write(config.warehouse_path, destination, config.fit_workers)


def list_models(root: Path, config_path: Path, selectors: list[str] | None = None) -> list[Model]:
    """The selected models (all by default) in build order."""
    from engine.project.discovery import discover, select

    project = discover(root, load_config(config_path))
    return [project.models[t] for t in select(project, selectors)]


def compile_model(root: Path, config_path: Path, name: str) -> str:
    """A SQL model as it runs, its column-set macros written out."""
    from engine.warehouse.statements import DIALECT

    models = list_models(root, config_path, [name])
    if len(models) != 1:
        raise UsageError(f"compile '{name}': name one model, e.g. stg_customers_checked")
    if models[0].query is None:
        raise UsageError(f"'{name}' is a {models[0].kind} model: only SQL models compile")
    return models[0].query.sql(DIALECT, pretty=True)


def show(config_path: Path, table: str, limit: int) -> pd.DataFrame:
    """Up to ``limit`` rows of a published table (``layer.table``)."""
    with held_back():
        import duckdb
        import pandas  # noqa: F401  (pyarrow's to_pandas would load it, with Ctrl-C live)

        from engine.warehouse import statements
        from engine.warehouse.published import connect_read_only

    config = published_config(config_path)
    layer, _, name = table.partition(".")
    if not name:
        raise UsageError(f"'{table}': name a table as layer.table, e.g. marts.eda_profile")
    with connect_read_only(config.warehouse_path) as con:
        query = statements.select_columns(layer, name, None, limit=limit)
        try:
            return con.sql(query).to_arrow_table().to_pandas()
        except duckdb.CatalogException as exc:
            raise UsageError(f"'{table}': {exc}") from exc


def write_docs(root: Path, config_path: Path, output: Path | None = None) -> Path:
    """Lineage docs and a manifest of every model; the page written."""
    with held_back():
        from engine.checks.expectations import load_suites
        from engine.project.column_sets import column_sets
        from engine.project.discovery import discover
        from engine.warehouse.docs import write_docs as write

    config = load_config(config_path)
    suites = load_suites(root / "expectations", column_sets(config))
    directory = output or config.warehouse_path.with_name("docs")
    return write(discover(root, config), suites, config.warehouse_path, root, directory)


def export(config_path: Path, file_format: str, output: Path | None = None) -> list[Path]:
    """The marts as files (``parquet`` or ``csv``), written atomically; the files."""
    with held_back():
        from engine.warehouse.exports import export_layer

    config = published_config(config_path)
    directory = output or config.warehouse_path.with_name("exports") / file_format
    return export_layer(config.warehouse_path, "marts", file_format, directory)


def export_audiences(config_path: Path, output: Path | None = None) -> list[Path]:
    """One CSV of target customers per audience and a manifest, written atomically."""
    with held_back():
        from engine.warehouse.exports import export_audiences as write

    config = published_config(config_path)
    directory = output or config.warehouse_path.with_name("exports") / "audiences"
    return write(config.warehouse_path, directory)
