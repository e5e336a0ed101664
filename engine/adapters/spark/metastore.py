"""``spark.metastore``: the Hive metastore where the published tables are served to Spark SQL
readers (the Thrift server, Databricks SQL, spark-sql, a notebook).

Either a folder, holding an embedded Derby metastore that one process at a time may open, or
``thrift://host:port``, a shared Hive metastore service that any number of Thrift servers and
clusters read.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from engine.adapters.spark.session import not_answering
from engine.errors import ConfigError
from engine.warehouse.folders import require_writable

KEY = "spark.metastore"
DERBY_DATABASE = "metastore_db"


@dataclass(frozen=True)
class Metastore:
    uri: str | None = None  # thrift://host:port, a shared metastore service
    folder: Path | None = None  # an embedded Derby metastore in this folder

    @property
    def where(self) -> str:
        return self.uri or str(self.folder)

    def spark_conf(self) -> dict[str, str]:
        """The settings of a Spark session whose catalog is this metastore."""
        conf = {"spark.sql.catalogImplementation": "hive"}
        if self.uri is not None:
            return conf | {"spark.hadoop.hive.metastore.uris": self.uri}
        assert self.folder is not None
        database = self.folder / DERBY_DATABASE
        return conf | {
            "spark.hadoop.javax.jdo.option.ConnectionURL": (
                f"jdbc:derby:;databaseName={database};create=true"
            ),
            # Hive creates its tables in a new Derby database rather than failing on them.
            "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
            "spark.hadoop.hive.metastore.schema.verification": "false",
        }

    def java_properties(self) -> dict[str, str]:
        """Derby writes its log (derby.log) into its system folder, not the working one."""
        return {} if self.folder is None else {"derby.system.home": str(self.folder)}

    def check_available(self) -> None:
        """Stop before building when the metastore cannot take the publish: a service that
        does not answer, or an embedded Derby database another process has open."""
        if self.uri is not None:
            _check_answers(self.uri)
            return
        assert self.folder is not None
        require_writable(self.folder, KEY, "the embedded metastore lives there")
        if _derby_in_use(self.folder / DERBY_DATABASE):
            raise ConfigError(
                f"{KEY}: the embedded Derby metastore {self.folder} is open in another process "
                "(a Thrift server or spark-sql on the same folder?). Embedded Derby admits one "
                "process at a time: stop that process, or serve from a shared metastore "
                "(spark.metastore = 'thrift://host:9083')."
            )


def parse_metastore(value: str, root: Path, where: str) -> Metastore:
    if "://" not in value:
        if not value.strip():
            raise ConfigError(f"{where}: key '{KEY}' is empty; expected a folder or thrift://…")
        return Metastore(folder=(root / value).resolve())
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "thrift" or not parts.hostname or port is None:
        raise ConfigError(
            f"{where}: key '{KEY}' is {value!r}; expected a folder for an embedded metastore "
            "or a metastore service as thrift://host:port"
        )
    return Metastore(uri=value)


def _check_answers(uri: str) -> None:
    unanswered = not_answering(uri, default_port=9083)
    if unanswered:
        raise ConfigError(
            f"{KEY}: the metastore service {uri} does not answer ({unanswered}); "
            "start it, or correct the address"
        )


def _derby_in_use(database: Path) -> bool:
    """Derby holds a file lock on ``dbex.lck`` while a process has the database open."""
    lock = database / "dbex.lck"
    if not lock.exists():
        return False
    with lock.open("rb+") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(handle, fcntl.LOCK_UN)
    return False
