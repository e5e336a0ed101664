"""Landing CSVs into a Spark DataFrame with engine/refresh/loader.py's result: every record as
text, its file and the line it starts on, and the same parse errors.

Spark reads the files itself, a big file in several splits side by side; Python reads only
their headers. A line's number is the count of lines in the earlier splits of its file plus its
place in its own split: the lines are stored once with their split and an id that runs on
within it, and the driver reads only the count of each split. In a file where no line has an
odd number of quotes, no quoted field spans lines, so each line is a record (the usual case,
and no sort). In any other file a line continues the record before it while that record has an
open quote (an odd number of quote characters so far), so a quoted field may span lines as
spreadsheets write them; that sorts the file's lines. Records are split into fields by
delimiter, or, when one holds a quote, by a regular expression for quoted fields; a record that
is not valid CSV fails the load, naming the file and line, as the csv module would. It is found
while Spark writes the table (``raise_error``), not by a job of its own, which read and split
every file a second time; where several records are malformed, the one named is the first Spark
meets, not necessarily the first in the file.

Spark's text reader keeps a byte that is not UTF-8 as it is (and Python would see U+FFFD). The
lines are checked as they are counted, and a file with an invalid line is read again by Python
to name the line and byte: the load fails with engine/refresh/loader.py's error.

What differs from engine/refresh/loader.py: files must be UTF-8 (Spark's text reader decodes
nothing else); a quote inside an unquoted field (``a"b``), which Python's csv module keeps as
text, fails the load here.
"""

from __future__ import annotations

import codecs
import itertools
import re
import shutil
from functools import reduce
from pathlib import Path
from typing import Any, NamedTuple

from engine.errors import InputError
from engine.project.config import Config
from engine.project.sources import SourceConfig
from engine.refresh.loader import (
    LINE_NUMBER,
    LINEAGE_COLUMNS,
    PARSE_ERROR,
    SOURCE_FILE,
    mapped_headers,
    not_decodable,
    raw_column_names,
)

# Possessive: Java's regex engine recurses once per repetition of a group, so a group taken
# once per character overflowed the JVM's stack on a quoted field of a few kilobytes.
_QUOTED = '"(?:[^"]++|"")*+"'
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


def _stored_lines(spark: Any, paths: list[Path], raw_dir: Path, scratch: Path) -> Any:
    """Every line of the files with its file, the byte offset of the split Spark read it in,
    and an id that grows by one from line to line within a split; stored in ``scratch``,
    because reading the text again could split it otherwise (the split size follows the
    cores present)."""
    from pyspark.sql import functions as F

    # The path is a URI, percent-encoded ('%20' for a space); '+' is kept as it is.
    uri_path = F.regexp_replace(F.col("_metadata.file_path"), "\\+", "%2B")
    root = re.escape(raw_dir.resolve().as_posix().rstrip("/") + "/")
    spark.read.text([str(p) for p in paths], lineSep="\n").select(
        F.regexp_replace(F.url_decode(uri_path), f"^file:(//)?{root}", "").alias("file"),
        F.col("_metadata.file_block_start").alias("split"),
        F.monotonically_increasing_id().alias("id"),
        F.col("value").alias("line"),
    ).write.parquet(str(scratch))
    return spark.read.parquet(str(scratch))


def _filled(column: str) -> Any:
    """Not blank: a character other than whitespace."""
    from pyspark.sql import functions as F

    return F.col(column).rlike("\\S")


def _quotes(text: Any) -> Any:
    from pyspark.sql import functions as F

    return F.length(text) - F.length(F.translate(text, '"', ""))


class Numbering(NamedTuple):
    """Per split of each file (file, split, first id, lines before it, the file's header line);
    the files with a line of an odd number of quotes, where a quoted field may span lines; and
    the files with a line that is not valid UTF-8."""

    splits: list[tuple[str, int, int, int, int | None]]
    spanning: list[str]
    invalid: list[str]


def _numbering(lines: Any) -> Numbering:
    """Counted per split: a line's number is the lines of the earlier splits of its file plus
    its place in its own; the header is the file's first line that is not blank."""
    from pyspark.sql import functions as F

    splits = lines.groupBy("file", "split").agg(
        F.count("*").alias("lines"),
        F.min("id").alias("first"),
        F.min(F.when(_filled("line"), F.col("id"))).alias("filled"),
        F.max(_quotes("line") % 2).alias("odd"),
        F.max(~F.is_valid_utf8("line")).alias("invalid"),
    )
    by_file: dict[str, list[Any]] = {}
    for row in sorted(splits.collect()):
        by_file.setdefault(row.file, []).append(row)
    numbering = []
    for file, rows in by_file.items():
        before = itertools.accumulate((r.lines for r in rows), initial=0)
        placed = list(zip(rows, before, strict=False))
        header = next((b + r.filled - r.first + 1 for r, b in placed if r.filled is not None), None)
        numbering.extend((file, r.split, r.first, b, header) for r, b in placed)
    return Numbering(
        numbering,
        spanning=[f for f, rows in by_file.items() if any(r.odd for r in rows)],
        invalid=[f for f, rows in by_file.items() if any(r.invalid for r in rows)],
    )


def _records(
    spark: Any, source: SourceConfig, paths: list[Path], raw_dir: Path, scratch: Path
) -> Any:
    """(file, first line, text) of every record after the header, blank ones left out.

    A line is a record, unless its file has a line with an odd number of quotes: there, a line
    continues the record before it while that record has an open quote."""
    from pyspark.sql import functions as F

    lines = _stored_lines(spark, paths, raw_dir, scratch)
    numbering = _numbering(lines)
    if numbering.invalid:
        raise InputError(not_decodable(raw_dir / numbering.invalid[0], source))
    schema = "file string, split bigint, first bigint, before bigint, header bigint"
    splits = F.broadcast(spark.createDataFrame(numbering.splits, schema))
    numbered = lines.join(splits, ["file", "split"]).select(
        "file",
        (F.col("before") + F.col("id") - F.col("first") + 1).alias("number"),
        "line",
        "header",
    )
    spanning = numbering.spanning
    # A CRLF file's lines end in CR, which is no part of the record.
    records = numbered.where(~F.col("file").isin(spanning)).select(
        "file", "number", F.regexp_replace("line", "\r$", "").alias("text"), "header"
    )
    if spanning:
        records = records.unionByName(_joined(numbered.where(F.col("file").isin(spanning))))
    return records.where(_filled("text") & (F.col("number") > F.col("header")))


def _joined(lines: Any) -> Any:
    """The records of numbered lines, a line joined to the one before while a quote is open."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    earlier = (
        Window.partitionBy("file").orderBy("number").rowsBetween(Window.unboundedPreceding, -1)
    )
    running = Window.partitionBy("file").orderBy("number")
    lines = lines.withColumn(
        "open", F.coalesce(F.sum(_quotes("line")).over(earlier), F.lit(0)) % 2 == 1
    )
    lines = lines.withColumn("record", F.sum(F.when(F.col("open"), 0).otherwise(1)).over(running))
    in_order = F.sort_array(F.collect_list(F.struct("number", "line")))
    return (
        lines.groupBy("file", "record", "header")
        .agg(
            F.min("number").alias("number"),
            # A CR before a line break inside a quoted field is kept, as the csv module keeps it.
            F.regexp_replace(
                F.array_join(F.transform(in_order, lambda x: x["line"]), "\n"), "\r$", ""
            ).alias("text"),
        )
        .drop("record")
    )


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
    # Without a quote or a line break a record is valid CSV: the pattern is for the others.
    special = reduce(lambda a, b: a | b, (F.col("text").contains(c) for c in '"\r\n'))
    fields = (
        F.when(~special, plain).when(~F.col("text").rlike(valid), malformed).otherwise(unquoted)
    )
    return records.withColumn("fields", fields)


def load(spark: Any, config: Config, source: SourceConfig, location: Path) -> None:
    """The raw table of one source (``source_frame``), written as Parquet to ``location``; a
    malformed record Spark meets while writing it is the InputError naming it."""
    from pyspark.errors import PySparkException

    scratch = location.with_name(f"{location.name}.lines")
    try:
        source_frame(spark, config, source, scratch).write.parquet(str(location))
    except PySparkException as exc:
        found = _RAISED.search(str(exc))
        if found is None:
            raise
        raise InputError(found.group(1)) from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def source_frame(spark: Any, config: Config, source: SourceConfig, scratch: Path) -> Any:
    """The raw table of one source: lineage columns, then every column of every file (nulls
    where a file has none), all text. Its lines are stored in ``scratch`` first, which must
    stay until the frame is written."""
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
        _group_frame(spark, config, source, names, paths, ordered, scratch / f"group_{i}")
        for i, (names, paths) in enumerate(groups.items())
    ]
    return reduce(lambda a, b: a.unionByName(b), frames)


def _group_frame(
    spark: Any,
    config: Config,
    source: SourceConfig,
    names: tuple[str, ...],
    paths: list[Path],
    ordered: list[str],
    scratch: Path,
) -> Any:
    from pyspark.sql import functions as F

    records = _fields(_records(spark, source, paths, config.raw_dir, scratch), source.delimiter)
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
