"""Landing CSVs into a Spark DataFrame with engine/refresh/loader.py's result: every record as
text, its file and the line it starts on, and the same parse errors.

Spark reads the files itself; Python reads only their headers. Each file is one row of text
(``wholetext``), split into numbered lines in Spark. A line continues the record before it while
that record has an open quote (an odd number of quote characters so far), so a quoted field may
span lines as spreadsheets write them. Records are split into fields by delimiter, or, when one
holds a quote, by a regular expression for quoted fields; a record that is not valid CSV fails
the load, naming the file and line, as the csv module would. It is found while Spark writes the
table (``raise_error``), not by a job of its own, which read and split every file a second time
(at 1M customers 9-10 s of a 20 s load); where several records are malformed, the one named is
the first Spark meets, not necessarily the first in the file.

What differs from engine/refresh/loader.py: files must be UTF-8 (Spark's text reader decodes nothing
else; a byte that is not UTF-8 fails the load), and a quote inside an unquoted field (``a"b``),
which Python's csv module keeps as text, fails the load here.
"""

from __future__ import annotations

import codecs
import re
from functools import reduce
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.project.config import Config
from engine.project.sources import SourceConfig
from engine.refresh.loader import (
    LINE_NUMBER,
    LINEAGE_COLUMNS,
    PARSE_ERROR,
    SOURCE_FILE,
    mapped_headers,
    raw_column_names,
)

_QUOTED = '"(?:[^"]|"")*"'
MALFORMED = "malformed CSV: a quote that does not open or close a quoted field"
# How Spark reports raise_error's message, locally and over Spark Connect.
_RAISED = re.compile(rf"\[USER_RAISED_EXCEPTION\] (.+?: line \d+: {re.escape(MALFORMED)})")


def _field(delimiter: str) -> str:
    return f'(?:{_QUOTED}|[^{re.escape(delimiter)}"\\r\\n]*)'


def _header_groups(
    headers: dict[Path, tuple[str, ...]], source: SourceConfig
) -> dict[tuple[str, ...], list[Path]]:
    """Files by their mapped header, so files written alike are read as one DataFrame."""
    if codecs.lookup(source.encoding).name != "utf-8":
        raise InputError(
            f"sources.{source.name}.encoding: the Spark engine reads UTF-8 files only, not "
            f"{source.encoding}"
        )
    groups: dict[tuple[str, ...], list[Path]] = {}
    for path, names in headers.items():
        groups.setdefault(names, []).append(path)
    return groups


def _records(spark: Any, paths: list[Path], raw_dir: Path) -> Any:
    """(file, first line, text) of every record after the header, blank ones left out."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    files = spark.read.text([str(p) for p in paths], wholetext=True)
    # The path is a URI, percent-encoded ('%20' for a space); '+' is kept as it is.
    uri_path = F.regexp_replace(F.col("_metadata.file_path"), "\\+", "%2B")
    root = re.escape(raw_dir.resolve().as_posix().rstrip("/") + "/")
    lines = files.select(
        F.regexp_replace(F.url_decode(uri_path), f"^file:(//)?{root}", "").alias("file"),
        F.posexplode(F.split("value", "\n")).alias("position", "line"),
    ).select("file", (F.col("position") + 1).alias("number"), "line")
    quotes = F.length("line") - F.length(F.regexp_replace("line", '"', ""))
    earlier = (
        Window.partitionBy("file").orderBy("number").rowsBetween(Window.unboundedPreceding, -1)
    )
    running = Window.partitionBy("file").orderBy("number")
    lines = lines.withColumn("open", F.coalesce(F.sum(quotes).over(earlier), F.lit(0)) % 2 == 1)
    lines = lines.withColumn("record", F.sum(F.when(F.col("open"), 0).otherwise(1)).over(running))
    in_order = F.sort_array(F.collect_list(F.struct("number", "line")))
    records = lines.groupBy("file", "record").agg(
        F.min("number").alias("number"),
        # A CR before a line break inside a quoted field is kept, as the csv module keeps it.
        F.regexp_replace(
            F.array_join(F.transform(in_order, lambda x: x["line"]), "\n"), "\r$", ""
        ).alias("text"),
    )
    records = records.where(F.regexp_replace("text", "\\s", "") != "")
    header = F.min("number").over(Window.partitionBy("file"))
    return records.withColumn("header", header).where(F.col("number") > F.col("header"))


def _fields(records: Any, delimiter: str) -> Any:
    """Each record's fields, unquoted; a record that is not valid CSV fails the job that reads
    it, naming its file and line (see ``load``)."""
    from pyspark.sql import functions as F

    field = _field(delimiter)
    valid = f"^{field}(?:{re.escape(delimiter)}{field})*$"
    where = F.concat(F.col("file"), F.lit(": line "), F.col("number").cast("string"))
    malformed = F.raise_error(F.concat(where, F.lit(f": {MALFORMED}")))
    tokens = F.regexp_extract_all(
        F.concat(F.lit(delimiter), "text"), F.lit(f"{re.escape(delimiter)}({field})"), 1
    )
    plain = F.split("text", re.escape(delimiter), -1)
    unquoted = F.transform(
        tokens,
        lambda t: F.when(
            t.startswith('"'), F.regexp_replace(F.regexp_extract(t, '(?s)^"(.*)"$', 1), '""', '"')
        ).otherwise(t),
    )
    fields = (
        F.when(~F.col("text").rlike(valid), malformed)
        .when(F.col("text").contains('"'), unquoted)
        .otherwise(plain)
    )
    return records.withColumn("fields", fields)


def load(spark: Any, config: Config, source: SourceConfig, location: Path) -> None:
    """The raw table of one source (``source_frame``), written as Parquet to ``location``; a
    malformed record Spark meets while writing it is the InputError naming it."""
    from pyspark.errors import PySparkException

    try:
        source_frame(spark, config, source).write.parquet(str(location))
    except PySparkException as exc:
        found = _RAISED.search(str(exc))
        if found is None:
            raise
        raise InputError(found.group(1)) from exc


def source_frame(spark: Any, config: Config, source: SourceConfig) -> Any:
    """The raw table of one source: lineage columns, then every column of every file (nulls
    where a file has none), all text."""
    headers = mapped_headers(config, source)
    if not headers:
        schema = ", ".join(
            f"`{n}` {'bigint' if n == LINE_NUMBER else 'string'}"
            for n in (*LINEAGE_COLUMNS, *source.raw_columns)
        )
        return spark.createDataFrame([], schema)
    groups = _header_groups(headers, source)
    ordered = list(raw_column_names(source, groups))
    frames = [
        _group_frame(spark, config, source, names, paths, ordered)
        for names, paths in groups.items()
    ]
    return reduce(lambda a, b: a.unionByName(b), frames)


def _group_frame(
    spark: Any,
    config: Config,
    source: SourceConfig,
    names: tuple[str, ...],
    paths: list[Path],
    ordered: list[str],
) -> Any:
    from pyspark.sql import functions as F

    records = _fields(_records(spark, paths, config.raw_dir), source.delimiter)
    width = len(names)
    count = F.size("fields")
    extra = F.slice("fields", width + 1, F.greatest(count - width, F.lit(1)))
    extra_text = F.when(
        count > width,
        F.concat(F.lit(" (extra: ['"), F.array_join(extra, "', '"), F.lit("'])")),
    ).otherwise(F.lit(""))
    error = F.when(
        count != width,
        F.concat(F.lit(f"expected {width} fields, found "), count.cast("string"), extra_text),
    )
    values = [
        F.when(count > i, F.element_at("fields", i + 1)).alias(n) for i, n in enumerate(names)
    ]
    missing = [F.lit(None).cast("string").alias(n) for n in ordered if n not in names]
    frame = records.select(
        F.col("file").alias(SOURCE_FILE),
        F.col("number").cast("bigint").alias(LINE_NUMBER),
        error.alias(PARSE_ERROR),
        *values,
        *missing,
    )
    return frame.select(SOURCE_FILE, LINE_NUMBER, PARSE_ERROR, *ordered)
