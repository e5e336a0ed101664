"""Scoring logic compiled to SQL as sqlglot expressions, so BI users score without Python.

Every number is written as CAST('<repr>' AS DOUBLE): a decimal literal would be read as DECIMAL
by DuckDB and rounded, and the SQL must agree with the Python computation bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from engine.model_api import transformed

# The nearest-centroid scorer ml.segment_centroids installs and ml.customer_segments calls.
CENTROID_SCORER = "assign_segment"


def double(value: float) -> exp.Expression:
    return exp.cast(exp.Literal.string(repr(float(value))), exp.DataType.build("double"))


def scaled(feature: str, transform: str, center: float, scale: float) -> exp.Expression:
    """(transformed feature - center) / scale, with the feature as a macro parameter: the same
    expression int_customer_features applies (engine.columns.transformed)."""
    value = transformed(exp.column(feature, quoted=True), transform)
    return exp.Div(
        this=exp.Paren(this=exp.Sub(this=value, expression=double(center))),
        expression=double(scale),
    )


def squared_distance(
    features: Sequence[str],
    transforms: Sequence[str],
    centers: Sequence[float],
    scales: Sequence[float],
    centroid: Sequence[float],
) -> exp.Expression:
    """Sum over features, left to right, of (scaled value - centroid)^2 as a product."""
    total: exp.Expression | None = None
    for feature, transform, center, scale, coordinate in zip(
        features, transforms, centers, scales, centroid, strict=True
    ):
        difference = exp.Paren(
            this=exp.Sub(
                this=scaled(feature, transform, center, scale), expression=double(coordinate)
            )
        )
        term = exp.Mul(this=difference, expression=difference.copy())
        total = term if total is None else exp.Add(this=total, expression=term)
    assert total is not None
    return total


def nearest(distances: Sequence[exp.Expression], labels: Sequence[int]) -> exp.Expression:
    """The label of the smallest distance; a tie goes to the earlier label (as numpy argmin)."""
    # Every condition is built from fresh copies, so sqlglot need not copy them again (its
    # default, which makes this the slowest step of segment_centroids at k = 10).
    case = exp.Case()
    for i in range(len(distances) - 1):
        conditions = [
            exp.LTE(this=distances[i].copy(), expression=distances[j].copy())
            for j in range(i + 1, len(distances))
        ]
        case = case.when(
            exp.and_(*conditions, copy=False), exp.Literal.number(labels[i]), copy=False
        )
    return case.else_(exp.Literal.number(labels[-1]), copy=False)


def create_macro(
    schema: str, name: str, parameters: Sequence[str], body: exp.Expression
) -> exp.Create:
    """CREATE OR REPLACE MACRO schema.name(parameters) AS body."""
    signature = exp.UserDefinedFunction(
        this=exp.table_(name, db=schema),
        expressions=[exp.column(p) for p in parameters],
        wrapped=True,
    )
    return exp.Create(this=signature, kind="MACRO", expression=body, replace=True)
