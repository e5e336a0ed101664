"""Serving the Spark engine's tables from a Hive metastore (issue 35): every published table is
a view in its layer's database, with the descriptions, over the run's Parquet files; a publish
repoints them, a killed run leaves them as they were, and the Thrift server serves them to a
real JDBC client (beeline)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from spark_services import beeline, metastore_conf, metastore_service, thrift_server
from test_readers_under_load import _land_customer
from test_spark_engine import _run_folders, _wait_for_new_table

from engine.adapters.spark.metastore import Metastore, parse_metastore
from engine.adapters.spark.serving import ServedTable, registration, removals, repointing
from engine.errors import ConfigError

from conftest import ProjectCopy

RUN = "20261205T131125Z-3ca5f4"
RUN_DATABASE = "marts__run_20261205t131125z_3ca5f4"


def _table(name: str = "dim_segments", run: str = RUN) -> ServedTable:
    return ServedTable(
        f"marts.{name}",
        f"/data/spark/runs/{run}/marts/{name}",
        "Segments' names, isn't it",
        (("segment_id", "Stable id"), ("odd name", None)),
    )


def test_statements_register_in_the_run_database_and_view_from_the_layer() -> None:
    create_databases, *_, create_table = registration([_table()])
    assert create_databases == "CREATE DATABASE IF NOT EXISTS `marts`"
    assert create_table == (
        f"CREATE TABLE IF NOT EXISTS `{RUN_DATABASE}`.`dim_segments` USING PARQUET LOCATION "
        f"'/data/spark/runs/{RUN}/marts/dim_segments' COMMENT 'Segments\\' names, isn\\'t it'"
    )
    (view,) = repointing([_table()])
    assert view == (
        "CREATE OR REPLACE VIEW `marts`.`dim_segments` (`segment_id` COMMENT 'Stable id', "
        "`odd name`) COMMENT 'Segments\\' names, isn\\'t it' AS SELECT `segment_id`, `odd name` "
        f"FROM `{RUN_DATABASE}`.`dim_segments`"
    )


def test_removals_drop_only_what_no_catalog_reads() -> None:
    existing = {
        "marts": ["dim_segments", "dropped_model"],
        RUN_DATABASE: ["dim_segments"],
        "marts__run_20261204t000000z_aaaaaa": ["dim_segments"],  # the previous catalog's
        "marts__run_20261203t000000z_bbbbbb": ["dim_segments"],  # nobody's
        "sales__run_20261203t000000z_cccccc": ["orders"],  # not a layer this project serves
        "default": [],
    }
    keep = {RUN_DATABASE, "marts__run_20261204t000000z_aaaaaa"}
    assert removals([_table()], keep, existing) == [
        "DROP VIEW IF EXISTS `marts`.`dropped_model`",
        "DROP DATABASE IF EXISTS `marts__run_20261203t000000z_bbbbbb` CASCADE",
    ]


@pytest.mark.parametrize(
    "value", ["thrift://metastore", "http://host:9083", "thrift://:9083", "thrift://h:port", " "]
)
def test_a_metastore_that_is_neither_a_folder_nor_a_service_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"pipeline\.toml: key 'spark\.metastore'"):
        parse_metastore(value, Path("/p"), "pipeline.toml")


def test_a_metastore_is_checked_before_the_build(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"spark\.metastore: the metastore service thrift://"):
        Metastore(uri="thrift://127.0.0.1:9").check_available()
    folder = tmp_path / "metastore"
    Metastore(folder=folder).check_available()  # a new folder: Derby will create it
    lock = folder / "metastore_db" / "dbex.lck"
    lock.parent.mkdir(parents=True)
    lock.touch()
    holder = subprocess.Popen(  # Derby's own lock, held by another process as Derby holds it
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, sys, time
            handle = open({str(lock)!r}, "rb+")
            fcntl.lockf(handle, fcntl.LOCK_EX)
            print("locked", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(ConfigError, match=r"is open in another process"):
            Metastore(folder=folder).check_available()
    finally:
        holder.kill()
        holder.wait()
    Metastore(folder=folder).check_available()
    with lock.open("rb+") as handle:  # the check let go of the lock it took
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _served(port: int) -> list[tuple[str, str, str]]:
    rows = beeline(port, "select segment_id, segment_name, customers from marts.dim_segments")
    return sorted((r["segment_id"], r["segment_name"], r["customers"]) for r in rows)


def _published(project: ProjectCopy) -> list[tuple[str, str, str]]:
    rows = project.query("select segment_id, segment_name, customers from marts.dim_segments")
    return sorted(tuple(str(v) for v in row) for row in rows)


def _run_databases(port: int) -> set[str]:
    return {r["namespace"] for r in beeline(port, "show databases") if "__run_" in r["namespace"]}


def _expected_run_databases(project: ProjectCopy) -> set[str]:
    runs = project.query("select distinct location from meta.table_files")
    return {
        f"{Path(loc).parts[-2]}__run_{Path(loc).parts[-3].lower().replace('-', '_')}"
        for (loc,) in runs
    }


def test_a_shared_metastore_serves_each_publish_over_jdbc(
    project: ProjectCopy, tmp_path: Path
) -> None:
    with metastore_service(tmp_path / "metastore") as uri:
        project.edit_config("seed = 42", 'seed = 42\nengine = "spark"')
        project.config.write_text(
            project.config.read_text() + f'\n[spark]\nmaster = "local[2]"\nmetastore = "{uri}"\n'
        )
        done = project.run("run", "--no-report", timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"Served 69 tables from spark.metastore ({uri})" in done.stdout
        with thrift_server(tmp_path / "thrift", metastore_conf(uri=uri)) as port:
            assert _served(port) == _published(project)
            described = {
                r["col_name"]: r["comment"] for r in beeline(port, "describe marts.dim_segments")
            }
            (comment,) = project.query(
                "select comment from duckdb_columns() where schema_name = 'marts' "
                "and table_name = 'dim_segments' and column_name = 'segment_name'"
            )[0]
            assert described["segment_name"] == comment and comment
            extended = beeline(port, "describe table extended ml.customer_segments")
            (table_comment,) = [r["data_type"] for r in extended if r["col_name"] == "Comment"]
            assert table_comment.startswith("Every staged customer in exactly one segment")
            assert _run_databases(port) == _expected_run_databases(project)

            # A second refresh, with three more customers, is served through the same server.
            for customer in (201, 202, 203):
                _land_customer(project, customer)
            done = project.run("run", "-q", "--no-report", timeout=600)
            assert done.returncode == 0, done.stderr[-3000:]
            served = _served(port)
            assert served == _published(project)
            assert sum(int(r[2]) for r in served) == 203
            assert _run_databases(port) == _expected_run_databases(project)
            assert len(_run_databases(port)) == 2 * 6  # this run's and the previous one's

            # A run killed while it builds leaves the served tables as they were.
            _land_customer(project, 204)
            runs = project.root / "warehouse" / "spark" / "runs"
            before = _run_folders(project)
            victim = project.popen("run", "--no-report")
            _wait_for_new_table(runs, before, "staging/stg_customers_checked", 300)
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            assert _served(port) == served
            assert beeline(port, "select count(*) as n from staging.stg_customers") == [
                {"n": "203"}
            ]
