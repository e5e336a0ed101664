"""One refresh, whatever engine holds the tables: plan, lock, build every selected model in DAG
order, validate, record and publish.

The run reads top to bottom: discover the project and check the config (``Runner._run``), take
the lock and open a build file beside the published one, build every selected model in DAG order
(``_Build``, which asks the engine to make each table and to validate it), and, when every
blocking expectation passed, record the run and swap the build in atomically. The engine
(engine/adapters/) is reached only through its interface; the build file through its catalog.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.adapters.base import Build, Engine, Validated
from engine.checks import expectations as quality
from engine.checks.reconciliation import (
    empty_source,
    nothing_staged,
    reconciled_source,
    where_rows_went,
)
from engine.console import Console
from engine.errors import (
    ExpectationsFailed,
    InputError,
    ModelError,
    NoRoomToWrite,
    PipelineError,
    ProjectError,
    is_interrupt,
    no_room_to_write,
)
from engine.project.audiences import check_columns
from engine.project.column_sets import column_sets
from engine.project.config import Config
from engine.project.discovery import (
    RECONCILIATION_ROLE,
    SOURCE_LAYER,
    Model,
    Project,
    discover,
    model_configs,
    select,
)
from engine.project.sources import unmatched_warnings
from engine.refresh import interrupts
from engine.refresh.building import BuildContext, build_model, load_python_model
from engine.refresh.fit_workers import FitWorkers
from engine.refresh.memory import release_unused
from engine.refresh.scheduler import apply_to_dag
from engine.warehouse import publish
from engine.warehouse.catalog import BuildCatalog
from engine.warehouse.recording import ModelRun, RunResult, write_json
from engine.warehouse.run_results import new_run_id, published_before


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
    engine: Engine
    selectors: list[str] | None = None
    inputs_fingerprint: str | None = None
    reset_history: bool = False

    def run(self) -> RunResult:
        interrupts.forget_signals()
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
        except BaseException as exc:
            # Every way a run ends leaves a final record, an interrupted one too.
            if is_interrupt(exc):
                result.status, result.exit_code = "interrupted", interrupts.exit_code()
                result.message = (
                    "stopped by SIGTERM"
                    if result.exit_code == interrupts.TERMINATED_EXIT
                    else "interrupted (Ctrl-C)"
                )
            else:
                result.status, result.exit_code = "error", 1
                result.message = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            result.finished_at = datetime.now(UTC)
            problem = write_json(self.config.run_results_dir, result)
            if problem:
                self.console.error(problem)
        return result

    def _warn_unmatched(self, result: RunResult) -> None:
        result.unmatched_files, warnings = unmatched_warnings(
            self.config.raw_dir, self.config.sources
        )
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
        customers = project.models["marts.dim_customers"].query
        assert customers is not None
        check_columns(self.config.audiences, customers.named_selects, self.config.path.name)
        return Plan(project, select(project, self.selectors), suites, params)

    def _run(self, result: RunResult) -> None:
        self._warn_unmatched(result)
        plan = self._plan()
        paths = publish.WarehousePaths(self.config.warehouse_path)
        with publish.exclusive_lock(paths):
            leftovers = publish.remove_leftovers(paths) + self.engine.remove_leftovers(paths)
            for leftover in leftovers:
                self.console.info(f"Removed {leftover.name}, left behind by an interrupted run")
            if not paths.published.exists() and published_before(self.config.run_results_dir):
                self.console.error(
                    f"{paths.published} is gone, though an earlier run published it: building a "
                    "new warehouse (segment ids, lineage and run history start again)"
                )
            path = publish.start_build(paths, result.run_id, copy_published=plan.partial)
            try:
                passed = self._build(path, paths, plan, result)
                interrupts.stop_if_signalled()  # never publish past a stop
            except BaseException as exc:
                self._discard(path, result)
                reason = no_room_to_write(exc)
                if reason is None:
                    raise
                raise NoRoomToWrite(
                    f"{path.parent}: no room to write the build ({reason}). A refresh needs "
                    "free space for a second copy of the warehouse while it builds; free some "
                    "(or raise the limit) and run again. Nothing was published; the warehouse "
                    "is unchanged."
                ) from exc
            if not passed:
                self._discard(path, result)
                _raise_failure(result)
            publish.publish(path, paths)
            result.published = True
            for message in self.engine.after_publish(paths):
                self.console.info(message)

    def _discard(self, path: Path, result: RunResult) -> None:
        publish.discard_build(path)
        self.engine.discard(result.run_id)

    def _build(
        self, path: Path, paths: publish.WarehousePaths, plan: Plan, result: RunResult
    ) -> bool:
        """Build every selected model into ``path``; True if all of them passed."""
        catalog = BuildCatalog.open(
            path, paths.published, self.config.storage_version, self.config.memory_limit
        )
        workers = FitWorkers(self.config.fit_workers)
        interrupted, passed = False, False
        try:
            build = Build(result.run_id, plan.project, tuple(plan.selected), plan.suites, catalog)
            state = _Build(self, plan, result, build, workers)
            state.prepare()
            self.engine.begin(build)
            state.fork_fit_workers()
            apply_to_dag(
                {t: plan.project.models[t].inputs for t in plan.selected},
                state.build_one,
                workers=self.engine.concurrent_models,
                failures=(ModelError, UpstreamFailed),
                on_skip=state.skip,
                # Python models run here, where Ctrl-C stops them at once; the other kinds
                # mostly wait for the engine, in threads.
                threaded=lambda t: plan.project.models[t].kind != "python",
                on_interrupt=self.engine.cancel,
            )
            state.finish()
            if state.blocked:
                return False
            catalog.record(result, self.inputs_fingerprint)
            passed = True
            return True
        except BaseException as exc:
            interrupted = is_interrupt(exc)
            raise
        finally:
            workers.close(wait=not interrupted)
            catalog.close(checkpoint=passed)


@dataclass
class _Build:
    """One build: the models built so far, what failed, and the validations on their way."""

    runner: Runner
    plan: Plan
    result: RunResult
    build: Build
    workers: FitWorkers
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

    @property
    def engine(self) -> Engine:
        return self.runner.engine

    @property
    def catalog(self) -> BuildCatalog:
        return self.build.catalog

    def prepare(self) -> None:
        """Meta tables with the history carried forward, schemas, and a check of the inputs."""
        keep = self.config.history_runs
        dropped = self.catalog.start_history(carry=not self.plan.partial, keep_runs=keep)
        if dropped:
            self.console.info(
                f"Run history: this build leaves out the {dropped} oldest run(s); meta "
                f"keeps the last {keep} (warehouse.history_runs)"
            )
        for layer in sorted({self.plan.project.models[t].layer for t in self.plan.selected}):
            self.catalog.create_schema(layer)
        _check_unselected_inputs(self.catalog, self.plan)
        self.context = BuildContext(
            self.engine,
            self.catalog,
            self.plan.project,
            self.config,
            self.result.run_id,
            self.plan.params,
            self.workers.map,
            self.runner.reset_history,
        )
        self.expectation_parameters = expectation_parameters(self.config, self.plan.params)

    def fork_fit_workers(self) -> None:
        """Fork the fit workers before the first model, while the builder is small, if a
        selected model takes ``parallel``."""
        models = [self.plan.project.models[t] for t in self.plan.selected]
        sharing = [m for m in models if m.kind == "python" and "parallel" in m.parameters]
        if sharing:
            for model in sharing:
                # The builder imports them to build them anyway; imported before the fork,
                # scikit-learn and scipy are inherited, not imported again by each worker.
                # One that fails to load fails again when it is built, with its name.
                with contextlib.suppress(Exception):
                    load_python_model(model)
            self.workers.start()

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
        with self.build.turn:
            self._skip(table, failed)

    def _skip(self, table: str, failed: str) -> None:
        self.blocked.add(table)
        run = self._new_run(table)
        run.message = f"skipped: upstream {failed} did not pass"
        self.console.model_line(*self._position(table), "SKIP", table, "upstream failed", 0.0)

    def build_one(self, table: str) -> None:
        with self.build.turn:
            self._build_one(table)

    def _build_one(self, table: str) -> None:
        """Build, describe, count and send one model to validation, or say why it was not."""
        interrupts.stop_if_signalled()
        self._take(self.engine.validated(wait=False))
        model = self.plan.project.models[table]
        # Upstream, not only the inputs: a failed expectation can arrive from the validation
        # worker after its table's dependants were built; what depends on those waits no more.
        upstream = self.plan.project.upstream(table)
        failed_inputs = [t for t in self.plan.project.order if t in upstream and t in self.blocked]
        if model.role == RECONCILIATION_ROLE:
            # It explains a staged table's failed row count (every row rejected), so it runs
            # whenever its inputs were built, however soon that failure arrived.
            failed_inputs = [
                t for t in failed_inputs if self.runs[t].status != "failed_expectations"
            ]
        if failed_inputs:
            self._skip(table, failed_inputs[0])
            raise UpstreamFailed(table)
        run = self._new_run(table)
        run.started_at, clock = datetime.now(UTC), time.perf_counter()
        try:
            with self.console.step(*self._position(table), table) as progress:
                note = self._make(model, progress.update)
            if note:
                run.message = note
            release_unused()
            self.catalog.describe(model)
        except InputError as exc:
            # Too little data reaches a model: say where the source rows went.
            went = where_rows_went(self.catalog, self.plan.project, self.result.reconciliation)
            if not went:
                raise
            raise InputError(f"{exc} (staging: {went})") from exc
        except ModelError as exc:
            run.seconds, run.status, run.message = time.perf_counter() - clock, "error", str(exc)
            self.blocked.add(table)
            self.console.model_line(*self._position(table), "ERROR", table, "failed", run.seconds)
            self.console.error(f"           {exc}")
            raise
        run.rows, run.status = self.catalog.row_count(table), "success"
        run.seconds = time.perf_counter() - clock
        self._stop_if_empty(model, run)
        if model.role == RECONCILIATION_ROLE:
            self._reconcile(model, run)
        self.console.model_line(
            *self._position(table), "OK", table, f"{run.rows} rows", run.seconds
        )
        suite = self.plan.suites.get(table)
        if suite is not None:
            self.engine.validate(table, suite, self.expectation_parameters, run.rows)
            self._take(self.engine.validated(wait=False))

    def _make(self, model: Model, progress: Callable[[str], None]) -> str | None:
        return build_model(self.context, model, progress)

    def _stop_if_empty(self, model: Model, run: ModelRun) -> None:
        """A required source that loaded no row is bad input (exit 2), told at its load."""
        problem = empty_source(model, run.rows or 0, self.config)
        if problem is None:
            return
        run.status, run.message = "error", problem
        self.blocked.add(model.table)
        self.console.model_line(
            *self._position(model.table), "ERROR", model.table, "empty", run.seconds
        )
        raise InputError(f"{model.table}: {problem}. Nothing was published.")

    def _reconcile(self, model: Model, run: ModelRun) -> None:
        """Record the reconciliation; stop what reads the staged tables if none was staged."""
        source = reconciled_source(self.plan.project, model)
        if source is not None and self.config.sources[source].implicit:
            return  # a source the config does not have: empty by design, nothing to record
        rows = self.catalog.fetch_arrow(model.table).to_pylist()
        self.result.reconciliation[model.table] = rows[0] if rows else {}
        row = self.result.reconciliation[model.table]
        problem = nothing_staged(self.catalog, self.plan.project, model, row, self.config)
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
        # Bad input, not a broken project: the landing files must change (exit 2).
        raise InputError(f"{model.table}: {problem}. Nothing was published.")

    def _take(self, results: list[Validated]) -> None:
        for table, outcomes in results:
            self.result.expectations.extend(outcomes)
            self.console.expectation_line(table, outcomes)
            if any(o.blocking_failure for o in outcomes):
                self.runs[table].status = "failed_expectations"
                self.blocked.add(table)

    def finish(self) -> None:
        order = {t: i for i, t in enumerate(self.plan.selected)}
        self.result.models.sort(key=lambda m: order[m.table])
        self._take(self.engine.validated(wait=True))
        self.engine.finish(self.build)
        self.catalog.detach_previous()


def _check_unselected_inputs(catalog: BuildCatalog, plan: Plan) -> None:
    chosen = set(plan.selected)
    present = catalog.relations()
    for table in plan.selected:
        model = plan.project.models[table]
        for parent in model.inputs:
            if parent not in chosen and parent not in present:
                raise ProjectError(
                    f"{table} reads {parent}, which is neither selected nor in the published "
                    f"warehouse; select '+{model.name}' to build it too"
                )


def expectation_parameters(config: Config, params: dict[str, dict[str, Any]]) -> dict[str, Any]:
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
