"""The Spark engine on real Spark servers started from the pyspark wheel (issue 35).

A standalone cluster: a master and two workers, each its own JVM with its own work folder. The
sample runs with ``master = "spark://…"``, executors run on both workers (whose working folders
are not the driver's), every published table equals the DuckDB engine's, and the embedded Derby
metastore the run filled is served by the Thrift server to beeline.

A Spark Connect server: the sample runs with ``master = "sc://…"`` and publishes the same
tables; what a Connect client cannot do is refused naming the key.
"""

from __future__ import annotations

from pathlib import Path

from spark_services import (
    beeline,
    connect_server,
    free_port,
    metastore_conf,
    standalone_cluster,
    thrift_server,
)
from test_spark_engine import SPARK_WAREHOUSE, assert_same_warehouses

from conftest import ProjectCopy


def _tasks_ran(worker: Path) -> bool:
    """An executor of this worker logged a task it ran."""
    logs = worker.glob("app-*/*/stderr")
    return any("Running task" in log.read_text(errors="replace") for log in logs)


def test_the_sample_on_a_standalone_cluster(project: ProjectCopy, tmp_path: Path) -> None:
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    cluster = tmp_path / "cluster"
    with standalone_cluster(cluster, workers=2) as master:
        project.edit_config('path = "warehouse/segments.duckdb"', f'path = "{SPARK_WAREHOUSE}"')
        project.config.write_text(
            project.config.read_text()
            + f'\n[spark]\nmaster = "{master}"\nmetastore = "warehouse/metastore"\n'
            + '[spark.conf]\n"spark.executor.memory" = "1g"\n"spark.cores.max" = "2"\n'
        )
        done = project.run("run", "--no-report", "--engine", "spark", timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"on {master}, tables in" in done.stdout
        assert _tasks_ran(cluster / "worker-1") and _tasks_ran(cluster / "worker-2")
    spark_file = project.root / SPARK_WAREHOUSE
    assert assert_same_warehouses(project.warehouse, spark_file) >= 40

    derby = metastore_conf(derby_folder=project.root / "warehouse" / "metastore")
    with thrift_server(tmp_path / "thrift", derby) as port:
        counted = beeline(port, "select count(*) as n from marts.dim_customers")
        assert counted == [{"n": "200"}]
        described = beeline(port, "describe marts.dim_customers")
        assert all(row["comment"] for row in described if row["col_name"]), described


def test_the_sample_through_spark_connect(project: ProjectCopy, tmp_path: Path) -> None:
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    project.edit_config('path = "warehouse/segments.duckdb"', f'path = "{SPARK_WAREHOUSE}"')
    settings = project.config.read_text()
    nobody = f"sc://127.0.0.1:{free_port()}"
    project.config.write_text(settings + f'\n[spark]\nmaster = "{nobody}"\n')
    done = project.run("run", "-q", "--no-report", "--engine", "spark")
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"the Spark Connect server at spark.master = '{nobody}' does not answer" in done.stderr

    with connect_server(tmp_path / "connect") as url:
        executor = '[spark.conf]\n"spark.executor.memory" = "2g"\n'
        project.config.write_text(settings + f'\n[spark]\nmaster = "{url}"\n{executor}')
        done = project.run("run", "-q", "--no-report", "--engine", "spark")
        assert done.returncode == 2, done.stderr[-3000:]
        assert "spark.conf.spark.executor.memory: a Spark Connect client cannot set it" in (
            done.stderr
        )
        project.config.write_text(settings + f'\n[spark]\nmaster = "{url}"\n')
        done = project.run("run", "--no-report", "--engine", "spark", timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"on {url}, tables in" in done.stdout
    assert assert_same_warehouses(project.warehouse, project.root / SPARK_WAREHOUSE) >= 40
