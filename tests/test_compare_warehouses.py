"""benchmarks.compare_warehouses, which tests/test_same_results.py trusts: exact by default, and
with a tolerance only the DOUBLE columns may move, by the tolerance times (1 + |value|)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from benchmarks.compare_warehouses import differences

TABLE = "ml.scores"


def _warehouses(tmp_path: Path, first: list[tuple], second: list[tuple]) -> tuple[Path, Path]:
    paths = []
    for name, rows in (("a", first), ("b", second)):
        path = tmp_path / f"{name}.duckdb"
        with duckdb.connect(str(path)) as con:
            con.execute("create schema ml")
            con.execute(f"create table {TABLE} (id bigint, label varchar, x double)")
            con.executemany(f"insert into {TABLE} values (?, ?, ?)", rows)
        paths.append(path)
    return paths[0], paths[1]


ROWS = [(1, "a", 0.5), (2, "b", 1e6), (3, "c", None), (4, "d", 2.5e-15)]


def _with(changes: dict[int, tuple]) -> list[tuple]:
    return [changes.get(row[0], row) for row in ROWS]


@pytest.mark.parametrize(
    ("second", "tolerance", "found"),
    [
        (ROWS, None, False),
        (_with({1: (1, "a", 0.5000000000000001)}), None, True),  # one ulp
        (_with({2: (2, "b", 1e6 * (1 + 1e-13))}), 1e-12, False),
        (_with({2: (2, "b", 1e6 * (1 + 1e-11))}), 1e-12, True),
        (_with({4: (4, "d", -5e-15)}), 1e-12, False),  # near zero: absolute
        (_with({4: (4, "d", 5e-12)}), 1e-12, True),
        (_with({3: (3, "c", 0.0)}), 1e-12, True),  # a null matches only a null
        (_with({1: (1, "z", 0.5)}), 1e-12, True),  # other columns exactly
    ],
)
def test_what_differs(
    tmp_path: Path, second: list[tuple], tolerance: float | None, found: bool
) -> None:
    first_path, second_path = _warehouses(tmp_path, ROWS, second)
    tolerances = {TABLE: tolerance} if tolerance is not None else None
    assert bool(differences(first_path, second_path, None, tolerances)) is found
