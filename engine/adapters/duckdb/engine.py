"""The DuckDB engine: SQL and Python models write their tables into the build file, and each
table is sent to the GX worker (engine/adapters/validation_worker.py) as Arrow, just the
columns its suite reads.
A big table's expectations that DuckDB can count are checked in the build file instead
(engine/checks/counted_expectations.py); GX gets the rest of its suite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from engine.adapters.base import Build, ModelInputs, Progress, Validated, validation_input
from engine.adapters.validation_worker import ValidationService, remove_dead_spools
from engine.checks import counted_expectations
from engine.checks.expectations import ExpectationResult, Suite
from engine.errors import is_interrupt
from engine.project.config import Config
from engine.project.discovery import Model
from engine.refresh.loader import in_batches, source_parts
from engine.warehouse.catalog import BuildCatalog
from engine.warehouse.publish import WarehousePaths


@dataclass
class DuckDBEngine:
    config: Config
    service: ValidationService | None  # None once nothing is left to validate
    catalog: BuildCatalog | None = None
    _due: list[Validated] = field(default_factory=list)
    # Counted outcomes of a table whose other expectations are still with the GX worker.
    _counted: dict[str, list[ExpectationResult]] = field(default_factory=dict)
    # One model at a time: DuckDB gives each query every core, and every model shares the
    # build file's one connection.
    concurrent_models: int = 1

    @property
    def _build_file(self) -> BuildCatalog:
        assert self.catalog is not None, "begin() first"
        return self.catalog

    def remove_leftovers(self, paths: WarehousePaths) -> list[Path]:
        """Validation spools of killed runs (the run loop removes their build files)."""
        return remove_dead_spools(paths.published.parent)

    def begin(self, build: Build) -> None:
        self.catalog = build.catalog
        if self.service is not None and not any(t in build.suites for t in build.selected):
            self.service.close()  # nothing selected has a suite: free the other core now
            self.service = None

    def load_source(self, model: Model, progress: Progress) -> None:
        source = self.config.sources[model.name]
        self._build_file.write(model, in_batches(source_parts(self.config, source, progress)))

    def create_table(self, model: Model, query: exp.Query) -> None:
        self._build_file.create_as(model, query)

    def write_table(self, model: Model, data: Any) -> None:
        self._build_file.write(model, data)

    def install_functions(self, model: Model, functions: tuple[exp.Create, ...]) -> None:
        self._build_file.install_functions(model, functions)

    @contextlib.contextmanager
    def model_inputs(self, model: Model) -> Iterator[ModelInputs]:
        yield ModelInputs()  # every input, whole: DuckDB streams what a model reads

    def validate(self, table: str, suite: Suite, parameters: dict[str, Any], rows: int) -> None:
        if self.service is None:
            return
        if rows >= self.config.counted_validation_rows:
            planned, counted = self._count(table, suite, parameters, rows)
            suite = suite.without({c.position for c in planned})
            if not suite.document["expectations"]:
                self._due.append((table, counted))
                return
            self._counted[table] = counted
        self.service.submit(suite, *validation_input(self._build_file, table, suite), parameters)
        if rows >= self.config.serial_validation_rows:
            # A big table is validated before the next model, so two memory peaks never add.
            self._due.extend(self._with_counted(self.service.wait_all()))

    def _count(
        self, table: str, suite: Suite, parameters: dict[str, Any], rows: int
    ) -> tuple[list[counted_expectations.Counted], list[ExpectationResult]]:
        """What DuckDB counted, and its results; nothing when DuckDB refuses the query."""
        planned = counted_expectations.plan(
            suite, parameters, self._build_file.schema(table).schema
        )
        if not planned:
            return [], []
        try:
            return planned, counted_expectations.check(
                self._build_file.counting(rows), table, suite, planned
            )
        except duckdb.Error as exc:
            if is_interrupt(exc):  # Ctrl-C while DuckDB counted
                raise KeyboardInterrupt from exc
            return [], []  # a comparison DuckDB refuses (types, say): GX judges them all

    def _with_counted(self, arrived: list[Validated]) -> list[Validated]:
        return [(table, self._counted.pop(table, []) + found) for table, found in arrived]

    def validated(self, wait: bool) -> list[Validated]:
        arrived, self._due = self._due, []
        if self.service is not None:
            found = self.service.wait_all() if wait else self.service.ready()
            arrived += self._with_counted(found)
        return arrived

    def finish(self, build: Build) -> None:
        """Nothing to add: the build file holds the tables themselves."""

    def discard(self, run_id: str) -> None:
        """Nothing outside the build file, which the run loop discards."""

    def after_publish(self, paths: WarehousePaths) -> list[str]:
        return []

    def cancel(self) -> None:
        """Nothing runs outside the model being built (Ctrl-C interrupts DuckDB's query)."""

    def stop(self) -> None:
        if self.service is not None:
            self.service.close()
            self.service = None
