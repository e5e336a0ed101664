"""The ``[spark]`` section: where the Spark engine runs and keeps its Parquet tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.adapters import EngineSettings
from engine.adapters.spark.metastore import Metastore, parse_metastore
from engine.errors import ConfigError
from engine.project.schema import INTEGER, STRING, table_of

SECTION = "spark"
WAREHOUSE_DIR = "warehouse/spark"


@dataclass(frozen=True)
class SparkSettings:
    warehouse_dir: Path
    master: str = "local[2]"
    # Extra Spark settings (spark.executor.memory, spark.sql.shuffle.partitions, ...).
    conf: dict[str, str] = field(default_factory=dict)
    # A Python model that fits on a sample (FIT_SAMPLE_KEY) gets at most about this many rows
    # of each input, chosen by a hash of the key so every run and partitioning picks the same.
    fit_sample_rows: int = 1_000_000
    # A table of at most this many rows is validated in this process, with pandas, from its
    # Parquet files: GX on a Spark DataFrame runs a job per expectation.
    local_validation_rows: int = 2_000_000
    # Models built at once (SQL models, sources and seeds; Python models run one at a time
    # beside them): a Spark job of a small table waits mostly on Spark's own fixed cost.
    concurrent_models: int = 4
    # Where the published tables are also served to Spark SQL readers; None: nowhere.
    metastore: Metastore | None = None

    @property
    def catalog_dir(self) -> Path:
        """Where a Spark session's own catalog keeps its databases' folders."""
        return self.warehouse_dir / "catalog"


SCHEMA: dict[str, Any] = {
    "master": STRING,
    "warehouse_dir": STRING,
    "conf": table_of(STRING, "a Spark setting"),
    "fit_sample_rows": INTEGER,
    "local_validation_rows": INTEGER,
    "concurrent_models": INTEGER,
    "metastore": STRING,
}


def parse(section: dict[str, Any], root: Path, where: str) -> SparkSettings:
    rows = section.get("fit_sample_rows", SparkSettings.fit_sample_rows)
    if rows < 1:
        raise ConfigError(f"{where}: key 'spark.fit_sample_rows' must be at least 1, got {rows}")
    local_rows = section.get("local_validation_rows", SparkSettings.local_validation_rows)
    if local_rows < 0:
        raise ConfigError(
            f"{where}: key 'spark.local_validation_rows' must be at least 0, got {local_rows}"
        )
    concurrent = section.get("concurrent_models", SparkSettings.concurrent_models)
    if concurrent < 1:
        raise ConfigError(
            f"{where}: key 'spark.concurrent_models' must be at least 1, got {concurrent}"
        )
    master = section.get("master", SparkSettings.master)
    if not master.strip():
        raise ConfigError(f"{where}: key 'spark.master' is empty; expected e.g. 'local[2]'")
    metastore = section.get("metastore")
    return SparkSettings(
        warehouse_dir=(root / section.get("warehouse_dir", WAREHOUSE_DIR)).resolve(),
        master=master,
        conf=dict(section.get("conf", {})),
        fit_sample_rows=rows,
        local_validation_rows=local_rows,
        concurrent_models=concurrent,
        metastore=None if metastore is None else parse_metastore(metastore, root, where),
    )


SETTINGS = EngineSettings(SECTION, SCHEMA, parse)
