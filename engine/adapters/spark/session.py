"""A Spark session set up the way engine/adapters/spark/sql.py's rewrites assume.

Nothing is downloaded: no ``spark.jars.packages``; tables are Parquet in the warehouse folder.
"""

from __future__ import annotations

import logging
import socket
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

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
    # Spark sizes a Parquet table by its compressed files, about a tenth of what its rows take
    # in memory. At 1M customers it broadcast int_customer_features (9 MB of Parquet) to joins,
    # and three models doing so at once exhausted the default 1 GiB driver. Bigger tables are
    # still broadcast where adaptive execution finds them small enough, by their real size.
    "spark.sql.sources.fileCompressionFactor": "10",
}
# Settings of the driver this process starts; a Spark Connect server has its own.
DRIVER_CONF = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}
CONNECT = "sc://"


def start_session(
    master: str,
    warehouse_dir: Path,
    conf: Mapping[str, str] | None = None,
    java_properties: Mapping[str, str] | None = None,
) -> SparkSession:
    """A session on ``master`` ("local[2]", "spark://host:7077", "yarn", "k8s://…", or a Spark
    Connect server "sc://host:15002") whose managed tables live in ``warehouse_dir``; ``conf``
    adds or overrides settings, and ``java_properties`` are set in the driver's JVM."""
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
    if master.startswith(CONNECT):
        return _connect(master, conf or {})
    builder = SparkSession.builder.master(master).appName("customer-segmentation-warehouse")
    properties = {"log4j2.configurationFile": f"file:{LOGGING}", **(java_properties or {})}
    settings = {
        **SESSION_CONF,
        **DRIVER_CONF,
        "spark.driver.extraJavaOptions": " ".join(f"-D{k}={v}" for k, v in properties.items()),
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


def _connect(master: str, conf: Mapping[str, str]) -> SparkSession:
    """A Spark Connect session: the server's driver runs the SQL and the checks; only settings
    a session may change are set here (the rest are the server's, set where it starts)."""
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession

    unanswered = not_answering(master, default_port=15002)
    if unanswered:
        # Checked first: the client would retry for minutes before it gave up.
        raise ConfigError(
            f"the Spark Connect server at spark.master = {master!r} does not answer "
            f"({unanswered}); start it, or correct the address"
        )
    try:
        session = SparkSession.builder.remote(master).getOrCreate()
        for key, value in SESSION_CONF.items():
            session.conf.set(key, value)
    except ImportError as exc:  # pyspark without its connect extra (grpcio and friends)
        raise ConfigError(
            f"spark.master = {master!r} needs pyspark's Spark Connect client: "
            "pip install 'pyspark[connect]>=4.0'"
        ) from exc
    except PySparkException as exc:
        raise ConfigError(
            f"the Spark Connect server at spark.master = {master!r} did not answer: "
            f"{_first_line(exc)}"
        ) from exc
    for key, value in conf.items():
        try:
            session.conf.set(key, value)
        except PySparkException as exc:
            raise ConfigError(
                f"spark.conf.{key}: a Spark Connect client cannot set it "
                f"({_first_line(exc)}); set it where the Connect server starts"
            ) from exc
    _quiet_query_errors()
    return session


def not_answering(url: str, default_port: int, seconds: float = 10.0) -> str | None:
    """Why nothing answers at ``scheme://host:port``, or None when something does."""
    parts = urlsplit(url)
    try:
        port = parts.port or default_port
    except ValueError:
        return "the port is not a number"
    if not parts.hostname:
        return "there is no host name"
    try:
        with socket.create_connection((parts.hostname, port), timeout=seconds):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def _first_line(exc: Exception) -> str:
    return next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _quiet_query_errors() -> None:
    """pyspark logs every failing query's JVM stack trace as JSON on stderr; the engine reports
    the failure itself, naming the model file, in a few lines."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
