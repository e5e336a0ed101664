"""Spark reads the landing CSVs itself (issue 20) and gives engine/refresh/loader.py's raw table:
the same records, files, line numbers and parse errors, on files written every awkward way (a BOM,
CRLF, blank lines, other header spellings and orders, an extra column, ragged rows, quoted
fields with delimiters, quotes and line breaks, a gzipped file)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from test_pipeline_e2e import _dirty_dataset

from engine.adapters.spark.loader import load, source_frame
from engine.errors import InputError
from engine.project.config import load_config
from engine.refresh.loader import source_parts

from conftest import ProjectCopy

QUOTED = (
    "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)\r\n"
    '501,"Female",30,50,50\r\n'
    '502,"Fe, male",31,51,51\r\n'
    '503,"say ""hi""",32,52,52\r\n'
    '504,"two\r\nlines",33,53,53\r\n'
    "\r\n"
    '505,Male,34,"",54,"extra, quoted"\r\n'
    '506,"three\nmore\nlines",35,55\r\n'
    "507,Male,36,56,56"
)


def _rows(table: Any) -> list[tuple]:
    return sorted(tuple(r.values()) for r in table)


def _both(copy: ProjectCopy, spark: Any, source: str = "customers") -> tuple[list, list]:
    config = load_config(copy.config)
    import pyarrow as pa

    duckdb_side = pa.concat_tables(list(source_parts(config, config.sources[source])))
    frame = source_frame(spark, config, config.sources[source], copy.root / f"{source}.lines")
    assert frame.columns == duckdb_side.column_names
    spark_rows = [r.asDict() for r in frame.collect()]
    return _rows(duckdb_side.to_pylist()), _rows(spark_rows)


def test_spark_reads_dirty_exports_as_the_loader_does(
    spark: Any, empty_project: ProjectCopy
) -> None:
    first, second, expected = _dirty_dataset(seed=11)
    empty_project.write_csv("export_a.csv", first)
    empty_project.write_csv("export_b.csv", second)
    empty_project.write_csv("quoted export+1.csv", QUOTED)
    with gzip.open(empty_project.raw / "export_c.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write(second.replace("north", "south"))
    empty_project.edit_config('files = ["customers/*.csv"]', 'files = ["customers/*.csv*"]')
    want, got = _both(empty_project, spark)
    second_rows = sum(1 for r in want if r[0] == "customers/export_b.csv")
    assert len(want) == expected["raw"] + second_rows + 7  # the gzipped copy; QUOTED's records
    assert got == want
    errors = [r for r in want if r[2] is not None]
    assert any("extra: ['extra, quoted']" in r[2] for r in errors)  # the case is exercised
    assert any(
        r[1] == 8 and r[0] == "customers/quoted export+1.csv" for r in want
    )  # a record after two lines


def test_files_read_in_many_splits_are_numbered_as_one(
    spark: Any, empty_project: ProjectCopy
) -> None:
    """Spark reads a big file in splits side by side; line numbers run on across them, and a
    quoted field that spans a split boundary stays one record."""
    first, second, _ = _dirty_dataset(seed=12)
    empty_project.write_csv("export_a.csv", first)
    empty_project.write_csv("export_b.csv", second)
    # A quoted field of 60 lines, about 2 kB: every split boundary in it falls inside it.
    long_field = "\n".join(f"line {i} of a long quoted comment" for i in range(60))
    header, records = QUOTED.split("\r\n", 1)
    records = records.replace("507,Male", f'507,"{long_field}"') + "\r\n"
    empty_project.write_csv("spanning.csv", header + "\r\n" + records * 3)
    spark.conf.set("spark.sql.files.maxPartitionBytes", "600")
    try:
        want, got = _both(empty_project, spark)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert got == want
    splits = spark.read.parquet(str(empty_project.root / "customers.lines" / "group_0"))
    assert splits.select("file", "split").distinct().count() > 10  # three files, many splits
    assert sum(r[0] == "customers/spanning.csv" for r in want) == 21  # 7 records, 3 times


def test_a_broken_quote_fails_the_load_naming_file_and_line(
    spark: Any, empty_project: ProjectCopy, tmp_path: Path
) -> None:
    empty_project.write_csv("broken.csv", QUOTED.replace('503,"say ""hi"""', '503,"say "hi""'))
    config = load_config(empty_project.config)
    source = config.sources["customers"]
    with pytest.raises(InputError, match=r"broken\.csv: line 4: malformed CSV"):
        list(source_parts(config, source))  # the DuckDB engine's loader, for comparison
    # Found while Spark writes the table, in the same job.
    with pytest.raises(InputError, match=r"^customers/broken\.csv: line 4: malformed CSV: a quote"):
        load(spark, config, source, tmp_path / "raw_customers")


def test_a_byte_that_is_not_utf8_fails_the_load_naming_its_line_as_the_loader_does(
    spark: Any, empty_project: ProjectCopy, tmp_path: Path
) -> None:
    """Spark keeps a bad byte as it is (Python would see U+FFFD), and the character U+FFFD
    itself, written as UTF-8, is valid text."""
    header = QUOTED.split("\r\n", 1)[0]
    clean = "".join(f"{i},Male,{20 + i % 50},15,39\n" for i in range(1, 1001))
    empty_project.write_csv("replacement.csv", f"{header}\n1,Fran\ufffdois,30,15,39\n")
    want, got = _both(empty_project, spark)
    assert got == want and want[0][4] == "Fran\ufffdois"
    # Past the first 8 kB, which the headers' reader decodes before Spark reads a line.
    text = f"{header}\n{clean}1001,Garçon,30,15,39\n{clean}"
    empty_project.write_csv("latin.csv", text, encoding="latin-1")
    config = load_config(empty_project.config)
    source = config.sources["customers"]
    with pytest.raises(InputError) as loader:
        list(source_parts(config, source))  # the DuckDB engine's loader
    with pytest.raises(InputError) as spark_loader:
        load(spark, config, source, tmp_path / "raw_customers")
    assert str(spark_loader.value) == str(loader.value)
    assert "latin.csv: line 1002, byte 9 of the line (0xE7): not utf-8 text" in str(loader.value)


def test_the_sample_and_an_absent_optional_source(spark: Any, project: ProjectCopy) -> None:
    want, got = _both(project, spark)
    assert len(want) == 200 and got == want
    want, got = _both(project, spark, "experiment_logs")
    assert want == got == []
