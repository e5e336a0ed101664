"""What the run loop asks of an engine, and what an engine is given for one build.

The run loop (engine/refresh/) plans, locks, walks the DAG, records and publishes; an engine
holds the tables. Each engine is one folder beside this file and implements ``Engine``; none
inherits from another. A build's tables are reached by readers through the build file's catalog
(engine/warehouse/catalog.py), which every engine writes into: the DuckDB engine its tables,
another engine views over its own storage.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from engine.checks.expectations import ExpectationResult, Suite
    from engine.project.discovery import Model, Project
    from engine.warehouse.catalog import BuildCatalog
    from engine.warehouse.publish import WarehousePaths

Progress = Callable[[str], None]
Validated = tuple[str, list["ExpectationResult"]]  # a table and its expectation outcomes


class Turn:
    """One model at a time touches the build's shared state (the catalog's connection, the
    run's record), in its turn. An engine that builds several models at once (its
    ``concurrent_models``) gives a model's turn away while it waits on work done elsewhere (a
    Spark job), so another model's turn can come meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *_: object) -> None:
        self._lock.release()

    @contextlib.contextmanager
    def given_away(self) -> Iterator[None]:
        """Wait outside the turn (when models build one at a time, nobody else takes it)."""
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()


@dataclass(frozen=True)
class Build:
    """One build, as an engine sees it."""

    run_id: str
    project: Project
    selected: tuple[str, ...]
    suites: Mapping[str, Suite]
    catalog: BuildCatalog
    turn: Turn = field(default_factory=Turn)

    @property
    def partial(self) -> bool:
        return len(self.selected) < len(self.project.order)


@dataclass(frozen=True)
class ModelInputs:
    """The tables a Python model reads: an input -> the table to read instead (an engine's
    fit sample, say), and a note for the run's record of the model."""

    stand_ins: Mapping[str, str] = field(default_factory=dict)
    note: str | None = None


class Engine(Protocol):
    """An engine, started once per command and stopped when it is done."""

    # How many models other than Python models may be built at once; more than one only for
    # an engine that gives the turn away while it waits (Build.turn).
    concurrent_models: int

    def remove_leftovers(self, paths: WarehousePaths) -> list[Path]:
        """Delete what an interrupted run left behind; what was removed."""
        ...

    def begin(self, build: Build) -> None:
        """Get ready to build into ``build.catalog`` (the published inputs a partial run reads
        included)."""
        ...

    def load_source(self, model: Model, progress: Progress) -> None: ...

    def create_table(self, model: Model, query: exp.Query) -> None:
        """The model's table from a SELECT in the models' dialect (DuckDB's SQL)."""
        ...

    def write_table(self, model: Model, data: Any) -> None:
        """The model's table from what a Python model or a seed returned: a DataFrame, an Arrow
        table, a DuckDB relation, or an iterator of them."""
        ...

    def install_functions(self, model: Model, functions: tuple[exp.Create, ...]) -> None:
        """SQL macros a model returned, for readers and for the models after it."""
        ...

    def model_inputs(self, model: Model) -> AbstractContextManager[ModelInputs]:
        """What a Python model reads, for as long as it runs."""
        ...

    def validate(self, table: str, suite: Suite, parameters: dict[str, Any], rows: int) -> None:
        """Check a built table against its suite; the outcomes arrive through ``validated``."""
        ...

    def validated(self, wait: bool) -> list[Validated]:
        """Outcomes that have arrived (``wait``: every one still due)."""
        ...

    def finish(self, build: Build) -> None:
        """Every model is built and validated: leave in the catalog what readers need."""
        ...

    def discard(self, run_id: str) -> None:
        """The build will not be published: remove what it wrote outside the build file."""
        ...

    def after_publish(self, paths: WarehousePaths) -> list[str]:
        """The build is the published warehouse (the lock still held): clean up; what to say."""
        ...

    def cancel(self) -> None:
        """The run was interrupted: make what the engine runs for other models return soon."""
        ...

    def stop(self) -> None: ...


def validation_input(catalog: BuildCatalog, table: str, suite: Suite) -> tuple[pa.Table, pa.Table]:
    """The rows of just the columns a suite's data expectations read, and the table's schema.

    A 10M-row table fetched whole would cost the validation worker gigabytes as pandas objects.
    """
    schema = catalog.schema(table)
    if not suite.data_positions:
        return schema, schema  # a suite about the columns alone reads no row
    # Row-count checks need rows of something: the first column when no other is read.
    columns = [c for c in schema.column_names if c in suite.columns] or schema.column_names[:1]
    return catalog.fetch_arrow(table, columns), schema
