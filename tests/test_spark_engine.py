"""The Spark engine end to end (issue 20): ``pipeline.py run --engine spark`` on a real local
Spark publishes the tables the DuckDB engine publishes, and keeps the publish promises: a failing
blocking expectation or a killed run leaves the published warehouse as it was, and what a run
left behind is cleaned up.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path

import duckdb
from test_pipeline_e2e import AT_MOST_TEN_ROWS, _add_expectations, _dirty_dataset
from test_spark_sql import LAYERS, _differences, _first_difference

from conftest import ProjectCopy

SPARK_WAREHOUSE = "warehouse/spark.duckdb"
# Columns that name the run or the moment it ran, and each engine's own hash of a raw line.
RUN_SPECIFIC = {
    "run_id",
    "previous_run_id",
    "first_seen_run_id",
    "built_at",
    "first_run_id",
    "last_run_id",
    "line_hash",
}


def _published_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    rows = con.execute(
        "select schema_name || '.' || table_name from duckdb_tables() where database_name = ? "
        "union all select schema_name || '.' || view_name from duckdb_views() "
        "where database_name = ? and not internal",
        [catalog, catalog],
    ).fetchall()
    return sorted(r[0] for r in rows if r[0].split(".")[0] in LAYERS)


def _published_tables_of(warehouse: Path) -> list[str]:
    con = duckdb.connect()
    con.execute(f"attach '{warehouse}' as published (read_only)")
    tables = _published_tables(con, "published")
    con.close()
    return tables


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[tuple[str, str]]:
    layer, name = table.split(".", 1)
    return con.execute(
        "select column_name, data_type from duckdb_columns() where database_name = ? "
        "and schema_name = ? and table_name = ? order by column_index",
        [catalog, layer, name],
    ).fetchall()


def _rows(con: duckdb.DuckDBPyConnection, catalog: str, table: str, keep: list[str]) -> list:
    layer, name = table.split(".", 1)
    projection = ", ".join(f'"{c}"' for c in keep)
    return con.execute(f'select {projection} from "{catalog}"."{layer}"."{name}"').fetchall()


def assert_same_warehouses(duckdb_file: Path, spark_file: Path) -> int:
    """Every published table of the DuckDB engine is in the Spark engine's catalog with the
    same columns, types and rows; the number of tables compared."""
    con = duckdb.connect()
    con.execute(f"attach '{duckdb_file}' as by_duckdb (read_only)")
    con.execute(f"attach '{spark_file}' as by_spark (read_only)")
    tables = _published_tables(con, "by_duckdb")
    assert _published_tables(con, "by_spark") == tables
    for table in tables:
        columns = [c for c in _columns(con, "by_duckdb", table) if c[0] not in RUN_SPECIFIC]
        assert [c for c in _columns(con, "by_spark", table) if c[0] not in RUN_SPECIFIC] == columns
        keep = [c for c, _ in columns]
        want, got = (_rows(con, c, table, keep) for c in ("by_duckdb", "by_spark"))
        differences = _differences(want, got)
        where = _first_difference(keep, list(range(len(keep))), differences) if differences else {}
        assert not differences, (table, where)
    con.close()
    return len(tables)


def _experiment_logs(rng: random.Random) -> str:
    lines = [
        f"newsletter,{c},{rng.choice('AB')},{rng.randint(0, 1)},{rng.randint(0, 1)},"
        f"2026-05-0{rng.randint(1, 9)} 10:00:00"
        for c in range(1, 151)
    ]
    lines += [
        "newsletter,9999,A,1,0,2026-05-01 10:00:00",
        "newsletter,160,C,1,0,2026-05-01 10:00:00",
        "newsletter,161,A,abc,0,2026-05-01 10:00:00",
        "newsletter,162,A,1,0,yesterday",
        "newsletter,163,A,1,nan,2026-05-01 10:00:00",
        "newsletter,164,,1,0,2026-05-01 10:00:00",
        "newsletter,40,B,0,0,2026-05-02 10:00:00",
        "newsletter,3.5,A,1,0,2026-05-01 10:00:00",
    ]
    return "experiment,customer_id,variant,outcome,pre_period_value,timestamp\n" + "\n".join(lines)


def _outcomes(warehouse: Path, counts: bool = True) -> list[tuple]:
    """The last run's expectation outcomes; with ``counts``, the unexpected rows counted too
    (GX on Spark leaves the count of an expectation with a row condition empty)."""
    count = "unexpected_count" if counts else "null"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select table_name, expectation_type, coalesce(column_name, ''), success, "
            f"{count} from meta.expectation_results "
            "where run_id = (select max(run_id) from meta.runs) order by all"
        ).fetchall()


def _observed_type(warehouse: Path) -> str:
    """What GX saw as marts.dim_segments.segment_id's type: a pandas dtype when it validated
    a pandas frame, a Spark type when it validated a Spark DataFrame."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select observed_value from meta.expectation_results "
            "where expectation_type = 'expect_column_values_to_be_of_type' "
            "and run_id = (select max(run_id) from meta.runs)"
        ).fetchall()[0][0]


def _models_built_at_once(warehouse: Path) -> list[tuple[str, str]]:
    """Pairs of models of the last run whose build times overlapped by more than 50 ms."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "with last as (select model, epoch(started_at) as began, "
            "epoch(started_at) + seconds as ended from meta.model_runs "
            "where run_id = (select max(run_id) from meta.runs)) "
            "select a.model, b.model from last as a join last as b on a.model < b.model "
            "and least(a.ended, b.ended) - greatest(a.began, b.began) > 0.05 order by all"
        ).fetchall()


def _run_both(copy: ProjectCopy) -> None:
    done = copy.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    copy.edit_config('path = "warehouse/segments.duckdb"', f'path = "{SPARK_WAREHOUSE}"')
    done = copy.run("run", "-q", "--no-report", "--engine", "spark", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_sample_publishes_the_same_tables_on_both_engines(project: ProjectCopy) -> None:
    audience = '[audiences.big_spenders]\ncondition = "spending_score > 60"\nholdout_share = 0.3'
    project.edit_config("[features.labels]", f"{audience}\n\n[features.labels]")
    _run_both(project)
    assert assert_same_warehouses(project.warehouse, project.root / SPARK_WAREHOUSE) >= 40
    # Sources and SQL models are built several at a time (spark.concurrent_models = 4).
    assert len(_models_built_at_once(project.root / SPARK_WAREHOUSE)) >= 5
    # Small tables are validated with pandas (spark.local_validation_rows), as on DuckDB.
    assert _outcomes(project.root / SPARK_WAREHOUSE) == _outcomes(project.warehouse)
    assert _observed_type(project.root / SPARK_WAREHOUSE) == "int64"
    (members,) = project.query("select count(*) from marts.audience_members")[0]
    assert members > 0  # compared on both engines above
    # The reading commands work on the Spark engine's catalog as they do on DuckDB's file.
    shown = project.run("show", "marts.dim_segments", "--limit", "3")
    assert shown.returncode == 0 and "segment_name" in shown.stdout, shown.stderr
    exported = project.run("export", "--format", "csv", "--output", "exports")
    assert exported.returncode == 0, exported.stderr
    assert len(list((project.root / "exports").glob("*.csv"))) == len(
        [t for t in _published_tables_of(project.root / SPARK_WAREHOUSE) if t.startswith("marts.")]
    )
    for command in (("docs",), ("report",)):
        assert project.run(*command).returncode == 0, command
    # A partial Spark run over what the DuckDB engine published has no Spark tables to read.
    project.edit_config(f'path = "{SPARK_WAREHOUSE}"', 'path = "warehouse/segments.duckdb"')
    before = project.digest()
    done = project.run("run", "--no-report", "--engine", "spark", "--select", "dim_segments")
    assert done.returncode == 4, done.stderr[-3000:]
    assert re.search(
        r"\w+\.\w+ was not published by the Spark engine; run the whole project once with "
        r"warehouse\.engine = 'spark' before selecting models",
        done.stderr,
    ), done.stderr[-3000:]
    assert project.digest() == before


def test_dirty_data_publishes_the_same_tables_on_both_engines(empty_project: ProjectCopy) -> None:
    first, second, _ = _dirty_dataset(seed=21)
    empty_project.write_csv("export_a.csv", first)
    empty_project.write_csv("export_b.csv", second)
    logs = empty_project.root / "warehouse" / "raw" / "experiments"
    logs.mkdir()
    (logs / "newsletter.csv").write_text(_experiment_logs(random.Random(21)))
    # Above this many customers ml.customer_segments is one generated SELECT, run by each engine.
    config = empty_project.config
    config.write_text(
        config.read_text() + "\n[models.customer_segments]\nsilhouette_exact_max_rows = 50\n"
        # Every table validated by GX on its Spark DataFrame.
        "\n[spark]\nlocal_validation_rows = 0\n"
    )
    _run_both(empty_project)
    spark_file = empty_project.root / SPARK_WAREHOUSE
    assert _outcomes(spark_file, counts=False) == _outcomes(empty_project.warehouse, False)
    assert _observed_type(spark_file) == "LongType"
    methods = empty_project.query("select distinct silhouette_method from ml.customer_segments")
    assert methods == [("centroid",)]
    rejected = empty_project.query(
        "select (select count(*) from staging.stg_customers_rejected), "
        "(select count(*) from staging.stg_experiment_logs_rejected)"
    )[0]
    assert rejected[0] > 10 and rejected[1] >= 8  # every kind of bad row is compared
    # Spark found this one: DuckDB's TRY_CAST had staged exposure '3.5' as customer 4.
    assert empty_project.query(
        "select reason_text from staging.stg_experiment_logs_rejected "
        "where customer_id_text = '3.5'"
    ) == [("customer_id '3.5' is not an integer",)]
    assert assert_same_warehouses(empty_project.warehouse, spark_file) >= 40


def _run_folders(copy: ProjectCopy) -> set[str]:
    return {p.name for p in (copy.root / "warehouse" / "spark" / "runs").iterdir()}


def _wait_for_new_table(runs: Path, old_runs: set[str], table: str, seconds: float) -> None:
    """Until a run not in ``old_runs`` has written the table's Parquet files."""
    deadline = time.monotonic() + seconds
    while not [p for p in runs.glob(f"*/{table}/*.parquet") if p.parts[-4] not in old_runs]:
        assert time.monotonic() < deadline, f"no new run wrote {table} in {seconds} s"
        time.sleep(0.2)


def _sample_message(copy: ProjectCopy) -> str:
    rows = copy.query(
        "select message from meta.model_runs where model = 'ml.segment_model_selection' "
        "order by started_at desc limit 1"
    )
    return rows[0][0] or ""


def test_spark_runs_fit_on_a_hashed_sample_fail_and_die_cleanly_and_clean_up(
    project: ProjectCopy,
) -> None:
    project.edit_config("seed = 42", 'seed = 42\nengine = "spark"')
    project.config.write_text(
        project.config.read_text()
        + '\n[spark]\nmaster = "local[1]"\nfit_sample_rows = 120\nconcurrent_models = 1\n'
    )
    fit = ("--select", "+segment_model_selection")
    done = project.run("run", "-q", "--no-report", *fit, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _models_built_at_once(project.warehouse) == []  # one at a time, as configured
    # About 120 of the 200 customers, chosen by a hash of the id; the fit saw just those.
    sampled = re.fullmatch(
        r"fitted on (\d+) of 200 rows of intermediate\.int_customer_features \(customer_id .*",
        _sample_message(project),
    )
    assert sampled and 80 <= int(sampled[1]) <= 160, _sample_message(project)
    selection = project.query("select * from ml.segment_model_selection order by k")
    assert {
        row[0] for row in project.query("select distinct fit_rows from ml.segment_model_selection")
    } == {int(sampled[1])}
    first, published = _run_folders(project), project.digest()

    staging = ("--select", "+stg_customers")
    suite = project.root / "expectations" / "staging.stg_customers.json"
    as_shipped = suite.read_text()
    _add_expectations(project, "staging.stg_customers", AT_MOST_TEN_ROWS)
    # Tables of 100+ rows validated (by the GX worker) before the next model: the failure is
    # known before stg_customers' reader would build, so the reader is skipped.
    project.edit_config("[warehouse]\n", "[warehouse]\nserial_validation_rows = 100\n")
    done = project.run("run", "--no-report", "--select", "+int_customer_features", timeout=600)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "FAIL staging.stg_customers expect_table_row_count_to_be_between" in done.stderr
    assert re.search(r"SKIP\s+intermediate\.int_customer_features", done.stdout), done.stdout
    assert "Nothing was published" in done.stderr
    assert project.digest() == published and _run_folders(project) == first
    runs = project.root / "warehouse" / "spark" / "runs"
    spark_line = rf"Spark 4\.\d+\.\d+ on local\[1\], tables in {re.escape(str(runs))}\n"
    assert re.search(spark_line, done.stdout), done.stdout

    # A landing record that is not CSV: found while Spark writes raw.customers, and told in one
    # line naming the file and line, without the JVM's stack traces.
    header = "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)\n"
    broken = project.write_csv("broken.csv", header + '1,Male,19,15,39\n2,"Fe"male,21,15,81\n')
    done = project.run("run", "--no-report", "--select", "raw.customers", timeout=600)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Error: customers/broken.csv: line 3: malformed CSV: a quote" in done.stderr
    assert "Exception" not in done.stderr and "\tat org.apache" not in done.stderr, done.stderr
    assert project.digest() == published and _run_folders(project) == first
    broken.unlink()

    suite.write_text(as_shipped)
    victim = project.popen("run", "--no-report", *staging)
    _wait_for_new_table(runs, first, "staging/stg_customers_checked", 120)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=60)
    killed = _run_folders(project) - first
    assert len(killed) == 1 and project.digest() == published
    assert project.query("select count(*) from staging.stg_customers") == [(200,)]

    done = project.run("run", "--no-report", *staging, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Removed {next(iter(killed))}, left behind by an interrupted run" in done.stdout
    second = _run_folders(project) - first
    assert len(second) == 1 and not killed & second
    (old,) = first

    done = project.run("run", "-q", "--no-report", "--full-refresh", *fit, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert project.query("select * from ml.segment_model_selection order by k") == selection
    # The previous catalog read the second run's stg_customers and the first run's other
    # tables: those stay; the first run's stg_customers, read by no catalog, went.
    assert (runs / old / "ml" / "segment_model_selection").is_dir()
    assert (runs / old / "staging" / "stg_transactions").is_dir()
    assert not (runs / old / "staging" / "stg_customers").exists()
    assert second < _run_folders(project) and len(_run_folders(project)) == 3
