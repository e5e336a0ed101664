"""Reading the published warehouse, with a message instead of a traceback when it is damaged.

A file truncated by a full disk, or overwritten by something else, fails as DuckDB opens it. A
refresh must not guess what it held (segment ids, lineage and run history live in it), so it
stops and says what to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from engine.errors import InputError


def damaged(path: Path, exc: duckdb.Error) -> InputError:
    problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(
        f"{path}: the published warehouse cannot be read ({problem}); the file is damaged "
        "(truncated or overwritten). Restore it from a backup, or move it aside to build a new "
        "one (segment ids, lineage and run history then start again). Nothing was changed."
    )


@contextlib.contextmanager
def opening(path: Path) -> Iterator[None]:
    """Turn DuckDB's failure to open ``path`` into a message naming it."""
    try:
        yield
    except duckdb.Error as exc:
        raise damaged(path, exc) from exc


def connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """The published warehouse, read-only."""
    with opening(path):
        return duckdb.connect(str(path), read_only=True)
