"""GX on Spark DataFrames with the suites as written for pandas: each pandas row condition
(``is_segmented == True and scope == 'all'``) becomes a Spark SQL filter, built with sqlglot, and
each pandas dtype the Spark type GX's Spark data source checks."""

from __future__ import annotations

import ast
from typing import Any

from sqlglot import exp

from engine.adapters.spark.sql import DIALECT
from engine.checks.expectations import Validator
from engine.errors import ProjectError


def spark_validator() -> Validator:
    return Validator("spark", for_spark)


_COMPARISONS = {
    ast.Eq: exp.EQ, ast.NotEq: exp.NEQ, ast.Lt: exp.LT, ast.LtE: exp.LTE, ast.Gt: exp.GT,
    ast.GtE: exp.GTE,
}  # fmt: skip


def spark_row_condition(query: str, where: str) -> str:
    """A suite's pandas row condition (``is_segmented == True and scope == 'all'``) as the
    Spark SQL filter GX's Spark data source takes."""
    try:
        tree = ast.parse(query, mode="eval").body
        return _condition(tree).sql(DIALECT)
    except (SyntaxError, ValueError) as exc:
        raise ProjectError(f"{where}: row_condition {query!r}: not for Spark: {exc}") from exc


def _condition(node: ast.AST) -> exp.Expression:
    if isinstance(node, ast.BoolOp):
        combine = exp.and_ if isinstance(node.op, ast.And) else exp.or_
        return combine(*(_condition(v) for v in node.values))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return exp.Not(this=exp.Paren(this=_condition(node.operand)))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARISONS:
        comparison = _COMPARISONS[type(node.ops[0])]
        return comparison(this=_condition(node.left), expression=_condition(node.comparators[0]))
    if isinstance(node, ast.Name):
        return exp.column(node.id, quoted=True)
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return exp.Boolean(this=node.value)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return exp.Literal.string(node.value)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return exp.Literal.number(repr(node.value))
    raise ValueError(f"{ast.unparse(node)} is not a comparison of columns and constants")


# A suite's column types are pandas dtypes; GX's Spark data source checks Spark's types.
SPARK_TYPES = {
    "int64": "LongType", "int32": "IntegerType", "int16": "ShortType", "int8": "ByteType",
    "float64": "DoubleType", "float32": "FloatType", "bool": "BooleanType",
    "object": "StringType", "str": "StringType",
}  # fmt: skip


def _spark_type(dtype: str, where: str) -> str:
    if dtype not in SPARK_TYPES:
        raise ProjectError(f"{where}: column type {dtype!r} has no Spark type here")
    return SPARK_TYPES[dtype]


def for_spark(expectation: dict[str, Any], where: str) -> dict[str, Any]:
    """The expectation as GX's Spark data source reads it: its row condition as a Spark SQL
    filter, its pandas dtypes as Spark types."""
    kwargs = dict(expectation.get("kwargs", {}))
    if kwargs.get("condition_parser") == "pandas":
        kwargs["row_condition"] = spark_row_condition(kwargs["row_condition"], where)
        kwargs["condition_parser"] = "spark"
    if isinstance(kwargs.get("type_"), str):
        kwargs["type_"] = _spark_type(kwargs["type_"], where)
    if isinstance(kwargs.get("type_list"), list):
        kwargs["type_list"] = [_spark_type(t, where) for t in kwargs["type_list"]]
    return expectation | {"kwargs": kwargs}
