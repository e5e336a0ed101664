"""repeatable_sum() and repeatable_mean() (engine/project/repeatable_sums.py): the same bits
whatever order DuckDB adds the rows in, and within a few ulp of the correctly rounded sum
(math.fsum). tests/test_spark_sql.py runs the same expressions on Spark;
tests/test_same_results.py builds a 300k workspace twice and finds every table identical."""

from __future__ import annotations

import math
import random

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

from engine.project.repeatable_sums import repeatable_mean, repeatable_sum

SUM = repeatable_sum(exp.column("x")).sql("duckdb")
MEAN = repeatable_mean(exp.column("x")).sql("duckdb")


def _values(n: int, seed: int) -> list[float]:
    """Signs and magnitudes from 1e-9 to 1e12 mixed, as features and amounts are."""
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) * 10 ** rng.uniform(-9, 12) for _ in range(n)]


def _table(con: duckdb.DuckDBPyConnection, values: list[float], order_seed: int) -> None:
    con.register("shuffled", pa.table({"x": random.Random(order_seed).sample(values, len(values))}))
    con.execute("create or replace table t as select x from shuffled")
    con.unregister("shuffled")


@pytest.mark.parametrize("threads", [1, 2])
def test_the_sum_is_the_same_in_any_order_and_near_the_correctly_rounded_one(
    threads: int,
) -> None:
    values = _values(300_000, seed=3)
    con = duckdb.connect(config={"threads": threads})
    results = set()
    for order_seed in range(3):
        _table(con, values, order_seed)
        results.add(con.execute(f"select {SUM}, {MEAN} from t").fetchall()[0])
    assert len(results) == 1, results
    ((total, mean),) = results
    exact = math.fsum(values)
    assert abs(total - exact) <= 4 * math.ulp(exact), (total, exact)
    assert abs(mean - exact / len(values)) <= 4 * math.ulp(exact / len(values))


def test_groups_of_a_split_table_sum_alike_on_one_thread_and_on_two() -> None:
    """Each group's sum is the same whether one thread or two added it up."""
    rng = random.Random(11)
    query = (
        f"select g, {SUM} as s, {MEAN} as m from (select x, g from t, "
        "lateral (select cast(hash(x) % 7 as integer) as g)) group by g order by g"
    )
    values = [rng.gauss(40, 15) for _ in range(500_000)]
    results = []
    for threads in (1, 2):
        con = duckdb.connect(config={"threads": threads})
        _table(con, values, order_seed=threads)
        results.append(con.execute(query).fetchall())
    assert results[0] == results[1]
    assert len(results[0]) == 7


def test_every_value_alone_sums_to_itself_exactly() -> None:
    """Each value's five digits are taken without rounding: one value's sum and mean are that
    value, bit for bit, from 2^-40 (whose bits reach down to 2^-93) to just below 2^62."""
    rng = random.Random(5)
    values = [rng.choice((-1, 1)) * 2 ** rng.uniform(-40, 61.99) for _ in range(20_000)]
    values += [0.0, -0.0, 1.0, -1.0, 0.5, 2.0**31, -(2.0**31), 2.0**62 - 2.0**9, 1e-12]
    con = duckdb.connect()
    con.register("v", pa.table({"id": list(range(len(values))), "x": values}))
    got = con.execute(f"select id, {SUM}, {MEAN} from v group by id order by id").fetchall()
    mismatched = [(values[i], s, m) for i, s, m in got if not s == m == values[i]]
    assert not mismatched, mismatched[:5]


def test_a_sum_that_cancels_to_near_zero_keeps_its_digits() -> None:
    """Standardised features sum to almost nothing. The digits below 2^-31 are rounded once,
    so the error stays below n * 2^-31 * 2^-53 (1e-20 here), far below the sum itself. A sum
    split into whole parts and rests, each turned into a double before they are added, loses
    the rests' last bits: about 1e-14 here."""
    rng = random.Random(17)
    values = [rng.uniform(-1.5, 1.5) for _ in range(200_000)]
    values.append(-math.fsum(values) + 3.3e-12)
    exact = math.fsum(values)
    con = duckdb.connect()
    _table(con, values, order_seed=1)
    ((total,),) = con.execute(f"select {SUM} from t").fetchall()
    assert abs(exact) > 1e-12
    assert abs(total - exact) <= 1e-18, (total, exact)


def test_out_of_range_nan_and_no_values_fall_back_to_plain_sums() -> None:
    """Past 2^62, or with NaN or infinity, the digits would overflow or not exist: the engine's
    own sum is taken, so such input gives the sum it always gave instead of an error."""
    con = duckdb.connect()
    cases = {
        "('1.5'), ('1e30')": (1e30 + 1.5, (1e30 + 1.5) / 2),
        "('1.5'), ('nan')": (math.nan, math.nan),
        "('1.5'), ('-inf')": (-math.inf, -math.inf),
        "('1.5'), ('4611686018427387904')": (2.0**62 + 1.5, (2.0**62 + 1.5) / 2),
        "(null), (null)": (None, None),
        "('-2.5'), ('2.5'), ('-0.5')": (-0.5, -0.5 / 3),
    }
    for rows, (want_sum, want_mean) in cases.items():
        got = con.execute(
            f"select {SUM}, {MEAN} from (values {rows}) as v(y), "
            "lateral (select cast(y as double) as x)"
        ).fetchall()[0]
        for value, want in zip(got, (want_sum, want_mean), strict=True):
            if want is None or math.isnan(want):
                assert value is want or math.isnan(value), (rows, got)
            else:
                assert value == pytest.approx(want, rel=1e-15), (rows, got)
    no_rows = f"select {SUM}, {MEAN} from (select 1.0 as x) where false"
    assert con.execute(no_rows).fetchall() == [(None, None)]
