"""Load landing CSVs into the ``raw`` layer: every row as text, with its file and line number.

Python's csv module does the parsing because it reports the physical line a record started on
(quoted fields may span lines) and handles BOMs, CRLF and quoting the way spreadsheets write them.
Headers are mapped to canonical names here, so every model downstream sees one spelling.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from engine.config import Config, SourceConfig
from engine.errors import InputError

SOURCE_FILE = "_source_file"
LINE_NUMBER = "_line_number"
PARSE_ERROR = "_parse_error"
LINEAGE_COLUMNS = (SOURCE_FILE, LINE_NUMBER, PARSE_ERROR)


@dataclass(frozen=True)
class LoadedSource:
    name: str
    table: pa.Table
    files: tuple[Path, ...]


def _map_header(header: list[str], source: SourceConfig, path: Path) -> list[str]:
    names: list[str] = []
    for position, raw_name in enumerate(header, start=1):
        canonical = source.canonical_for_header(raw_name)
        name = canonical or raw_name.strip() or f"column_{position}"
        if name in names or name in LINEAGE_COLUMNS:
            raise InputError(
                f"{path}: line 1, column {position}: header {raw_name!r} maps to "
                f"{name!r}, which an earlier column already uses"
            )
        names.append(name)
    missing = [c for c in source.required if c not in names]
    if missing:
        details = "; ".join(
            f"'{c}' (a header such as {', '.join(repr(s) for s in source.columns[c][:3])})"
            for c in missing
        )
        raise InputError(f"{path}: missing required column {details}. Found headers: {header}")
    return names


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) for every non-blank record of a CSV file."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        previous_end = 0
        try:
            for fields in reader:
                start = previous_end + 1
                previous_end = reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                yield start, fields
        except csv.Error as exc:
            raise InputError(f"{path}: line {reader.line_num}: malformed CSV: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path}: near line {reader.line_num + 1}: not UTF-8 text ({exc.reason} at "
                f"byte {exc.start} of the chunk being read); re-export the file as UTF-8"
            ) from exc


def read_source_file(
    path: Path, source: SourceConfig, relative_name: str
) -> tuple[list[str], dict[str, list]]:
    """Parse one landing file into canonical column lists (text values)."""
    records = _records(path)
    try:
        _, header = next(records)
    except StopIteration:
        raise InputError(f"{path}: the file is empty; expected a header line") from None
    names = _map_header(header, source, path)
    columns: dict[str, list] = {n: [] for n in (*LINEAGE_COLUMNS, *names)}
    width = len(names)
    value_columns = [columns[n] for n in names]
    lines = columns[LINE_NUMBER]
    errors = columns[PARSE_ERROR]
    for line, fields in records:
        lines.append(line)
        if len(fields) == width:
            errors.append(None)
        else:
            extra = f" (extra: {fields[width:]!r})" if len(fields) > width else ""
            errors.append(f"expected {width} fields, found {len(fields)}{extra}")
            fields = (fields + [None] * width)[:width]
        for column, value in zip(value_columns, fields, strict=True):
            column.append(value)
    columns[SOURCE_FILE] = [relative_name] * len(lines)
    return names, columns


def load_source(config: Config, source: SourceConfig) -> LoadedSource:
    """Every landing file of one source, unioned by column name, as one Arrow table."""
    files = source.landing_files(config.raw_dir)
    if not files and source.optional:
        empty = {name: pa.array([], pa.string()) for name in (SOURCE_FILE, PARSE_ERROR)}
        empty[LINE_NUMBER] = pa.array([], pa.int64())
        empty.update({name: pa.array([], pa.string()) for name in source.columns})
        table = pa.table({n: empty[n] for n in (*LINEAGE_COLUMNS, *source.columns)})
        return LoadedSource(name=source.name, table=table, files=())
    if not files:
        patterns = ", ".join(repr(p) for p in source.files)
        raise InputError(
            f"source '{source.name}': no landing file in {config.raw_dir} matches {patterns} "
            f"(config key 'sources.{source.name}.files')"
        )
    ordered_names: list[str] = list(source.columns)
    parts: list[tuple[int, dict[str, list]]] = []
    for path in files:
        names, columns = read_source_file(path, source, path.relative_to(config.raw_dir).as_posix())
        ordered_names.extend(n for n in names if n not in ordered_names)
        parts.append((len(columns[LINE_NUMBER]), columns))

    arrays: dict[str, pa.Array] = {}
    for name in (*LINEAGE_COLUMNS, *ordered_names):
        chunks = []
        for length, columns in parts:
            values = columns.get(name, [None] * length)
            kind = pa.int64() if name == LINE_NUMBER else pa.string()
            chunks.append(pa.array(values, type=kind))
        arrays[name] = pa.chunked_array(chunks, type=chunks[0].type)
    return LoadedSource(name=source.name, table=pa.table(arrays), files=tuple(files))
