"""The vocabulary of declared columns: the key, the kinds, the transforms, and a ``Column``.

engine/project/column_sets.py derives each source's columns from the config.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

# The column every source is keyed by and every table joins on; staged by each model itself.
KEY_COLUMN = "customer_id"
KINDS = ("integer", "number", "category", "text", "date")
NUMERIC_KINDS = ("integer", "number")
TRANSFORMS = ("none", "log1p")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required: bool  # a missing value rejects the row
    bounds: tuple[float, float] | None = None
    spellings: dict[str, str] | None = None  # lower-cased spelling -> accepted value
    is_feature: bool = False
    date_format: str | None = None  # the source's, for a date column (None: ISO 8601)


def describe(column: Column) -> str:
    """The declaration in words: 'integer from 15.0 to 100.0, required, a feature'."""
    words = [column.kind]
    if column.bounds is not None:
        words[0] += f" from {column.bounds[0]!r} to {column.bounds[1]!r}"
    if column.spellings:
        words[0] += " in {" + ", ".join(sorted(set(column.spellings.values()))) + "}"
    words.append("required" if column.required else "may be missing")
    words.append("a feature" if column.is_feature else "an attribute")
    return ", ".join(words)


def transformed(value: exp.Expression, transform: str) -> exp.Expression:
    """A feature value as it is standardized: log1p(x) is ln(1 + x), for skewed amounts."""
    as_double = exp.cast(value, exp.DataType.build("double"))
    if transform == "log1p":
        return exp.func("ln", exp.Add(this=exp.Literal.number(1), expression=as_double))
    return as_double
