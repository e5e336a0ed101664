"""Python models run unchanged for the Spark engine (issue 20): their inputs are Spark tables,
read by DuckDB from the tables' own Parquet files (engine/spark_tables.py) and handed over by
the same contract (a relation, an Arrow table or a DataFrame); each model's output equals the
table the DuckDB engine built from the same inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
from test_spark_sql import _differences, _scorers, empty_spark_layers, mirror_inputs

from engine import statements
from engine.building import BuildContext, build_model, fetch_arrow
from engine.config import load_config
from engine.project import discover, model_configs
from engine.spark_tables import duckdb_views
from python_models._sql_scoring import create_macro

from conftest import ProjectCopy


def test_every_python_model_reads_spark_tables_and_builds_duckdbs_table(
    spark: Any, built_sample: ProjectCopy, tmp_path: Path
) -> None:
    empty_spark_layers(spark)
    config = load_config(built_sample.config)
    project = discover(built_sample.root, config)
    published = duckdb.connect(str(built_sample.warehouse), read_only=True)
    run_id = published.execute("select run_id from meta.runs").fetchall()[0][0]
    in_spark: dict[str, tuple[str, ...]] = {}
    built = 0
    for table in project.order:
        model = project.models[table]
        if model.kind != "python":
            continue
        mirror_inputs(spark, published, model.inputs, in_spark, tmp_path / "tables")
        con = duckdb.connect()
        duckdb_views(con, spark, list(model.inputs))
        con.execute(statements.create_schema(model.layer))
        # The SQL functions upstream models installed (ml.assign_segment, say), as the Spark
        # engine would install them in each later model's connection.
        con.execute(statements.create_schema("ml"))
        for name, (parameters, body) in _scorers(published).items():
            con.execute(create_macro("ml", name, parameters, body).sql("duckdb"))
        context = BuildContext(
            con,
            project,
            config,
            run_id,
            model_configs(project, config),
            has_previous=False,
            reader=con.cursor(),
            parallel=lambda function, items: map(function, items),
        )
        build_model(context, model, lambda _: None)
        got = fetch_arrow(con, table)
        want = fetch_arrow(published, table)
        assert got.column_names == want.column_names, table
        differences = _differences(
            [tuple(r.values()) for r in want.to_pylist()],
            [tuple(r.values()) for r in got.to_pylist()],
        )
        assert not differences, (table, differences[:1])
        built += 1
    assert built >= 10
