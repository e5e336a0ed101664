"""The DuckDB engine: every table lives in the build file itself, and Great Expectations
validates in a worker process on the other core while the next models build."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

from engine.refresh.interrupts import held_back

if TYPE_CHECKING:
    from engine.adapters.base import Engine
    from engine.console import Console
    from engine.project.config import Config

SETTINGS = None  # no section of its own: warehouse.memory_limit and the like serve it


def start(config: Config, console: Console) -> Engine:
    """The validation worker is forked first, before the builder imports anything heavy, so
    GX's import overlaps the whole build on the other core."""
    # pandas and pyarrow load next, for the whole run: a collection while they load finds
    # nothing to free. The worker then freezes them before it forks (engine.refresh.memory).
    gc.disable()
    try:
        with held_back():
            from engine.adapters.validation_worker import ValidationService

        service = ValidationService(spool_beside=config.warehouse_path.parent)
    finally:
        gc.enable()
    try:
        with held_back():
            from engine.adapters.duckdb.engine import DuckDBEngine
    except BaseException:
        service.close()
        raise
    return DuckDBEngine(config, service)
