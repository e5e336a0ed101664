"""The same cases on every registered engine (engine/adapters/): what the run loop asks of an
engine, it gets from each, seen through the build file's catalog as readers see it.

Real engines, really started: the DuckDB engine with its GX worker process, the Spark engine on
the tests' local Spark.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from engine import adapters
from engine.adapters.base import Build, Engine, Turn
from engine.checks.expectations import Suite
from engine.console import Console
from engine.errors import ModelError
from engine.project.config import load_config, with_engine
from engine.project.discovery import Model, Project
from engine.refresh.loader import LINE_NUMBER, source_parts
from engine.warehouse.catalog import BuildCatalog
from engine.warehouse.publish import WarehousePaths

from conftest import ProjectCopy


def _sql_model(name: str, layer: str, sql: str, inputs: tuple[str, ...]) -> Model:
    query = sqlglot.parse_one(sql, dialect="duckdb")
    return Model(name, layer, "sql", Path(f"sql/{layer}/{name}.sql"), inputs, query=query)


NUMBERS = Model("numbers", "ml", "python", Path("python_models/numbers.py"), ())
CUSTOMERS = Model("customers", "raw", "source", None, ())
DOUBLED = _sql_model(
    "doubled", "intermediate", "select n, n * 2 as twice from ml.numbers", (NUMBERS.table,)
)
SCORED = _sql_model(
    "scored", "marts", "select n, ml.plus_one(n) as next from ml.numbers", (NUMBERS.table,)
)
BROKEN = _sql_model("broken", "marts", "select no_such_column from ml.numbers", (NUMBERS.table,))
MODELS = (NUMBERS, CUSTOMERS, DOUBLED, SCORED, BROKEN)
PLUS_ONE = sqlglot.parse_one("create macro ml.plus_one(x) as x + 1", dialect="duckdb")
SUITE = Suite(
    DOUBLED.table,
    Path("expectations/intermediate.doubled.json"),
    {
        "name": "intermediate.doubled",
        "expectations": [
            {"type": "expect_column_to_exist", "kwargs": {"column": "twice"}},
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "twice", "min_value": 0, "max_value": 5},
            },
        ],
    },
)


@dataclass
class Started:
    engine: Engine
    build: Build
    paths: WarehousePaths

    @property
    def catalog(self) -> BuildCatalog:
        return self.build.catalog

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        return sorted(self.catalog.query(exp.select("*").from_(table).sql("duckdb")))


@pytest.fixture(params=adapters.ENGINES)
def started(request: pytest.FixtureRequest, project: ProjectCopy) -> Iterator[Started]:
    if request.param == "spark":
        request.getfixturevalue("spark")  # the tests' one local Spark, which the engine joins
    config = with_engine(load_config(project.config), request.param)
    engine = adapters.adapter(config.engine).start(config, Console(quiet=True))
    paths = WarehousePaths(config.warehouse_path)
    paths.published.parent.mkdir(parents=True, exist_ok=True)
    catalog = BuildCatalog.open(paths.build("contract"), paths.published, config.storage_version)
    order = tuple(m.table for m in MODELS)
    project_models = Project({m.table: m for m in MODELS}, order)
    build = Build("contract", project_models, order, {SUITE.table: SUITE}, catalog)
    catalog.start_history(carry=False, keep_runs=0)  # as the run loop starts every build
    for layer in sorted({m.layer for m in MODELS}):
        catalog.create_schema(layer)
    try:
        engine.begin(build)
        with build.turn:  # the run loop builds each model in its turn
            yield Started(engine, build, paths)
    finally:
        engine.stop()
        catalog.close()


def test_engines_are_registered_by_name() -> None:
    assert adapters.ENGINES == ("duckdb", "spark")
    for name in adapters.ENGINES:
        assert callable(adapters.adapter(name).start)


def test_tables_from_returned_data_and_from_queries(started: Started) -> None:
    engine = started.engine
    parts = iter([pa.table({"n": [3, 1]}), pa.table({"n": [2]})])  # written part by part
    engine.write_table(NUMBERS, parts)
    assert started.rows(NUMBERS.table) == [(1,), (2,), (3,)]
    engine.create_table(DOUBLED, DOUBLED.query)
    assert started.rows(DOUBLED.table) == [(1, 2), (2, 4), (3, 6)]
    assert started.catalog.row_count(DOUBLED.table) == 3
    with pytest.raises(ModelError, match=r"broken\.sql"):
        engine.create_table(BROKEN, BROKEN.query)


def test_functions_serve_readers_and_later_models(started: Started) -> None:
    engine = started.engine
    engine.write_table(NUMBERS, pa.table({"n": [1, 2]}))
    engine.install_functions(NUMBERS, (PLUS_ONE,))
    assert started.catalog.query("select ml.plus_one(41)") == [(42,)]
    engine.create_table(SCORED, SCORED.query)
    assert started.rows(SCORED.table) == [(1, 2), (2, 3)]


def test_a_source_is_the_loaders_raw_table(started: Started, project: ProjectCopy) -> None:
    started.engine.load_source(CUSTOMERS, lambda _: None)
    config = load_config(project.config)
    want = pa.concat_tables(source_parts(config, config.sources["customers"]))
    got = started.catalog.fetch_arrow(CUSTOMERS.table)
    assert got.column_names == want.column_names

    def by_line(table: pa.Table) -> list[dict[str, Any]]:
        return sorted(table.to_pylist(), key=lambda row: row[LINE_NUMBER])

    assert by_line(got) == by_line(want)
    assert got.num_rows == 200


def test_python_models_read_every_input_whole_below_the_sample_size(started: Started) -> None:
    started.engine.write_table(NUMBERS, pa.table({"n": [1, 2]}))
    reader = Model("reader", "ml", "python", None, (NUMBERS.table,), fit_sample_key="n")
    with started.engine.model_inputs(reader) as inputs:
        assert dict(inputs.stand_ins) == {} and inputs.note is None


def test_validation_outcomes_arrive_for_every_table_sent(started: Started) -> None:
    engine = started.engine
    engine.write_table(NUMBERS, pa.table({"n": [1, 2, 3]}))
    engine.create_table(DOUBLED, DOUBLED.query)
    engine.validate(DOUBLED.table, SUITE, {}, rows=3)
    arrived = engine.validated(wait=True)
    assert [table for table, _ in arrived] == [DOUBLED.table]
    outcomes = {o.expectation_type: o for o in arrived[0][1]}
    assert outcomes["expect_column_to_exist"].success
    between = outcomes["expect_column_values_to_be_between"]
    assert not between.success and between.blocking_failure and between.unexpected_count == 1
    assert engine.validated(wait=True) == []  # each outcome arrives once


def test_a_discarded_build_leaves_nothing_behind(started: Started) -> None:
    """What an engine writes outside the build file (the run loop discards that) goes too."""
    engine = started.engine
    engine.write_table(NUMBERS, pa.table({"n": [1]}))
    engine.create_table(DOUBLED, DOUBLED.query)
    engine.finish(started.build)
    folder = started.paths.published.parent
    engine.discard("contract")
    assert [p for p in folder.rglob("*") if "contract" in p.parts] == []
    assert engine.remove_leftovers(started.paths) == []
    assert engine.after_publish(started.paths) == []


def test_a_turn_given_away_lets_another_model_take_it_and_comes_back() -> None:
    turn, order = Turn(), []

    def other_model() -> None:
        with turn:
            order.append("other")

    with turn:
        other = threading.Thread(target=other_model)
        other.start()
        other.join(timeout=0.2)
        assert order == [], "the other model took the turn while it was held"
        with turn.given_away():
            other.join(timeout=10)
            assert order == ["other"]
        order.append("back")
    assert order == ["other", "back"]
