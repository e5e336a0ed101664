"""What a Python model may return besides a plain table.

A model returns a pandas DataFrame, a pyarrow Table or a DuckDB relation. When it also owns SQL
functions that serve its table (a scorer BI users call, say), it returns a ``ModelResult``: the
table plus CREATE MACRO statements built as sqlglot expressions, which the engine installs in the
model's schema right after the table. A model may instead give the SELECT (a sqlglot query over
its input tables) that makes its table: the engine runs it where the tables are, in DuckDB or,
transpiled, in Spark, so every row is computed there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp


@dataclass(frozen=True)
class ModelResult:
    table: Any = None
    functions: tuple[exp.Create, ...] = field(default_factory=tuple)
    query: exp.Query | None = None  # instead of a table
