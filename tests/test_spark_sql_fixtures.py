"""Each Spark SQL rewrite (engine/adapters/spark/sql.py) on a DuckDB fixture, checked without a JVM.

The expected Spark SQL below is written by hand, construct by construct, from what Spark needs
to give DuckDB's result (tests/test_spark_sql.py runs the same constructs on a real Spark and
compares the rows). A rewrite that stops firing, or fires differently, shows here in a second,
with no Spark started.
"""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from engine.adapters.spark.sql import REWRITES, expand_columns, to_spark
from engine.project.discovery import ModelDialect
from engine.warehouse import statements

# rewrite function -> (the models' DuckDB SQL, the Spark SQL it must become)
FIXTURES: dict[str, tuple[str | exp.Expression, str]] = {
    "is_finite": (
        "select isfinite(x) from t",
        "SELECT ABS(x) < CAST('Infinity' AS DOUBLE) FROM t",
    ),
    "quantiles": (
        "select quantile_cont(x, [0.25, 0.5]) from t",
        "SELECT PERCENTILE(x, ARRAY(0.25, 0.5)) FROM t",
    ),
    "list_position": (
        "select list_position(l, 5) from t",
        "SELECT CAST(NULLIF(ARRAY_POSITION(l, 5), 0) AS INT) FROM t",
    ),
    "full_match": (
        "select regexp_full_match(x, '[0-9]+') from t",
        "SELECT x RLIKE '^(?:[0-9]+)$' FROM t",
    ),
    "non_null_elements": (
        "select list_filter(l, lambda r: r is not null) from t",
        "SELECT ARRAY_COMPACT(l) FROM t",
    ),
    "parse_timestamp": (
        "select try_strptime(x, '%Y%m%d') from t",
        "SELECT TRY_TO_TIMESTAMP(x, 'yyyyMMdd') FROM t",
    ),
    "line_hash": ("select hash(a, b) from t", "SELECT XXHASH64(a, b) FROM t"),
    "row_value": ("select row(a, b) from t", "SELECT STRUCT(a, b) FROM t"),
    "ordered_mode": ("select mode(x order by x) from t", "SELECT MODE(x, TRUE) FROM t"),
    "unpivot": (
        "with u as (unpivot t on x, y as why into name statistic value v) "
        "select statistic, v from u",
        "WITH u AS (SELECT * FROM (SELECT * FROM t) UNPIVOT(`v` FOR `statistic` IN "
        "(x, y AS why))) SELECT statistic, v FROM u",
    ),
    "unordered_aggregate": ("select avg(x order by k) from t", "SELECT AVG(x) FROM t"),
    "struct_rows": (
        "select id, unnest(l, recursive := true) from t",
        "SELECT id, INLINE(l) FROM t",
    ),
    "natural_log": (
        "select ln(x) from t",
        "SELECT CASE WHEN x > 0 THEN LN(x) WHEN x = 0 THEN CAST('-Infinity' AS DOUBLE) "
        "WHEN x < 0 THEN CAST('NaN' AS DOUBLE) END FROM t",
    ),
    # As engine/project/macros.py builds it: an expression, which sqlglot does not mark safe
    # the way it marks a parsed TRY_CAST.
    "try_casts": (
        exp.select(exp.TryCast(this=exp.column("x"), to=exp.DataType.build("int"))).from_("t"),
        "SELECT TRY_CAST(x AS INT) FROM t",
    ),
    "macro_as_function": (
        "create macro ml.plus_one(x) as x + 1",
        "CREATE FUNCTION ml.plus_one(`x` DOUBLE) RETURN x + 1",
    ),
    "parquet_table": (
        statements.create_table_as("s", "t", sqlglot.parse_one("select 1 as a")),
        "CREATE TABLE `s`.`t` USING PARQUET AS SELECT 1 AS a",
    ),
    "column_comment": (
        statements.comment_on_column("s", "t", "a", "the a"),
        "ALTER TABLE `s`.`t` ALTER COLUMN `a` COMMENT 'the a'",
    ),
    "delete_all": (statements.delete_all("s", "t"), "TRUNCATE TABLE `s`.`t`"),
    "materialized_once": (
        "with a as materialized (select 1 as x from t where y) select x from a",
        "WITH a AS (SELECT 1 AS x FROM t WHERE y AND RAND() >= 0) SELECT x FROM a",
    ),
}

# More cases of a rewrite (materialized_once on a union, and not materialized), and rewrites
# not in REWRITES: the models' len() of a list (ModelDialect) and columns(*) listed from the
# input tables' columns (expand_columns, which needs the catalog).
MORE: dict[str, tuple[str, str]] = {
    "a materialized union": (
        "with t as materialized (select 1 as a union all select 2) select count(*) from t",
        "WITH t AS (SELECT * FROM (SELECT 1 AS a UNION ALL SELECT 2) AS materialized "
        "WHERE RAND() >= 0) SELECT COUNT(*) FROM t",
    ),
    "a CTE not materialized": (
        "with a as not materialized (select 1 as x from t) select x from a",
        "WITH a AS (SELECT 1 AS x FROM t) SELECT x FROM a",
    ),
    "len of a list": ("select len(l) from t", "SELECT SIZE(l) FROM t"),
    "columns(*) of a CTE": (
        "with t as (select 1 as a, 'x' as b, 3.5 as c) select row(*columns(* exclude (b))) from t",
        "WITH t AS (SELECT 1 AS a, 'x' AS b, 3.5 AS c) SELECT STRUCT(`a`, `c`) FROM t",
    ),
    "columns(q.*) of an input table": (
        "select hash(*columns(l.* exclude (a))) from raw.lines as l",
        "SELECT XXHASH64(`l`.`b`, `l`.`c`) FROM raw.lines AS l",
    ),
}
CATALOG = {"raw.lines": ("a", "b", "c")}


def _spark(duckdb_sql: str | exp.Expression) -> str:
    if isinstance(duckdb_sql, str):
        duckdb_sql = sqlglot.parse_one(duckdb_sql, dialect=ModelDialect)
    return to_spark(duckdb_sql, CATALOG)


@pytest.mark.parametrize("name", [*FIXTURES, *MORE])
def test_a_rewrite_writes_the_spark_sql_it_must(name: str) -> None:
    duckdb_sql, spark_sql = FIXTURES.get(name) or MORE[name]
    assert _spark(duckdb_sql) == spark_sql


def test_every_rewrite_has_a_fixture() -> None:
    assert {r.__name__ for r in REWRITES} == set(FIXTURES)
    assert expand_columns.__name__ == "expand_columns"  # the one rewrite outside REWRITES


def test_a_fixture_fails_without_its_rewrite(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixtures are what the rewrites do, not what sqlglot does anyway."""
    from engine.adapters.spark import sql

    for rewrite in REWRITES:
        others = tuple(r for r in REWRITES if r is not rewrite)
        monkeypatch.setattr(sql, "REWRITES", others)
        duckdb_sql, spark_sql = FIXTURES[rewrite.__name__]
        try:
            written = _spark(duckdb_sql)
        except Exception:  # sqlglot or the engine refuses it outright: also not Spark's SQL
            continue
        assert written != spark_sql, rewrite.__name__
