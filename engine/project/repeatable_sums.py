"""Sums and means of doubles that come out the same in every run, as sqlglot expressions.

DuckDB sums a column in parallel and adds the threads' partial sums in whatever order they
finish, so ``sum(x)`` and ``avg(x)`` of doubles change in their last bits from run to run once a
table is big enough to be split (above about 100k rows). Summing in a given order
(``avg(x order by id)``) holds every value of the group in memory, one copy per aggregate.

``repeatable_sum(x)`` adds decimals instead, whose addition is exact and so does not depend on
the order: each value is split into a whole part, as DECIMAL(38, 0), and the rest (at most a
half), as DECIMAL(38, 27); the two exact sums are turned back into doubles and added. Turning a
double into a decimal is the engine's own rounding (DuckDB's is within about 1e-16 of the value,
not exact), but it is done row by row, so it is the same in every run. The result is within a
few ulp of the correctly rounded sum (tests/test_repeatable_sums.py). Within range (every
|x| < 1e26, fewer than 1e11 rows) it cannot overflow; outside it (or with NaN or infinity) the
macro falls back to the engine's plain ``sum``.
"""

from __future__ import annotations

from sqlglot import exp

LIMIT = "1e26"  # DECIMAL(38, 0) holds 1e12 such whole parts; the rests' DECIMAL(38, 27), 1e11
WHOLE = exp.DataType.build("decimal(38, 0)")
REST = exp.DataType.build("decimal(38, 27)")
DOUBLE = exp.DataType.build("double")


def repeatable_sum(value: exp.Expression) -> exp.Expression:
    """The sum of a column of doubles, the same whatever order the rows are added in."""
    in_range = exp.case().when(
        exp.LT(this=exp.Abs(this=value.copy()), expression=exp.Literal.number(LIMIT)),
        value.copy(),
    )
    whole = exp.cast(in_range.copy(), WHOLE)
    rest = exp.Sub(this=in_range.copy(), expression=exp.cast(whole.copy(), DOUBLE))
    exact = exp.Add(
        this=exp.cast(exp.Sum(this=whole), DOUBLE),
        expression=exp.cast(exp.Sum(this=exp.cast(rest, REST)), DOUBLE),
    )
    all_in_range = exp.EQ(this=exp.Count(this=value.copy()), expression=exp.Count(this=in_range))
    return exp.Paren(this=exp.case().when(all_in_range, exact).else_(exp.Sum(this=value.copy())))


def repeatable_mean(value: exp.Expression) -> exp.Expression:
    """The mean of a column of doubles (null when it has no values), the same in every run."""
    return exp.Div(this=repeatable_sum(value), expression=exp.Count(this=value.copy()))
