"""A Spark session set up the way engine/spark_sql.py's rewrites assume.

Nothing is downloaded: no ``spark.jars.packages``; tables are Parquet in the warehouse folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SESSION_CONF = {
    # DuckDB's TIMESTAMP has no time zone: Spark's TIMESTAMP_NTZ is the same type.
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.session.timeZone": "UTC",
    # ANSI stays on (Spark 4's default): an overflow fails, as it does in DuckDB.
    "spark.sql.ansi.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


def start_session(
    master: str, warehouse_dir: Path, conf: Mapping[str, str] | None = None
) -> SparkSession:
    """A session on ``master`` ("local[2]", "spark://host:7077", "yarn", "k8s://…") whose
    managed tables live in ``warehouse_dir``; ``conf`` adds or overrides settings."""
    from pyspark.sql import SparkSession  # imported here: pyspark starts slowly

    builder = SparkSession.builder.master(master).appName("customer-segmentation-warehouse")
    settings = {
        **SESSION_CONF,
        "spark.sql.warehouse.dir": str(warehouse_dir.resolve()),
        **(conf or {}),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
