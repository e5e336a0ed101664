"""The engine as a Python model sees it: the one module models import from the engine.

What a model may return (``ModelResult``), the dialect its SQL is written in (``DIALECT``), how
a feature column is transformed (``transformed``), and how it checks and reports what it was
given (``check_value``, ``check_values``, ``ParameterError``, ``InputError``).


A model returns a pandas DataFrame, a pyarrow Table or a DuckDB relation. When it also owns SQL
functions that serve its table (a scorer BI users call, say), it returns a ``ModelResult``: the
table plus CREATE MACRO statements built as sqlglot expressions, which the engine installs in the
model's schema right after the table. A model may instead give the SELECT (a sqlglot query over
its input tables) that makes its table: the engine runs it where the tables are (transpiled,
when the engine speaks another dialect), so every row is computed there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from engine.errors import InputError
from engine.project import units
from engine.project.columns import transformed
from engine.project.constraints import ParameterError, check_value, check_values
from engine.project.orders import ORDER_AGGREGATE_WORDS as DEFAULT_FEATURE_WORDS
from engine.warehouse.statements import DIALECT

__all__ = [
    "DEFAULT_FEATURE_WORDS",
    "DIALECT",
    "InputError",
    "ModelResult",
    "ParameterError",
    "check_value",
    "check_values",
    "transformed",
    "units",
]


@dataclass(frozen=True)
class ModelResult:
    table: Any = None
    functions: tuple[exp.Create, ...] = field(default_factory=tuple)
    query: exp.Query | None = None  # instead of a table
