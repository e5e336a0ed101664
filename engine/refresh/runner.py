"""Build the selected models into a fresh DuckDB file, validate each, and publish if all pass.

The run reads top to bottom: discover the project and check the config (``Runner._run``), take
the lock and start a build file, build every selected model in DAG order (``_Build``), and, when
every blocking expectation passed, record the run and swap the build in atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from engine.adapters.duckdb.validation_worker import ValidationService
from engine.checks import expectations as quality
from engine.checks.reconciliation import nothing_staged, reconciled_source
from engine.console import Console
from engine.errors import ExpectationsFailed, ModelError, PipelineError, ProjectError, is_interrupt
from engine.project.columns import column_sets
from engine.project.config import Config, unmatched_warnings
from engine.project.discovery import (
    RECONCILIATION_ROLE,
    SOURCE_LAYER,
    Model,
    Project,
    discover,
    model_configs,
    select,
)
from engine.refresh.building import (
    PREVIOUS_CATALOG,
    BuildContext,
    build_model,
    describe,
    fetch_arrow,
    row_count,
)
from engine.refresh.fit_workers import FitWorkers
from engine.refresh.memory import release_unused
from engine.refresh.scheduler import apply_to_dag
from engine.warehouse import meta, publish, statements
from engine.warehouse.recording import ModelRun, RunResult, record_in_meta, write_json
from engine.warehouse.run_results import new_run_id


class UpstreamFailed(Exception):
    """A model's input failed its blocking expectations: the model is skipped."""


@dataclass(frozen=True)
class Plan:
    """What a run builds, decided before anything is built."""

    project: Project
    selected: list[str]
    suites: dict[str, quality.Suite]
    params: dict[str, dict[str, Any]]

    @property
    def partial(self) -> bool:
        return len(self.selected) < len(self.project.order)


@dataclass
class Runner:
    root: Path
    config: Config
    console: Console
    validation: ValidationService | None
    selectors: list[str] | None = None
    inputs_fingerprint: str | None = None
    reset_history: bool = False

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
            result.status, result.exit_code, result.message = "error", exc.exit_code, str(exc)
        finally:
            result.finished_at = datetime.now(UTC)
            problem = write_json(self.config.run_results_dir, result)
            if problem:
                self.console.error(problem)
        return result

    def _warn_unmatched(self, result: RunResult) -> None:
        result.unmatched_files, warnings = unmatched_warnings(self.config)
        for warning in warnings:
            self.console.error(warning)

    def _plan(self) -> Plan:
        project = discover(self.root, self.config)
        absent = frozenset(n for n, s in self.config.sources.items() if s.implicit)
        suites = quality.load_suites(self.root / "expectations", column_sets(self.config), absent)
        for table, suite in suites.items():
            if table not in project.models:
                raise ProjectError(f"{suite.path}: guards '{table}', which no model builds")
        # Every model's parameters are checked here, before any model is built.
        params = model_configs(project, self.config)
        return Plan(project, select(project, self.selectors), suites, params)

    def _run(self, result: RunResult) -> None:
        self._warn_unmatched(result)
        plan = self._plan()
        validating = any(t in plan.suites for t in plan.selected)
        paths = publish.WarehousePaths(self.config.warehouse_path)
        with publish.exclusive_lock(paths):
            for leftover in self._remove_leftovers(paths):
                self.console.info(f"Removed {leftover.name}, left behind by an interrupted run")
            build = publish.start_build(paths, result.run_id, copy_published=plan.partial)
            if not validating and self.validation is not None:
                self.validation.close()  # nothing selected has a suite: free the other core now
            service = self.validation if validating else None
            try:
                ok = self._build(build, paths, plan, result, service)
            except BaseException:
                self._discard(build, result)
                raise
            if not ok:
                self._discard(build, result)
                _raise_failure(result)
            publish.publish(build, paths)
            result.published = True
            self._after_publish(paths)

    # What another engine does differently around a build: the DuckDB engine's build is one file.

    def _remove_leftovers(self, paths: publish.WarehousePaths) -> list[Path]:
        return publish.remove_leftovers(paths)

    def _discard(self, build: Path, result: RunResult) -> None:
        publish.discard_build(build)

    def _after_publish(self, paths: publish.WarehousePaths) -> None:
        """Called with the lock still held, once the build is the published warehouse."""

    def _build_type(self) -> type[_Build]:
        return _Build

    def _build(
        self,
        path: Path,
        paths: publish.WarehousePaths,
        plan: Plan,
        result: RunResult,
        service: ValidationService | None,
    ) -> bool:
        """Build every selected model into ``path``; True if all of them passed."""
        settings = {"memory_limit": self.config.memory_limit} if self.config.memory_limit else {}
        con = duckdb.connect(str(path), config=settings)
        workers = FitWorkers(self.config.fit_workers)
        interrupted = False
        try:
            build = self._build_type()(
                self, plan, result, service, con, workers, paths.published.exists()
            )
            build.prepare()
            apply_to_dag(
                {t: plan.project.models[t].inputs for t in plan.selected},
                build.build_one,
                failures=(ModelError, UpstreamFailed),
                on_skip=build.skip,
            )
            build.finish()
            if build.blocked:
                return False
            record_in_meta(con, result, self.inputs_fingerprint)
            con.execute("checkpoint")
            return True
        except BaseException as exc:
            interrupted = is_interrupt(exc)
            raise
        finally:
            workers.close(wait=not interrupted)
            con.close()


@dataclass
class _Build:
    """One build: the models built so far, what failed, and the validations on their way."""

    runner: Runner
    plan: Plan
    result: RunResult
    service: ValidationService | None
    con: duckdb.DuckDBPyConnection
    workers: FitWorkers
    has_previous: bool
    blocked: set[str] = field(default_factory=set)  # failed, skipped, or failed expectations
    runs: dict[str, ModelRun] = field(default_factory=dict)
    context: BuildContext = field(init=False)
    expectation_parameters: dict[str, Any] = field(init=False)

    @property
    def console(self) -> Console:
        return self.runner.console

    @property
    def config(self) -> Config:
        return self.runner.config

    def prepare(self) -> None:
        """Meta tables with the history carried forward, schemas, and a check of the inputs."""
        con, published = self.con, self.config.warehouse_path
        meta.ensure_meta_tables(con)
        if self.has_previous:
            con.execute(f"attach ? as {PREVIOUS_CATALOG} (read_only)", [str(published)])
            if not self.plan.partial:
                meta.carry_history(con, PREVIOUS_CATALOG)
        if self.config.history_runs:
            # One place fewer: this run's own rows are appended when it is recorded.
            dropped = meta.prune_history(con, self.config.history_runs - 1)
            if dropped:
                self.console.info(
                    f"Run history: this build leaves out the {dropped} oldest run(s); meta "
                    f"keeps the last {self.config.history_runs} (warehouse.history_runs)"
                )
        for layer in sorted({self.plan.project.models[t].layer for t in self.plan.selected}):
            con.execute(statements.create_schema(layer))
        _check_unselected_inputs(con, self.plan)
        self.context = BuildContext(
            con,
            self.plan.project,
            self.config,
            self.result.run_id,
            self.plan.params,
            self.has_previous,
            con.cursor(),
            self.workers.map,
            self.runner.reset_history,
        )
        self.expectation_parameters = _expectation_parameters(self.config, self.plan.params)

    def _position(self, table: str) -> tuple[int, int]:
        return self.plan.selected.index(table) + 1, len(self.plan.selected)

    def _new_run(self, table: str) -> ModelRun:
        model = self.plan.project.models[table]
        run = ModelRun(table, model.layer, model.kind, "skipped", role=model.role)
        self.result.models.append(run)
        self.runs[table] = run
        return run

    def skip(self, table: str, failed: str) -> None:
        """Called for a model whose input failed: it is recorded as skipped, never built."""
        self.blocked.add(table)
        run = self._new_run(table)
        run.message = f"skipped: upstream {failed} did not pass"
        self.console.model_line(*self._position(table), "SKIP", table, "upstream failed", 0.0)

    def build_one(self, table: str) -> None:
        """Build, describe, count and send one model to validation, or say why it was not."""
        self._take(self.service.ready() if self.service else [])
        model = self.plan.project.models[table]
        # Upstream, not only the inputs: a failed expectation can arrive from the validation
        # worker after its table's dependants were built; what depends on those waits no more.
        upstream = self.plan.project.upstream(table)
        failed_inputs = [t for t in self.plan.project.order if t in upstream and t in self.blocked]
        if failed_inputs:
            self.skip(table, failed_inputs[0])
            raise UpstreamFailed(table)
        run = self._new_run(table)
        run.started_at, clock = datetime.now(UTC), time.perf_counter()
        try:
            with self.console.step(*self._position(table), table) as progress:
                self._make(model, progress.update)
            release_unused()
            describe(self.con, model)
        except ModelError as exc:
            run.seconds, run.status, run.message = time.perf_counter() - clock, "error", str(exc)
            self.blocked.add(table)
            self.console.model_line(*self._position(table), "ERROR", table, "failed", run.seconds)
            self.console.error(f"           {exc}")
            raise
        run.rows, run.status = row_count(self.con, table), "success"
        run.seconds = time.perf_counter() - clock
        if model.role == RECONCILIATION_ROLE:
            self._reconcile(model, run)
        self.console.model_line(
            *self._position(table), "OK", table, f"{run.rows} rows", run.seconds
        )
        self._validate(table, run.rows)

    def _make(self, model: Model, progress: Callable[[str], None]) -> None:
        build_model(self.context, model, progress)

    def _reconcile(self, model: Model, run: ModelRun) -> None:
        """Record the reconciliation; stop what reads the staged tables if none was staged."""
        source = reconciled_source(self.plan.project, model)
        if source is not None and self.config.sources[source].implicit:
            return  # a source the config does not have: empty by design, nothing to record
        rows = fetch_arrow(self.con, model.table).to_pylist()
        self.result.reconciliation[model.table] = rows[0] if rows else {}
        problem = nothing_staged(
            self.con, self.plan.project, model, self.result.reconciliation[model.table], self.config
        )
        if problem is None:
            return
        run.status, run.message = "error", problem
        models = self.plan.project.models
        self.blocked.update(
            t for t in (model.table, *model.inputs) if models[t].layer != SOURCE_LAYER
        )
        self.console.model_line(
            *self._position(model.table), "ERROR", model.table, "failed", run.seconds
        )
        self.console.error(f"           {problem}")
        raise ModelError(run.message)

    def _validate(self, table: str, rows: int) -> None:
        suite = self.plan.suites.get(table)
        if suite is None or self.service is None:
            return
        self.service.submit(
            suite, *_validation_input(self.con, table, suite), self.expectation_parameters
        )
        if rows >= self.config.serial_validation_rows:
            # A big table is validated before the next model, so two memory peaks never add.
            self._take(self.service.wait_all())

    def _take(self, results: list[tuple[str, list[quality.ExpectationResult]]]) -> None:
        for table, outcomes in results:
            self.result.expectations.extend(outcomes)
            self.console.expectation_line(table, outcomes)
            if any(o.blocking_failure for o in outcomes):
                self.runs[table].status = "failed_expectations"
                self.blocked.add(table)

    def finish(self) -> None:
        order = {t: i for i, t in enumerate(self.plan.selected)}
        self.result.models.sort(key=lambda m: order[m.table])
        if self.service is not None:
            self._take(self.service.wait_all())
        if self.has_previous:
            self.con.execute(f"detach {PREVIOUS_CATALOG}")
        self.context.reader.close()


def _validation_input(
    con: duckdb.DuckDBPyConnection, table: str, suite: quality.Suite
) -> tuple[Any, Any]:
    """The rows of just the columns a suite's data expectations read, and the table's schema.

    A 10M-row table fetched whole would cost the validation worker gigabytes as pandas objects.
    """
    layer, name = table.split(".", 1)
    schema = con.sql(statements.select_columns(layer, name, None)).limit(0).to_arrow_table()
    if not suite.data_positions:
        return schema, schema  # a suite about the columns alone reads no row
    # Row-count checks need rows of something: the first column when no other is read.
    columns = [c for c in schema.column_names if c in suite.columns] or schema.column_names[:1]
    return fetch_arrow(con, table, columns), schema


def _check_unselected_inputs(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    chosen = set(plan.selected)
    present = {
        f"{schema}.{name}"
        for schema, name in con.execute(
            f"select schema_name, name from {statements.RELATIONS} "
            "where database_name = current_database()"
        ).fetchall()
    }
    for table in plan.selected:
        model = plan.project.models[table]
        for parent in model.inputs:
            if parent not in chosen and parent not in present:
                raise ProjectError(
                    f"{table} reads {parent}, which is neither selected nor in the published "
                    f"warehouse; select '+{model.name}' to build it too"
                )


def _expectation_parameters(config: Config, params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Config values suites may use: rules, plus every scalar model parameter as model__key."""
    values = config.expectation_parameters()
    for model, settings in params.items():
        for key, value in settings.items():
            if isinstance(value, int | float | str | bool):
                values[f"{model}__{key}"] = value
    return values


def _raise_failure(result: RunResult) -> None:
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
