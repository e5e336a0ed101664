"""Seeded, Mall-shaped customer CSVs at any size, with an optional share of dirty rows.

Customers come from a Gaussian mixture shaped like the Mall sample's segments (young big
spenders, affluent savers, …). Dirty rows are of four kinds — a non-numeric age, an out-of-range
spending score, an exact duplicate, a conflicting duplicate (same id, other age) — and
``generation.json`` in the workspace (beside its landing folder) says how many of each, and so
how many rows staging must stage, reject and collapse.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import duckdb
import numpy as np
import pyarrow as pa

HEADER = ("CustomerID", "Gender", "Age", "Annual Income (k$)", "Spending Score (1-100)")
# (weight, age mean, age sd, income mean, income sd, score mean, score sd), after the sample.
MIXTURE = (
    (0.11, 25, 5, 26, 7, 79, 10),
    (0.20, 27, 7, 57, 9, 48, 9),
    (0.20, 33, 4, 87, 16, 82, 9),
    (0.16, 42, 10, 89, 16, 17, 10),
    (0.10, 46, 11, 26, 7, 20, 12),
    (0.23, 56, 8, 54, 8, 49, 7),
)
ROWS_PER_FILE = 1_000_000


@dataclass(frozen=True)
class Generated:
    customers: int
    files: list[str]
    bad_type: int
    out_of_range: int
    exact_duplicates: int
    conflicting_duplicates: int

    @property
    def raw_rows(self) -> int:
        return self.customers + self.exact_duplicates + self.conflicting_duplicates

    @property
    def staged_rows(self) -> int:
        return self.customers - self.bad_type - self.out_of_range - self.conflicting_duplicates

    @property
    def rejected_rows(self) -> int:
        return self.bad_type + self.out_of_range + 2 * self.conflicting_duplicates

    @property
    def collapsed_rows(self) -> int:
        return self.exact_duplicates


def customers(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    weights = np.array([c[0] for c in MIXTURE])
    component = rng.choice(len(MIXTURE), size=n, p=weights / weights.sum())
    table = np.array([c[1:] for c in MIXTURE], dtype=np.float64)[component]
    age = np.clip(np.rint(rng.normal(table[:, 0], table[:, 1])), 18, 75)
    income = np.clip(np.rint(rng.normal(table[:, 2], table[:, 3])), 15, 150)
    score = np.clip(np.rint(rng.normal(table[:, 4], table[:, 5])), 1, 99)
    gender = np.where(rng.random(n) < 0.56, "Female", "Male")
    return {
        HEADER[0]: np.arange(1, n + 1).astype(str),
        HEADER[1]: gender,
        HEADER[2]: age.astype(np.int64).astype(str),
        HEADER[3]: income.astype(np.int64).astype(str),
        HEADER[4]: score.astype(np.int64).astype(str),
    }


def generate(n: int, directory: Path, seed: int, dirty_rate: float = 0.0) -> Generated:
    """Write ``n`` customers (plus dirty rows) as CSVs of at most ROWS_PER_FILE rows."""
    rng = np.random.default_rng(seed)
    columns = customers(n, rng)
    per_kind = int(n * dirty_rate / 4)
    chosen = rng.choice(n, size=4 * per_kind, replace=False)
    bad_type, out_of_range, duplicated, conflicting = np.split(chosen, 4)
    columns[HEADER[2]][bad_type] = "abc"
    columns[HEADER[4]][out_of_range] = "150"
    extra = {
        name: np.concatenate([values[duplicated], values[conflicting]])
        for name, values in columns.items()
    }
    extra[HEADER[2]][per_kind:] = (extra[HEADER[2]][per_kind:].astype(np.int64) + 1).astype(
        str
    )  # conflicting: same id, one year older
    rows = {name: np.concatenate([columns[name], extra[name]]) for name in HEADER}
    order = rng.permutation(len(rows[HEADER[0]]))
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    with duckdb.connect() as con:
        for part, start in enumerate(range(0, len(order), ROWS_PER_FILE), start=1):
            window = order[start : start + ROWS_PER_FILE]
            batch = pa.table({name: rows[name][window] for name in HEADER})
            path = directory / f"customers_{part:03d}.csv"
            con.from_arrow(batch).write_csv(str(path), header=True)
            files.append(path.name)
    return Generated(n, files, per_kind, per_kind, per_kind, per_kind)


class Counted(Protocol):
    """A generation's record (customers or order lines): a dataclass with these counts."""

    @property
    def raw_rows(self) -> int: ...
    @property
    def staged_rows(self) -> int: ...
    @property
    def rejected_rows(self) -> int: ...
    @property
    def collapsed_rows(self) -> int: ...


def write_summary(generated: Counted, path: Path) -> None:
    """How many rows of each kind were written, and so what staging must stage and reject."""
    path.write_text(
        json.dumps(
            {
                **asdict(generated),
                "raw_rows": generated.raw_rows,
                "staged_rows": generated.staged_rows,
                "rejected_rows": generated.rejected_rows,
                "collapsed_rows": generated.collapsed_rows,
            },
            indent=2,
        )
    )


def write_config(config_path: Path, output: Path) -> Path:
    """A copy of the config whose warehouse, landing folder and run results live in ``output``.

    Everything else in the config (rules, features, models, experiments) is kept as it is.
    """
    text = config_path.read_text(encoding="utf-8")
    for key, value in (
        ("path", output / "segments.duckdb"),
        ("raw_dir", output / "raw"),
        ("run_results_dir", output / "run_results"),
    ):
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {json.dumps(str(value))}", text, count=1)
    written = output / "pipeline.toml"
    written.write_text(text, encoding="utf-8")
    return written


def workspace(config_path: Path, output: Path, n: int, seed: int, dirty_rate: float) -> Generated:
    """A self-contained folder: generated landing files and a config that points at them."""
    generated = generate(n, output / "raw" / "customers", seed, dirty_rate)
    # Beside the landing folder, not in it: a run reports every file no source reads.
    write_summary(generated, output / "generation.json")
    write_config(config_path, output)
    return generated
