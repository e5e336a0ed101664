"""Expectations on Spark (issue 20): every suite of the sample, run by GX's Spark data source on
the table as Spark holds it, gives the outcome the pandas path gives on DuckDB's table,
expectation by expectation; and a table made to break its suite fails the same expectations
with the same unexpected counts on both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from py4j.protocol import Py4JError
from pyspark.errors import AnalysisException
from test_spark_sql import empty_spark_layers, mirror_inputs

from engine.adapters.spark.engine import _spark_failures
from engine.adapters.spark.expectations import spark_validator
from engine.checks.expectations import ExpectationResult, Validator, load_suites
from engine.errors import ModelError
from engine.project.column_sets import column_sets
from engine.project.config import load_config
from engine.project.discovery import Model, discover, model_configs
from engine.refresh.runner import expectation_parameters
from engine.warehouse.catalog import fetch_arrow

from conftest import ProjectCopy


def _outcome(results: list[ExpectationResult]) -> list[tuple]:
    """What must agree; a row condition or a type is written for each engine: left out."""
    return [
        (r.expectation_type, r.column_name, _without_condition(r.kwargs), r.success, r.error)
        for r in results
    ]


def _counts(results: list[ExpectationResult]) -> list[int | None]:
    return [r.unexpected_count for r in results]


def _without_condition(kwargs: str) -> dict:
    return {
        k: v
        for k, v in json.loads(kwargs).items()
        if k not in ("row_condition", "condition_parser", "type_", "type_list")
    }


@pytest.fixture(scope="module")
def validators() -> tuple[Validator, Validator]:
    return Validator(), spark_validator()


def test_every_suite_agrees_on_spark(
    spark: Any, built_sample: ProjectCopy, tmp_path: Path, validators: tuple
) -> None:
    pandas_gx, spark_gx = validators
    empty_spark_layers(spark)
    config = load_config(built_sample.config)
    project = discover(built_sample.root, config)
    absent = frozenset(n for n, s in config.sources.items() if s.implicit)
    suites = load_suites(built_sample.root / "expectations", column_sets(config), absent)
    parameters = expectation_parameters(config, model_configs(project, config))
    con = duckdb.connect(str(built_sample.warehouse), read_only=True)
    mirror_inputs(spark, con, tuple(suites), {}, tmp_path)
    for table, suite in suites.items():
        want = pandas_gx.validate(suite, fetch_arrow(con, table).to_pandas(), parameters)
        got = spark_gx.validate(suite, spark.table(table), parameters)
        assert _outcome(got) == _outcome(want), table
        assert all(r.success for r in got), table
    assert len(suites) >= 20

    broken = "staging.stg_customers"
    frame = fetch_arrow(con, broken).to_pandas()
    frame.loc[frame.index[:7], "age"] = 1000
    frame.loc[frame.index[:3], "customer_id"] = frame["customer_id"].iloc[3]
    spark_frame = spark.createDataFrame(frame)
    want = pandas_gx.validate(suites[broken], frame, parameters)
    got = spark_gx.validate(suites[broken], spark_frame, parameters)
    assert _outcome(got) == _outcome(want)
    assert _counts(got) == _counts(want)
    failed = {(r.expectation_type, r.column_name, r.unexpected_count) for r in got if not r.success}
    assert ("expect_column_values_to_be_between", "age", 7) in failed
    assert ("expect_column_values_to_be_unique", "customer_id", 4) in failed

    # A row condition is applied on Spark: unsegmented customers must say why.
    conditional = "intermediate.int_customer_profiles"
    frame = fetch_arrow(con, conditional).to_pandas()
    frame.loc[frame.index[:2], "is_segmented"] = False
    frame.loc[frame.index[:5], "unsegmented_reason"] = None
    want = pandas_gx.validate(suites[conditional], frame, parameters)
    got = spark_gx.validate(suites[conditional], spark.createDataFrame(frame), parameters)
    assert _outcome(got) == _outcome(want) and _counts(got) == _counts(want)
    assert [r.unexpected_count for r in got if not r.success] == [2]


def test_a_spark_that_ran_out_of_memory_is_a_model_error_saying_what_to_raise() -> None:
    """Spark stops its JVM after an OutOfMemoryError, and pyspark's next call to it is refused
    (seen at 10M order lines on local[2] with the default 1 GiB driver)."""
    model = Model("transactions", "raw", "source", Path("pipeline.toml"), ())
    died = [
        ConnectionRefusedError(111, "Connection refused"),
        Py4JError("An error occurred: java.lang.OutOfMemoryError: Java heap space"),
    ]
    for error in died:
        with pytest.raises(ModelError) as caught, _spark_failures(model):
            raise error
        assert str(caught.value).startswith("pipeline.toml: Spark ran out of memory and stopped")
        assert "spark.driver.memory in [spark.conf]" in str(caught.value)
    missing = AnalysisException("[TABLE_OR_VIEW_NOT_FOUND] The table `raw.x` cannot be found.")
    with (
        pytest.raises(ModelError, match=r"^pipeline.toml: \[TABLE_OR_VIEW_NOT_FOUND\]"),
        _spark_failures(model),
    ):
        raise missing
