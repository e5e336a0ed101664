"""Sums and means of doubles that come out the same in every run, as sqlglot expressions.

DuckDB sums a column in parallel and adds the threads' partial sums in whatever order they
finish, so ``sum(x)`` and ``avg(x)`` of doubles change in their last bits from run to run once a
table is big enough to be split (above about 100k rows). Summing in a given order
(``avg(x order by id)``) holds every value of the group in memory, one copy per aggregate.

``repeatable_sum(x)`` adds integers instead, whose addition is exact and so does not depend on
the order. Each |x| is cut into five 31-bit digits of base 2^31, from 2^31 down to 2^-93:

    |x| = d0 * 2^31 + d1 + d2 * 2^-31 + d3 * 2^-62 + d4 * 2^-93  (+ what lies below 2^-93)

Every digit is taken by ``floor`` after a scaling by a power of two and a subtraction of
numbers that share their leading bits, all exact in IEEE arithmetic, so the digits are the same
integers in every engine. Each signed digit is summed as a BIGINT; the five sums are joined as
two exact DECIMAL(38, 0) numbers (in units of 2^-31 and of 2^-93), and those are turned into
doubles and added once per group. The result is within a few ulp of the correctly rounded sum
(tests/test_repeatable_sums.py), and where the sum cancels to near zero its error is about
2^-53 of the digits below 2^-31 (1e-20 for a million values of the order of one).

Bits below 2^-93 (about 1e-28) are dropped, row by row, as decimals rounded them before. Within
range (every |x| < 2^62, about 4.6e18, and fewer than 2^32 values in a group) nothing can
overflow; past 2^62 (or with NaN or infinity) the macro falls back to the engine's plain
``sum``. A group of 2^32 values or more may overflow the BIGINT sums: Spark (ANSI) stops with
an overflow error.

Spark does DECIMAL(38) arithmetic in Java's BigDecimal, row by row; summing the digits as
BIGINT is about six times faster there (and about twice on DuckDB). The price is a longer
expression, which Spark takes longer to plan and compile: a few hundredths of a second per sum,
which on a small table is more than the decimals cost (the 200-row sample's refresh on Spark
takes about 5 s longer, and 1M customers 8 s less).

The trees are built without copying what is already built: only the summed expression is
copied, once per use, since a model may sum dozens of them (each() over feature pairs).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

DOUBLE = exp.DataType.build("double")
BIGINT = exp.DataType.build("bigint")
EXACT = exp.DataType.build("decimal(38, 0)")
DIGIT = 2**31
LIMIT = 2**62


def _double(number: int) -> exp.Expression:
    return exp.Cast(this=exp.Literal.number(number), to=DOUBLE.copy())


def _mul(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    return exp.Mul(this=left, expression=right)


def _sub(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    return exp.Paren(this=exp.Sub(this=left, expression=right))


def _digits(magnitude: Callable[[], exp.Expression]) -> list[exp.Expression]:
    """The five base-2^31 digits of a value >= 0 and < 2^62 (``magnitude()`` builds it anew),
    highest first. Each floor is below 2^62, so Spark's floor (which returns BIGINT) cannot
    overflow."""

    def fraction() -> exp.Expression:
        return _sub(magnitude(), exp.Floor(this=magnitude()))

    def first() -> exp.Expression:
        return exp.Floor(this=_mul(fraction(), _double(DIGIT)))

    def two_first() -> exp.Expression:
        return exp.Floor(this=_mul(fraction(), _double(DIGIT**2)))

    def high() -> exp.Expression:
        return exp.Floor(this=exp.Div(this=magnitude(), expression=_double(DIGIT)))

    below_two_first = _sub(_mul(fraction(), _double(DIGIT**2)), two_first())
    return [
        high(),
        _sub(exp.Floor(this=magnitude()), _mul(high(), _double(DIGIT))),
        first(),
        _sub(two_first(), _mul(first(), _double(DIGIT))),
        exp.Floor(this=_mul(below_two_first, _double(DIGIT))),
    ]


def _joined(sums: list[exp.Expression]) -> exp.Expression:
    """sum0 * 2^k + sum1 * 2^(k-31) + ..., exact in DECIMAL(38, 0), as a double."""
    joined: exp.Expression = exp.Cast(this=sums[0], to=EXACT.copy())
    for lower in sums[1:]:
        shifted = _mul(exp.Paren(this=joined), exp.Literal.number(DIGIT))
        joined = exp.Add(this=shifted, expression=lower)
    return exp.Cast(this=joined, to=DOUBLE.copy())


def repeatable_sum(value: exp.Expression) -> exp.Expression:
    """The sum of a column of doubles, the same whatever order the rows are added in."""

    def in_range() -> exp.Expression:
        below = exp.LT(this=exp.Abs(this=value.copy()), expression=_double(LIMIT))
        return exp.case().when(below, value.copy(), copy=False)

    # Clamped to the largest double below 2^62 rather than nulled, which takes the value once:
    # a value out of range has no sign (null), so its digits are not summed, and the count
    # below sees it.
    def magnitude() -> exp.Expression:
        largest = _double(LIMIT - 512)
        return exp.Least(this=exp.Abs(this=value.copy()), expressions=[largest], ignore_nulls=True)

    sums = [
        exp.Sum(this=exp.Cast(this=_mul(exp.Sign(this=in_range()), digit), to=BIGINT.copy()))
        for digit in _digits(magnitude)
    ]
    # In units of 2^-31 (|x| < 2^62 and 2^32 values: below 2^125 < 10^38) and of 2^-93.
    whole = exp.Div(this=_joined(sums[:3]), expression=_double(DIGIT))
    rest = exp.Div(this=_joined(sums[3:]), expression=_double(2**93))
    exact = exp.Add(this=whole, expression=rest)
    all_in_range = exp.EQ(this=exp.Count(this=value.copy()), expression=exp.Count(this=in_range()))
    case = exp.case().when(all_in_range, exact, copy=False)
    return exp.Paren(this=case.else_(exp.Sum(this=value.copy()), copy=False))


def repeatable_mean(value: exp.Expression) -> exp.Expression:
    """The mean of a column of doubles (null when it has no values), the same in every run."""
    return exp.Div(this=repeatable_sum(value), expression=exp.Count(this=value.copy()))
