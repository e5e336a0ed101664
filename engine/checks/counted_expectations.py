"""Expectations DuckDB counts itself: a big table's checks as one aggregate query in the build.

GX on pandas reads a 10M-row table as frames in the validation worker: seconds per expectation
and gigabytes of memory. The row counts, null checks, uniqueness, value sets and ranges that
every big table of the project carries are a few aggregates over the table in DuckDB. The
results are GX's: the same success, counts and percentages (GX's formulas: over the non-missing
values, or over every row for the null checks, and none for an empty domain), the kwargs as GX
writes them back, and up to five unexpected values in the table's row order, as JSON values
(GX's pandas frames write a missing value as NaN and an integer as a string, or as a float when
its column has a missing value; ``tests/test_counted_expectations.py`` compares every field
with GX on the same rows). An expectation of another kind, with an argument not listed here
or a row condition other than ``column == literal`` (joined by ``and``) stays with GX.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlglot import exp

from engine.checks.expectations import (
    BLOCKING_SEVERITY,
    UNEXPECTED_SHOWN,
    ExpectationResult,
    Suite,
)

CONDITIONED = {"column", "row_condition", "condition_parser"}
COUNTED_ARGUMENTS = {
    "expect_table_row_count_to_be_between": {"min_value", "max_value"},
    "expect_column_values_to_not_be_null": CONDITIONED,
    "expect_column_values_to_be_null": CONDITIONED,
    "expect_column_values_to_be_unique": {"column"},
    "expect_compound_columns_to_be_unique": {"column_list"},
    "expect_column_values_to_be_in_set": CONDITIONED | {"value_set"},
    "expect_column_values_to_be_between": CONDITIONED
    | {"min_value", "max_value", "strict_min", "strict_max"},
}
_EQUALS = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*==\s*(True|False|'[^'\\]*'|-?\d+)\s*$")


@dataclass(frozen=True)
class Counted:
    """One expectation checked by counting: where it sits in the suite and what to count."""

    position: int
    type: str
    kwargs: dict[str, Any]  # as written, parameters filled in
    domain: exp.Expression  # the rows it looks at
    present: exp.Expression  # of those, the values it judges (GX's "non-missing")
    unexpected: exp.Expression | None  # None: uniqueness (copies counted by a group-by)
    shown: tuple[str, ...]  # the columns whose values are shown when it fails


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _missing(name: str, types: dict[str, pa.DataType]) -> exp.Expression:
    # pandas, which GX validates on, takes NaN for a missing value; DuckDB does not.
    null = exp.Is(this=_column(name), expression=exp.Null())
    if pa.types.is_floating(types[name]):
        return exp.or_(null, exp.func("isnan", _column(name)))
    return null


def _literal_for(value: Any, kind: pa.DataType) -> exp.Expression | None:
    """``value`` as a literal compared with a column of type ``kind``; None when pandas and DuckDB
    could compare them differently (a number with a text column, say)."""
    if isinstance(value, bool):
        return exp.Boolean(this=value) if pa.types.is_boolean(kind) else None
    if isinstance(value, int):
        return exp.Literal.number(value) if pa.types.is_integer(kind) else None
    if isinstance(value, str) and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return exp.Literal.string(value)
    return None


def _condition_value(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    return text[1:-1] if text.startswith("'") else int(text)


def _domain(kwargs: dict[str, Any], types: dict[str, pa.DataType]) -> exp.Expression | None:
    """The rows a ``row_condition`` keeps (every row without one); None when not countable."""
    condition = kwargs.get("row_condition")
    if condition is None:
        return exp.true()
    if kwargs.get("condition_parser") != "pandas" or not isinstance(condition, str):
        return None
    terms = []
    for part in condition.split(" and "):
        match = _EQUALS.match(part)
        if not match or match.group(1) not in types:
            return None
        name = match.group(1)
        literal = _literal_for(_condition_value(match.group(2)), types[name])
        if literal is None:
            return None
        terms.append(exp.EQ(this=_column(name), expression=literal))
    return exp.and_(*terms)


UNSET = object()  # a $PARAMETER nobody set


def _filled(value: Any, parameters: dict[str, Any]) -> Any:
    if isinstance(value, dict) and set(value) == {"$PARAMETER"}:
        return parameters.get(value["$PARAMETER"], UNSET)
    return value


def _as_gx_writes(type_: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """kwargs as GX reports them: no None, range bounds as floats, a row condition as its filter."""
    shown = {k: v for k, v in kwargs.items() if v is not None}
    if type_ == "expect_column_values_to_be_between":
        for bound in ("min_value", "max_value"):
            if isinstance(shown.get(bound), int | float) and not isinstance(shown[bound], bool):
                shown[bound] = float(shown[bound])
    if "row_condition" in shown:
        shown["row_condition"] = {
            "pass_through_filter": shown["row_condition"],
            "type": "pass_through",
        }
    return shown


def _range_test(kwargs: dict[str, Any], name: str, kind: pa.DataType) -> exp.Expression | None:
    """The values outside the range; None when the column or a bound is not a number."""
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return None
    outside: list[exp.Expression] = []
    for bound, strict, below in (
        ("min_value", "strict_min", True),
        ("max_value", "strict_max", False),
    ):
        value = kwargs.get(bound)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            return None
        limit = exp.Literal.number(value)
        if below:
            test = exp.LTE if kwargs.get(strict) else exp.LT
        else:
            test = exp.GTE if kwargs.get(strict) else exp.GT
        outside.append(test(this=_column(name), expression=limit))
    return exp.or_(*outside) if outside else exp.false()


def _set_test(values: Any, name: str, kind: pa.DataType) -> exp.Expression | None:
    if not isinstance(values, list) or not values:
        return None
    literals = [_literal_for(v, kind) for v in values]
    if any(literal is None for literal in literals):
        return None
    return exp.not_(exp.In(this=_column(name), expressions=literals))


def _plan_column(
    type_: str, kwargs: dict[str, Any], types: dict[str, pa.DataType]
) -> tuple[exp.Expression, exp.Expression, exp.Expression | None] | None:
    """(domain, present, unexpected) of a column expectation; None when not countable."""
    name = kwargs.get("column")
    domain = _domain(kwargs, types)
    if not isinstance(name, str) or name not in types or domain is None:
        return None
    missing = _missing(name, types)
    if type_ == "expect_column_values_to_not_be_null":
        return domain, exp.true(), missing
    if type_ == "expect_column_values_to_be_null":
        return domain, exp.true(), exp.not_(missing)
    if type_ == "expect_column_values_to_be_unique":
        return domain, exp.not_(missing), None
    if type_ == "expect_column_values_to_be_in_set":
        test = _set_test(kwargs.get("value_set"), name, types[name])
    else:
        test = _range_test(kwargs, name, types[name])
    return None if test is None else (domain, exp.not_(missing), test)


def _plan_one(
    position: int,
    written: dict[str, Any],
    parameters: dict[str, Any],
    types: dict[str, pa.DataType],
) -> Counted | None:
    type_ = written.get("type")
    allowed = COUNTED_ARGUMENTS.get(type_)
    raw = written.get("kwargs", {})
    if allowed is None or not isinstance(raw, dict) or set(raw) - allowed:
        return None
    kwargs = {k: _filled(v, parameters) for k, v in raw.items()}
    if any(v is UNSET for v in kwargs.values()):
        return None  # GX says which parameter is missing
    if type_ == "expect_table_row_count_to_be_between":
        bounds = [kwargs.get("min_value"), kwargs.get("max_value")]
        if any(b is not None and (isinstance(b, bool) or not isinstance(b, int)) for b in bounds):
            return None
        return Counted(position, type_, kwargs, exp.true(), exp.true(), exp.false(), ())
    if type_ == "expect_compound_columns_to_be_unique":
        columns = kwargs.get("column_list")
        if not isinstance(columns, list) or not columns or not set(columns) <= set(types):
            return None
        # GX's default ignore_row_if: a row whose every value is missing is not judged.
        all_missing = exp.and_(*(_missing(c, types) for c in columns))
        return Counted(
            position, type_, kwargs, exp.true(), exp.not_(all_missing), None, tuple(columns)
        )
    planned = _plan_column(type_, kwargs, types)
    if planned is None:
        return None
    return Counted(position, type_, kwargs, *planned, (kwargs["column"],))


def plan(suite: Suite, parameters: dict[str, Any], schema: pa.Schema) -> list[Counted]:
    """The suite's data expectations this module can count on a table of ``schema``."""
    types = {field.name: field.type for field in schema}
    expectations = suite.document["expectations"]
    found = (_plan_one(i, expectations[i], parameters, types) for i in suite.data_positions)
    return [counted for counted in found if counted is not None]


def _all(*conditions: exp.Expression) -> exp.Expression:
    kept = [c for c in conditions if c != exp.true()]
    return exp.and_(*kept) if kept else exp.true()


def _count_where(condition: exp.Expression) -> exp.Expression:
    if condition == exp.true():
        return exp.Count(this=exp.Star())
    return exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=condition))


def _duplicated_rows(table: exp.Table, counted: Counted) -> exp.Select:
    """Rows judged whose values another judged row repeats, with their position in the table."""
    columns = [_column(c) for c in counted.shown]
    copies = exp.Window(this=exp.Count(this=exp.Star()), partition_by=columns)
    judged = _all(counted.domain, counted.present)
    inner = (
        exp.select(*columns, exp.alias_(exp.column("rowid"), "_row"), exp.alias_(copies, "_copies"))
        .from_(table.copy())
        .where(judged)
    )
    return exp.select(*columns, "_row").from_(inner.subquery("judged")).where("_copies > 1")


def _duplicated_count(table: exp.Table, counted: Counted) -> exp.Select:
    """How many judged rows repeat another's values: a hash aggregate, cheaper than a window."""
    columns = [_column(c) for c in counted.shown]
    copies = (
        exp.select(exp.alias_(exp.Count(this=exp.Star()), "copies"))
        .from_(table.copy())
        .where(_all(counted.domain, counted.present))
        .group_by(*columns)
        .having("copies > 1")
    )
    total = exp.func("coalesce", exp.Sum(this=exp.column("copies")), exp.Literal.number(0))
    return exp.select(total).from_(copies.subquery("repeated"))


def _distinct_count(counted: Counted) -> exp.Expression:
    """The judged rows' distinct keys: as many as the judged rows when no key repeats.

    Several columns are counted by their hash, which is cheaper to group than text and a
    number: two keys that share a hash only make the count smaller, and a count below the
    judged rows is settled by the exact group-by (``check``).
    """
    columns = [_column(c) for c in counted.shown]
    key = columns[0] if len(columns) == 1 else exp.func("hash", *columns)
    distinct = exp.Count(this=exp.Distinct(expressions=[key]))
    judged = _all(counted.domain, counted.present)
    if judged == exp.true():
        return distinct
    return exp.Filter(this=distinct, expression=exp.Where(this=judged))


def count_query(table: exp.Table, planned: list[Counted]) -> exp.Select:
    """One row: the table's row count, then (domain, judged, unexpected) rows per expectation;
    for uniqueness, (domain, judged, distinct keys) instead."""
    figures: list[exp.Expression] = [exp.Count(this=exp.Star())]
    for counted in planned:
        figures += [
            _count_where(counted.domain),
            _count_where(_all(counted.domain, counted.present)),
        ]
        if counted.unexpected is not None:
            figures.append(_count_where(_all(counted.domain, counted.present, counted.unexpected)))
        else:
            figures.append(_distinct_count(counted))
    return exp.select(*figures).from_(table.copy())


def unexpected_query(table: exp.Table, counted: Counted) -> exp.Select:
    """The first unexpected values, in the table's row order."""
    if counted.unexpected is None:
        rows = _duplicated_rows(table, counted).subquery("duplicated")
        columns = [_column(c) for c in counted.shown]
        return exp.select(*columns).from_(rows).order_by("_row").limit(UNEXPECTED_SHOWN)
    where = _all(counted.domain, counted.present, counted.unexpected)
    return (
        exp.select(*(_column(c) for c in counted.shown))
        .from_(table.copy())
        .where(where)
        .order_by("rowid")
        .limit(UNEXPECTED_SHOWN)
    )


def _shown(counted: Counted, rows: list[tuple[Any, ...]]) -> str | None:
    if not rows:
        return None
    if counted.type == "expect_compound_columns_to_be_unique":
        values: list[Any] = [dict(zip(counted.shown, row, strict=True)) for row in rows]
    else:
        values = [row[0] for row in rows]
    return json.dumps(_nan_as_null(values), default=str, sort_keys=True)


def _nan_as_null(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_as_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_as_null(v) for v in value]
    return value


def _result(
    suite: Suite,
    counted: Counted,
    row_count: int,
    domain: int,
    judged: int,
    unexpected: int,
    unexpected_rows: Callable[[Counted], list[tuple[Any, ...]]],
) -> ExpectationResult:
    written = suite.document["expectations"][counted.position]
    kwargs = _as_gx_writes(counted.type, counted.kwargs)
    common = {
        "suite": suite.path.name,
        "table_name": suite.table,
        "expectation_type": counted.type,
        "column_name": kwargs.get("column"),
        "kwargs": json.dumps(kwargs, default=str, sort_keys=True),
        "severity": str(written.get("severity", BLOCKING_SEVERITY)),
        "error": None,
    }
    if counted.type == "expect_table_row_count_to_be_between":
        low, high = counted.kwargs.get("min_value"), counted.kwargs.get("max_value")
        success = (low is None or row_count >= low) and (high is None or row_count <= high)
        return ExpectationResult(
            **common,
            success=success,
            observed_value=json.dumps(row_count),
            unexpected_count=None,
            unexpected_percent=None,
        )
    # GX's formula, to the last bit: over the judged values, none for an empty domain.
    percent = unexpected / judged * 100 if domain > 0 and judged > 0 else None
    return ExpectationResult(
        **common,
        success=unexpected == 0,
        observed_value=None,
        unexpected_count=unexpected,
        unexpected_percent=percent,
        unexpected_values=_shown(counted, unexpected_rows(counted)) if unexpected else None,
    )


def check(
    query: Callable[[str], list[tuple[Any, ...]]], table: str, suite: Suite, planned: list[Counted]
) -> list[ExpectationResult]:
    """The results of ``planned`` on ``table`` (``layer.name``), in their order, counted by
    running ``count_query`` through ``query`` (then, where keys may repeat, the group-by that
    counts their copies, and ``unexpected_query`` for each failure)."""
    layer, name = table.split(".", 1)
    target = exp.table_(name, db=layer, quoted=True)
    figures = query(count_query(target, planned).sql("duckdb"))[0]

    def unexpected_rows(counted: Counted) -> list[tuple[Any, ...]]:
        return query(unexpected_query(target, counted).sql("duckdb"))

    def repeated(counted: Counted) -> int:
        return query(_duplicated_count(target, counted).sql("duckdb"))[0][0]

    row_count, found = figures[0], []
    for index, counted in enumerate(planned):
        domain, judged, unexpected = figures[1 + 3 * index : 4 + 3 * index]
        if counted.unexpected is None:
            # Fewer distinct keys than judged rows: some may repeat, and GX counts every copy.
            unexpected = 0 if unexpected == judged else repeated(counted)
        found.append(
            _result(suite, counted, row_count, domain, judged, unexpected, unexpected_rows)
        )
    return found
