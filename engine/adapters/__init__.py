"""The engines, one folder each, peers behind ``engine.adapters.base.Engine``.

This registry is the one module outside the adapters that names them. An adapter's package
declares ``SETTINGS`` (its config section, or None) and ``start(config, console)``, which imports
what the engine needs only when it is chosen. Adding an engine is adding a folder and a line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any

ADAPTERS = {"duckdb": "engine.adapters.duckdb", "spark": "engine.adapters.spark"}
ENGINES = tuple(ADAPTERS)
DEFAULT_ENGINE = "duckdb"


@dataclass(frozen=True)
class EngineSettings:
    """An engine's own section of the config (``[spark]``): its keys and their constraints (as
    engine/project/schema.py declares keys), and how the section becomes a settings object."""

    section: str
    schema: dict[str, Any]
    parse: Callable[[dict[str, Any], Path, str], Any]  # (section, config folder, file name)


def adapter(name: str) -> ModuleType:
    """The engine's package: its ``SETTINGS`` and ``start(config, console) -> Engine``."""
    return import_module(ADAPTERS[name])


def engine_settings() -> list[EngineSettings]:
    """Every engine's config section."""
    return [s for s in (adapter(n).SETTINGS for n in ENGINES) if s is not None]
