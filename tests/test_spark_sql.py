"""The models' SQL, written once in DuckDB's dialect, gives DuckDB's results on a real local
Spark (issue 20): each rewrite of engine/adapters/spark/sql.py against DuckDB on the construct it
rewrites, then every SQL model of a build of dirty order lines run on Spark over its inputs as
DuckDB built them, compared with DuckDB's table (text and integers exactly, floats within 1e-9
relative). tests/test_spark_engine.py compares whole builds of the sample and of dirty customers.
"""

from __future__ import annotations

import datetime
import decimal
import math
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp
from test_transactions import dirty_build  # noqa: F401 (a fixture this module uses)

from engine.adapters.spark.sql import Catalog, java_pattern, to_spark
from engine.adapters.spark.tables import to_spark_table
from engine.errors import ProjectError
from engine.project.config import load_config
from engine.project.discovery import ModelDialect, discover
from engine.project.macros import whole_number
from engine.project.repeatable_sums import repeatable_mean, repeatable_sum
from python_models._sql_scoring import create_macro

from conftest import ProjectCopy

LAYERS = ("config", "raw", "staging", "intermediate", "ml", "marts")
# A hash of the raw line: each engine's own function, compared only within that engine.
ENGINE_SPECIFIC = {"staging.stg_transactions_checked": {"line_hash"}}


# --- values that must agree ----------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
            return (math.isnan(a) and math.isnan(b)) or a == b
        return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


def _plain(value: Any) -> Any:
    """A Spark Row as the dict DuckDB gives for a struct."""
    if hasattr(value, "asDict"):
        return {k: _plain(v) for k, v in value.asDict().items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _sort_key(row: tuple) -> tuple:
    return tuple(("" if v is None else type(v).__name__, repr(v)) for v in row)


def _differences(want: list[tuple], got: list[tuple]) -> list[tuple[tuple, tuple]]:
    """Rows that differ, both sides sorted (an ORDER BY's ties may fall either way)."""
    if len(want) != len(got):
        return [(("rows", len(want)), ("rows", len(got)))]
    pairs = zip(sorted(want, key=_sort_key), sorted(got, key=_sort_key), strict=True)
    return [(w, g) for w, g in pairs if not all(_same(x, y) for x, y in zip(w, g, strict=True))]


def _spark_rows(spark: Any, sql: str) -> tuple[list[str], list[tuple]]:
    frame = spark.sql(sql)
    return frame.columns, [tuple(_plain(v) for v in row) for row in frame.collect()]


# --- each rewrite, against DuckDB ----------------------------------------------------------

REWRITE_CASES = {
    "len of a list is SIZE": "select len(['a', 'b', 'c']) as n, len([]) as none",
    "isfinite": "select x, isfinite(x) as finite from (values ('1.5'), ('nan'), ('inf'), "
    "('-inf'), (null)) as t(v), lateral (select cast(v as double) as x)",
    "quantile_cont of a list and of one fraction": "select quantile_cont(x, [0.25, 0.5]) as qs, "
    "quantile_cont(x, 0.75) as q3 from (values (1.0), (2.0), (4.0), (10.0)) as t(v), "
    "lateral (select cast(v as double) as x)",
    "list_position found and not found": "select list_position([4, 5, 6], 5) as found, "
    "list_position([4, 5, 6], 9) as missing",
    "regexp_full_match is anchored": r"select x, regexp_full_match(x, '[+-]?[0-9]+(\.0+)?') "
    "as whole from (values ('17850.0'), ('17850x0'), ('a17850'), ('-12'), ('1.5')) as t(x)",
    "list_filter of non-nulls, with IN (subquery)": "select list_filter(['a', null, case when 2 "
    "in (select 2) then 'b' end, case when 3 not in (select 3) then 'c' end], "
    "lambda r: r is not null) as kept",
    "list_filter with another lambda": "select list_filter([1, 5, 9], lambda v: v > 4) as big",
    "try_strptime with a format": "select x, try_strptime(x, '%d/%m/%Y %H:%M') as at from "
    "(values ('1/12/2010 8:26'), ('25/12/2010 18:05'), ('32/12/2010 8:26'), ('soon')) as t(x)",
    "try_strptime of fields with no separator": "select x, try_strptime(x, '%Y%m%d') as day "
    "from (values ('20231105'), ('20230230'), ('2023-11-05'), ('x')) as t(x)",
    "hash tells equal values from different ones": "select hash(1, 'a') = hash(1, 'a') as same, "
    "hash(1, 'a') = hash(1, 'b') as differs, hash(2, null) = hash(2, null) as nulls",
    "row compares as a struct": "select row(1, 'a') = row(1, 'a') as same, "
    "row(1, 'a') = row(1, 'b') as differs",
    "mode ordered: ties to the lowest": "select mode(x order by x) as most from "
    "(values (3), (1), (1), (3), (2), (null)) as t(x)",
    "UNPIVOT INTO NAME VALUE, nulls left out": "with t as (select 'k' as key, 1.5 as x, "
    "cast(null as double) as y, 2 as z), u as (unpivot t on x, y, z as zed into name "
    "statistic value v) select key, statistic, cast(v as double) as v from u",
    "ordered avg and sum": "select avg(x order by k) as mean, sum(x order by k) as total from "
    "(values (1, 0.5), (2, 0.25), (3, 4.0)) as t(k, v), lateral (select cast(v as double) as x)",
    "unnest of structs, recursive": "select id, unnest([{'a': 1, 'b': 'x'}, {'a': 2, 'b': null}],"
    " recursive := true) from (values (7)) as t(id)",
    "ln of zero, a negative, a positive, null": "select x, ln(x) as log, isfinite(ln(1 + x)) as ok"
    " from (values (0.0), (-1.0), (-3.0), (2.0), (null)) as t(v), "
    "lateral (select cast(v as double) as x)",
    "try_cast stays null on bad text": "select try_cast('31x' as integer) as bad, "
    "try_cast('7' as integer) as good, try_cast('2010-13-01' as timestamp) as no_date",
    "columns(*) of a CTE, excluded": "with t as (select 1 as a, 'x' as b, 3.5 as c) "
    "select row(*columns(* exclude (b))) = row(1, 3.5) as same from t",
    "columns(q.*) of an input table": "with lines as (select * from raw.lines) "
    "select hash(*columns(lines.* exclude (_source_file))) = hash(l.a, l.b) as same, "
    "row(*columns(l.* exclude (a, _source_file))) = row(l.b) as rest "
    "from lines, raw.lines as l where lines.a = l.a",
    "a CTE materialized, read twice": "with t as materialized (select 1 as a union all "
    "select 2) select count(*) as n, (select max(a) from t) as top from t",
}


@pytest.fixture(scope="module")
def catalogs(spark: Any) -> tuple[duckdb.DuckDBPyConnection, Catalog]:
    """raw.lines in both engines, for the rewrite that needs an input table's columns."""
    rows = "select * from (values ('a.csv', 1, 'x'), ('a.csv', 2, 'y')) as t(_source_file, a, b)"
    con = duckdb.connect()
    con.execute(f"create schema raw; create table raw.lines as {rows}")
    spark.sql("create database if not exists raw")
    spark.sql("drop table if exists raw.lines")
    spark.sql(f"create table raw.lines using parquet as {rows}")
    return con, {"raw.lines": ("_source_file", "a", "b")}


@pytest.mark.parametrize("sql", REWRITE_CASES.values(), ids=REWRITE_CASES.keys())
def test_a_rewrite_gives_duckdbs_result_on_spark(spark: Any, catalogs: tuple, sql: str) -> None:
    con, catalog = catalogs
    query = sqlglot.parse_one(sql, dialect=ModelDialect)
    duckdb_result = con.sql(query.sql("duckdb"))
    want = [tuple(r.values()) for r in duckdb_result.to_arrow_table().to_pylist()]
    columns, got = _spark_rows(spark, to_spark(query, catalog))
    assert columns == duckdb_result.columns
    assert want, "a case must return rows"
    assert not _differences(want, got), (want, got)


def test_whole_numbers_read_alike(spark: Any) -> None:
    """The whole_number() macro: digits, or a whole number written as a float, else null."""
    texts = ["17850", "17850.0", "17850.00", "-4", "+3", "007", "-0", "12.5", "1e1", "1_00"]
    texts += ["17850x0", "", "9223372036854775807", "9223372036854775808"]
    con = duckdb.connect()
    for text in texts:
        query = exp.select(whole_number(exp.Literal.string(text), "bigint").as_("n"))
        want = con.sql(query.sql("duckdb")).fetchall()
        assert _spark_rows(spark, to_spark(query, {}))[1] == want, text


def test_repeatable_sums_read_alike(spark: Any) -> None:
    """The repeatable_sum() and repeatable_mean() macros give DuckDB's sums bit for bit (their
    digits are exact in both engines), also past their range (the plain sum, within rounding)
    and with no values (null)."""
    x = exp.column("x")
    sums = f"{repeatable_sum(x).sql('duckdb')} as total, {repeatable_mean(x).sql('duckdb')} as mean"
    con = duckdb.connect()
    for values in ["('0.1'), ('-2.5'), ('1234567.891')", "('1.5'), ('1e30')", "(null)"]:
        sql = f"select {sums} from (select cast(v as double) as x from (values {values}) as t(v))"
        query = sqlglot.parse_one(sql, dialect=ModelDialect)
        want = con.sql(query.sql("duckdb")).fetchall()
        assert not _differences(want, _spark_rows(spark, to_spark(query, {}))[1]), values
    rng = random.Random(8)
    values = ", ".join(
        f"({i % 50}, '{rng.choice((-1, 1)) * 2 ** rng.uniform(-40, 61.99)!r}')" for i in range(2000)
    )
    rows = f"(select g, cast(v as double) as x from (values {values}) as t(g, v))"
    sql = f"select g, {sums} from {rows} group by g order by g"
    query = sqlglot.parse_one(sql, dialect=ModelDialect)
    want = con.sql(query.sql("duckdb")).fetchall()
    assert _spark_rows(spark, to_spark(query, {}))[1] == want


def test_strptime_codes_become_java_patterns() -> None:
    assert java_pattern("%d/%m/%Y %H:%M") == "d/M/yyyy H:m"
    assert java_pattern("%Y%m%dT%H%M%S") == "yyyyMMdd'T'HHmmss"
    with pytest.raises(ProjectError, match="%Q"):
        java_pattern("%Y-%Q")


def test_what_spark_cannot_unpivot_is_named() -> None:
    query = sqlglot.parse_one(
        "with u as (unpivot t on cast(n as double) as n into name s value v) select * from u",
        dialect=ModelDialect,
    )
    with pytest.raises(ProjectError, match=r"CAST\(n AS DOUBLE\)"):
        to_spark(query, {})


# --- every model of a build --------------------------------------------------------------


def empty_spark_layers(spark: Any) -> None:
    """The layers' Spark databases dropped: a test's tables come from its own build."""
    for layer in LAYERS:
        spark.sql(f"drop database if exists `{layer}` cascade")


def mirror_inputs(
    spark: Any,
    con: duckdb.DuckDBPyConnection,
    tables: tuple[str, ...],
    catalog: dict[str, tuple[str, ...]],
    folder: Path,
) -> None:
    """DuckDB's tables into Spark, once each; ``catalog`` records their columns."""
    for table in tables:
        if table not in catalog:
            to_spark_table(spark, con, table, folder)
            catalog[table] = tuple(spark.table(table).columns)


def _compare_every_model(spark: Any, copy: ProjectCopy, config: Path, folder: Path) -> int:
    """Run every SQL model on Spark over DuckDB's tables; the number of models compared."""
    empty_spark_layers(spark)
    project = discover(copy.root, load_config(config))
    con = duckdb.connect(str(copy.warehouse), read_only=True)
    catalog: dict[str, tuple[str, ...]] = {}
    compared = 0
    for table in project.order:
        model = project.models[table]
        if model.kind != "sql":
            continue
        mirror_inputs(spark, con, model.inputs, catalog, folder)
        layer, name = table.split(".", 1)
        duckdb_table = con.sql(exp.select("*").from_(exp.table_(name, db=layer)).sql("duckdb"))
        columns, got = _spark_rows(spark, to_spark(model.query, catalog))
        assert columns == duckdb_table.columns, table
        keep = [i for i, c in enumerate(columns) if c not in ENGINE_SPECIFIC.get(table, ())]
        want = [tuple(r.values()) for r in duckdb_table.to_arrow_table().to_pylist()]
        differences = _differences(
            [tuple(r[i] for i in keep) for r in want], [tuple(r[i] for i in keep) for r in got]
        )
        assert not differences, (table, _first_difference(columns, keep, differences))
        compared += 1
    con.close()
    return compared


def _first_difference(columns: list[str], keep: list[int], differences: list) -> dict:
    want, got = differences[0]
    named = [columns[i] for i in keep]
    return {n: (w, g) for n, w, g in zip(named, want, got, strict=False) if not _same(w, g)}


def test_every_model_of_dirty_order_lines_agrees(
    spark: Any,
    dirty_build: tuple,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    copy, expected, _ = dirty_build
    assert sum(1 for reasons in expected.values() if reasons and reasons != "collapsed") >= 12
    assert _compare_every_model(spark, copy, copy.config, tmp_path) >= 20


def test_values_compare_by_type_and_tolerance() -> None:
    """The comparison itself: it must tell what differs."""
    assert _same(1.0, 1.0 + 1e-12) and not _same(1.0, 1.0 + 1e-6)
    assert not _same(1, 1.0) and not _same("1", 1) and not _same(None, 0)
    assert _same(float("nan"), float("nan")) and not _same(float("inf"), float("-inf"))
    assert _same([{"a": 1}], [{"a": 1}]) and not _same([{"a": 1}], [{"b": 1}])
    assert not _same(decimal.Decimal("1.5"), 1.5)
    assert _same(datetime.date(2024, 1, 1), datetime.date(2024, 1, 1))
    assert _differences([(1,), (2,)], [(2,), (1,)]) == []
    assert _differences([(1,), (2,)], [(1,), (3,)]) == [((2,), (3,))]


def _scorers(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[list[str], exp.Expression]]:
    """The ml macros the sample's build installed: name -> (parameters, body)."""
    rows = con.execute(
        "select function_name, parameters, macro_definition from duckdb_functions() "
        "where schema_name = 'ml' and function_type = 'macro'"
    ).fetchall()
    return {n: (list(p), sqlglot.parse_one(d, dialect="duckdb")) for n, p, d in rows}


def test_the_generated_scorers_agree_on_spark(
    spark: Any, built_sample: ProjectCopy, tmp_path: Path
) -> None:
    """ml.assign_segment and ml.surrogate_segment as Spark SQL functions give DuckDB's segment
    on every customer and on points placed exactly on the surrogate tree's thresholds."""
    con = duckdb.connect(str(built_sample.warehouse), read_only=True)
    scorers = _scorers(con)
    # ml.probability_alive takes a customer's purchase summary, not the features; without order
    # lines it is null (tests/test_customer_value.py runs it on Spark with a fit).
    assert str(scorers.pop("probability_alive")[1]).upper() == "CAST(NULL AS DOUBLE)"
    assert set(scorers) == {"assign_segment", "surrogate_segment"}
    features = scorers["assign_segment"][0]
    thresholds = sorted(
        {
            float(node.this.name)
            for node in scorers["surrogate_segment"][1].find_all(exp.Cast)
            if isinstance(node.this, exp.Literal) and node.this.is_string
        }
    )
    assert len(thresholds) >= 5
    points = duckdb.connect()
    customers = con.sql(
        exp.select(*features).from_("intermediate.int_customer_features").sql("duckdb")
    ).fetchall()
    rows = [list(c) for c in customers]
    rows += [
        [t if i == f else c[i] for i in range(len(features))]
        for c in customers[:20]
        for t in thresholds
        for f in range(len(features))
    ]
    points.execute(
        "create table points as select * from (values "
        + ", ".join("(" + ", ".join(repr(float(v)) for v in r) + ")" for r in rows)
        + ") as t("
        + ", ".join(f'"{f}"' for f in features)
        + ")"
    )
    path = tmp_path / "points.parquet"
    points.execute(f"copy points to '{path}' (format parquet)")
    spark.sql("create database if not exists ml")
    spark.sql(f"create or replace temporary view points as select * from parquet.`{path}`")
    calls, arguments = [], ", ".join(f'"{f}"' for f in features)
    for name, (parameters, body) in scorers.items():
        macro = create_macro("ml", name, parameters, body)
        points.execute("create schema if not exists ml")
        points.execute(macro.sql("duckdb"))
        spark.sql(to_spark(macro, {}))
        calls.append(f"ml.{name}({arguments}) as {name}")
    query = sqlglot.parse_one(f"select {arguments}, {', '.join(calls)} from points", "duckdb")
    want = points.sql(query.sql("duckdb")).fetchall()
    _, got = _spark_rows(spark, to_spark(query, {}))
    assert len(want) == len(rows) >= 200 + 20 * 5 * len(features)
    assert not _differences(want, got)


def test_the_engines_own_statements_run_on_spark(spark: Any) -> None:
    """What the engine runs around a model (engine/warehouse/statements.py), through the same seam:
    create its layer and table, append a part, describe it, count, read, empty it."""
    from engine.warehouse import statements

    def run(sql: str) -> list[tuple]:
        return _spark_rows(spark, to_spark(sqlglot.parse_one(sql, dialect="duckdb"), {}))[1]

    spark.sql("drop database if exists `seam` cascade")
    run(statements.create_schema("seam"))
    query = sqlglot.parse_one("select 1 as id, 'a' as name", dialect="duckdb")
    run(statements.create_table_as("seam", "t", query))
    spark.sql("select 'b' as name, 2 as id").createOrReplaceTempView("__model_output")
    run(statements.insert_by_name("seam", "t", "__model_output"))
    run(statements.comment_on_table("seam", "t", "A table"))
    run(statements.comment_on_column("seam", "t", "name", "The name"))
    assert run(statements.row_count("seam", "t")) == [(2,)]
    assert sorted(run(statements.select_columns("seam", "t", ["id", "name"]))) == [
        (1, "a"),
        (2, "b"),
    ]
    columns = {c.name: c.description for c in spark.catalog.listColumns("seam.t")}
    assert columns == {"id": None, "name": "The name"}
    assert spark.catalog.getTable("seam.t").description == "A table"
    run(statements.delete_all("seam", "t"))
    assert run(statements.row_count("seam", "t")) == [(0,)]


def test_a_table_small_only_as_compressed_files_is_not_broadcast_when_planned(
    spark: Any, tmp_path: Path
) -> None:
    """Spark sizes a Parquet table by its files, which hold its rows several times smaller than
    memory does. At 1M customers a 9 MB table was broadcast to joins, and three models doing so
    at once ran the 1 GiB driver out of memory; the session counts files at ten times their
    size, so such a join is planned without a broadcast (adaptive execution may still make it
    one, from the size it finds)."""
    location = tmp_path / "customers"
    spark.range(300_000).selectExpr("id", "id * 7 as other").write.parquet(str(location))
    size = sum(f.stat().st_size for f in location.glob("*.parquet"))
    assert 1_000_000 < size < 10_000_000  # as files, under the 10 MB broadcast threshold
    table = spark.read.parquet(str(location))
    joined = table.alias("a").join(table.alias("b"), "id")
    plan = joined._jdf.queryExecution().executedPlan().toString()
    assert "SortMergeJoin" in plan and "Broadcast" not in plan, plan
