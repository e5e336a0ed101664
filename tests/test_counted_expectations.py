"""Expectations DuckDB counts (engine/checks/counted_expectations.py) against GX on the same rows.

GX is the reference: each table is validated both ways, GX on the pandas frame the validation
worker would get (DuckDB -> Arrow -> pandas), and every field of every result must agree. The
unexpected values are compared as values: GX's pandas frames write a missing value as NaN and an
integer as a string or a float, the counted path as JSON null and integers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from engine.checks import counted_expectations
from engine.checks.expectations import ExpectationResult, Suite, Validator
from engine.warehouse.catalog import BuildCatalog
from tests.conftest import ProjectCopy

TABLE = """
create table main.t as select * from (values
    (1, 1.0, 'x', true), (2, null, 'y', false), (2, 3.5, null, true), (3, -1.0, 'z', true),
    (null, 7.0, 'x', false), (5, 2.0, 'q', null), (5, 2.0, 'x', true), (5, 100.0, 'x', false),
    (null, 'nan'::double, null, true), (null, null, null, true)
) as v(id, a, s, flag)
"""
ON_FLAG = {"condition_parser": "pandas"}
EXPECTATIONS: list[dict[str, Any]] = [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 10, "max_value": 20}},
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": None}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
    {
        "type": "expect_column_values_to_not_be_null",
        "kwargs": {"column": "s", "row_condition": "flag == True", **ON_FLAG},
    },
    {
        "type": "expect_column_values_to_be_null",
        "kwargs": {"column": "s", "row_condition": "flag == False", **ON_FLAG},
    },
    {  # an empty domain: no percentage
        "type": "expect_column_values_to_be_null",
        "kwargs": {"column": "s", "row_condition": "id == 99", **ON_FLAG},
    },
    {
        "type": "expect_column_values_to_be_null",
        "kwargs": {"column": "a", "row_condition": "s == 'x' and flag == True", **ON_FLAG},
    },
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "a"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "flag"}},
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["id", "s"]}},
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["a", "s"]}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "s", "value_set": ["x"]}},
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "s", "value_set": {"$PARAMETER": "known"}},
    },
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "id", "value_set": [1, 2]}},
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "flag", "value_set": [True]},
    },
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "a", "min_value": 0, "max_value": {"$PARAMETER": "a_max"}},
    },
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "a", "min_value": 2, "strict_min": True},
    },
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "a", "max_value": 3.5, "strict_max": True},
    },
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "id", "min_value": 2, "max_value": 4},
        "severity": "warning",
    },
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "id", "min_value": None, "max_value": 4},
    },
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {
            "column": "a",
            "min_value": -5,
            "max_value": 50,
            "row_condition": "flag == False",
            **ON_FLAG,
        },
    },
]
PARAMETERS = {"a_max": 50, "known": ["x", "y"]}
# Each is either of a kind, an argument or a condition counting could judge differently from
# pandas, so GX keeps it.
LEFT_TO_GX: list[dict[str, Any]] = [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a", "mostly": 0.5}},
    {
        "type": "expect_column_values_to_not_be_null",
        "kwargs": {"column": "a", "row_condition": "s != 'x'", **ON_FLAG},
    },
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "s", "min_value": 1}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "s", "value_set": [1]}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "id", "value_set": ["1"]}},
    {"type": "expect_column_max_to_be_between", "kwargs": {"column": "a", "min_value": 1}},
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "a", "max_value": math.inf},
    },
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "no_such_column"}},
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "a", "min_value": {"$PARAMETER": "nobody_set_this"}},
    },
]


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def _suite(expectations: list[dict[str, Any]]) -> Suite:
    return Suite("main.t", Path("main.t.json"), {"name": "main.t", "expectations": expectations})


def _both_ways(
    con: duckdb.DuckDBPyConnection, validator: Validator, suite: Suite, parameters: dict[str, Any]
) -> tuple[list[ExpectationResult], list[ExpectationResult]]:
    arrow = con.sql("select * from main.t").to_arrow_table()
    planned = counted_expectations.plan(suite, parameters, arrow.schema)
    assert [c.position for c in planned] == suite.data_positions  # every one was counted

    def query(sql: str) -> list[tuple[Any, ...]]:
        return con.sql(sql).fetchall()

    counted = counted_expectations.check(query, "main.t", suite, planned)
    by_gx = validator.validate(suite, arrow.to_pandas(split_blocks=True), parameters)
    return counted, by_gx


def _value(value: Any) -> Any:
    """A shown value as a value: NaN is missing, and 2, 2.0 and "2" are the number 2."""
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _comparable(result: ExpectationResult) -> tuple[Any, ...]:
    shown = result.unexpected_values
    values = None if shown is None else [_value(v) for v in json.loads(shown)]
    fields = {**result.__dict__, "unexpected_values": values}
    return tuple(sorted(fields.items(), key=lambda item: item[0]))


def _assert_same(counted: list[ExpectationResult], by_gx: list[ExpectationResult]) -> None:
    assert len(counted) == len(by_gx)
    mine = sorted(map(_comparable, counted), key=repr)
    theirs = sorted(map(_comparable, by_gx), key=repr)
    for one, other in zip(mine, theirs, strict=True):
        assert one == other


def test_every_field_equals_gx_on_the_same_rows(validator: Validator) -> None:
    con = duckdb.connect()
    con.sql(TABLE)
    counted, by_gx = _both_ways(con, validator, _suite(EXPECTATIONS), PARAMETERS)
    assert sum(not r.success for r in by_gx) >= 15  # the failures are what is compared
    _assert_same(counted, by_gx)


def test_what_counting_could_judge_differently_is_left_to_gx() -> None:
    con = duckdb.connect()
    con.sql(TABLE)
    schema = con.sql("select * from main.t").to_arrow_table().schema
    suite = _suite([*LEFT_TO_GX, EXPECTATIONS[0]])
    planned = counted_expectations.plan(suite, {}, schema)
    assert [c.position for c in planned] == [len(LEFT_TO_GX)]


@pytest.mark.parametrize("seed", range(6))
def test_random_tables_give_gx_figures(validator: Validator, seed: int) -> None:
    # Columns with missing values, NaN, repeats and values on the bounds, seeded.
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(0, 400))
    con = duckdb.connect()
    con.execute(
        "create table main.t as select * from (select unnest($ids) as id, unnest($xs) as x, "
        "unnest($labels) as label, unnest($flags) as flag)",
        {
            "ids": [
                None if rng.random() < 0.1 else int(v) for v in rng.integers(0, rows + 5, rows)
            ],
            "xs": [
                None if rng.random() < 0.05 else (math.nan if rng.random() < 0.05 else float(v))
                for v in rng.integers(-3, 12, rows)
            ],
            "labels": [
                None if rng.random() < 0.1 else str(v) for v in rng.choice(list("abcd"), rows)
            ],
            "flags": [None if rng.random() < 0.1 else bool(v) for v in rng.integers(0, 2, rows)],
        },
    )
    low, high = sorted(int(v) for v in rng.integers(-3, 12, 2))
    condition = {"row_condition": "flag == True", **ON_FLAG}
    suite = _suite(
        [
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 100}},
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}},
            {"type": "expect_column_values_to_be_null", "kwargs": {"column": "id", **condition}},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "x"}},
            {
                "type": "expect_compound_columns_to_be_unique",
                "kwargs": {"column_list": ["id", "label"]},
            },
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "label", "value_set": ["a", "b"]},
            },
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "x", "min_value": low, "max_value": high, **condition},
            },
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "id", "min_value": low, "strict_min": True},
            },
        ]
    )
    counted, by_gx = _both_ways(con, validator, suite, {})
    _assert_same(counted, by_gx)


# A segmented customer has no unsegmented_reason: all 200 fail, as a warning.
FAILING_WARNING = {
    "type": "expect_column_values_to_not_be_null",
    "kwargs": {"column": "unsegmented_reason"},
    "severity": "warning",
}


def _run_recording(project: ProjectCopy, counted_from: int) -> list[tuple[Any, ...]]:
    project.config.write_text(
        project.config.read_text().replace(
            "[warehouse]\n", f"[warehouse]\ncounted_validation_rows = {counted_from}\n", 1
        )
    )
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    return project.query(
        "select * exclude (run_id) from meta.expectation_results "
        "where run_id = (select max(run_id) from meta.runs)"
    )


def test_counting_every_table_publishes_what_gx_records(tmp_path: Path) -> None:
    from tests.conftest import copy_project

    by_gx = copy_project(tmp_path / "gx")
    counted = copy_project(tmp_path / "counted")
    for project in (by_gx, counted):
        path = project.root / "expectations" / "intermediate.int_customer_profiles.json"
        suite = json.loads(path.read_text())
        suite["expectations"].append(FAILING_WARNING)
        path.write_text(json.dumps(suite))
    gx_rows = _run_recording(by_gx, 10**12)
    counted_rows = _run_recording(counted, 0)
    columns = [c.name for c in ExpectationResult.__dataclass_fields__.values()]
    as_results = [
        [ExpectationResult(**dict(zip(columns, row, strict=True))) for row in rows]
        for rows in (gx_rows, counted_rows)
    ]
    failed = [
        [r for r in results if r.column_name == "unsegmented_reason" and not r.success]
        for results in as_results
    ]
    assert failed[0][0].unexpected_count == failed[1][0].unexpected_count == 200
    # The key took effect: GX writes pandas' missing text as NaN, counting as null.
    assert failed[0][0].unexpected_values == "[NaN, NaN, NaN, NaN, NaN]"
    assert failed[1][0].unexpected_values == "[null, null, null, null, null]"
    _assert_same(as_results[1], as_results[0])


def _build_file(tmp_path: Path) -> BuildCatalog:
    return BuildCatalog.open(tmp_path / "build.duckdb", tmp_path / "none.duckdb", "v1.4.0")


@pytest.mark.parametrize("copies", [1, 3])
def test_a_dense_key_of_a_big_table_counts_as_gx_does(
    tmp_path: Path, validator: Validator, copies: int
) -> None:
    # 100,000 ids 1..100,000 (one of them in `copies` rows): the build's counting connection
    # may group such a key through DuckDB's perfect hash aggregate.
    catalog = _build_file(tmp_path)
    catalog.con.execute(
        "create table main.t as select * from ("
        "select i as id, i % 7 as x from range(1, 100001) r(i) "
        "union all select 31415 as id, 31415 % 7 as x from range(?)) order by hash(id, x)",
        [copies - 1],
    )
    suite = _suite(
        [
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
            {
                "type": "expect_compound_columns_to_be_unique",
                "kwargs": {"column_list": ["id", "x"]},
            },
        ]
    )
    rows = catalog.row_count("main.t")
    arrow = catalog.fetch_arrow("main.t")
    planned = counted_expectations.plan(suite, {}, arrow.schema)
    counted = counted_expectations.check(catalog.counting(rows), "main.t", suite, planned)
    by_gx = validator.validate(suite, arrow.to_pandas(split_blocks=True), {})
    assert [r.unexpected_count for r in counted] == [0 if copies == 1 else copies] * 2
    _assert_same(counted, by_gx)
    catalog.close()


def test_counting_groups_a_dense_key_by_its_value(tmp_path: Path) -> None:
    # What makes counting a 10M-row table's ids cheap: an array indexed by the id, not a hash
    # table. A model's queries keep DuckDB's default, under which the same key is hashed.
    catalog = _build_file(tmp_path)
    catalog.con.execute("create table main.t as select i as id from range(1, 100001) r(i)")
    query = "explain select count(distinct id) from main.t"

    def group_by(run: Any) -> list[str]:
        plan = run(query)[0][1]
        return [line for line in plan.splitlines() if "Group By" in line]

    assert any("Perfect Hash" in line for line in group_by(catalog.counting(100_000)))
    assert not any("Perfect Hash" in line for line in group_by(catalog.query))
    catalog.close()
