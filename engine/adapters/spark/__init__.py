"""The Spark engine: every table Parquet files in its run's folder, written by Spark; the
published warehouse a DuckDB catalog of views over them (engine.py says how)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.adapters.spark.settings import SETTINGS
from engine.refresh.interrupts import held_back

if TYPE_CHECKING:
    from engine.adapters.base import Engine
    from engine.console import Console
    from engine.project.config import Config

__all__ = ["SETTINGS", "start"]


def start(config: Config, console: Console) -> Engine:
    """The GX worker (engine/adapters/validation_worker.py) is forked first, as the DuckDB
    engine's is, so GX's import overlaps the Spark session's start and the small tables are
    validated on the side while Spark builds."""
    with held_back():
        from engine.adapters.validation_worker import ValidationService

    service = ValidationService(spool_beside=config.warehouse_path.parent)
    try:
        with held_back():
            from engine.adapters.spark.engine import SparkEngine
    except BaseException:
        service.close()
        raise
    return SparkEngine(config, console, service)
