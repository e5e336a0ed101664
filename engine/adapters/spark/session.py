"""A Spark session set up the way engine/adapters/spark/sql.py's rewrites assume.

Nothing is downloaded: no ``spark.jars.packages``; tables are Parquet in the warehouse folder.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOGGING = Path(__file__).with_name("spark_log4j2.properties")
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
    try:
        from pyspark.errors import PySparkException
        from pyspark.sql import SparkSession  # imported here: pyspark starts slowly
    except ImportError as exc:
        raise ConfigError(
            "warehouse.engine = 'spark' needs pyspark and a Java 17+ runtime: "
            "pip install 'pyspark>=4.0'"
        ) from exc
    # pyspark 4.3 warns that it was not tested with pandas 3; the engine hands pandas frames
    # to no pyspark API, and the tests compare every table with DuckDB's.
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    builder = SparkSession.builder.master(master).appName("customer-segmentation-warehouse")
    settings = {
        **SESSION_CONF,
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOGGING}",
        "spark.sql.warehouse.dir": str(warehouse_dir.resolve()),
        **(conf or {}),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except PySparkException as exc:  # the JVM did not start: no Java, or a bad setting
        raise ConfigError(f"Spark did not start on spark.master = {master!r}: {exc}") from exc
    session.sparkContext.setLogLevel("ERROR")
    _quiet_query_errors()
    return session


def _quiet_query_errors() -> None:
    """pyspark logs every failing query's JVM stack trace as JSON on stderr; the engine reports
    the failure itself, naming the model file, in a few lines."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
