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
    with held_back():
        from engine.adapters.spark.engine import SparkEngine

    return SparkEngine(config, console)
