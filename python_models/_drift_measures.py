"""Drift measures between two samples of one column: quantile bins of the earlier sample and
the population stability index (PSI) over them, and PSI over the values of a category.

PSI = sum over bins of (now - before) * ln(now / before), the shares floored at ``min_share``
so that a bin empty on one side gives a large, finite figure.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from python_models._relations import counts, frame

MISSING = "(missing)"


def quantile_edges(before: np.ndarray, bins: int) -> np.ndarray:
    """The inner edges of ``bins`` equal-count bins of the earlier sample (ties merge bins)."""
    inner = np.quantile(before, np.arange(1, bins) / bins)
    return np.unique(inner)


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Values per bin: bin i holds edges[i-1] <= x < edges[i] (the ends are open)."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def psi(before: np.ndarray, now: np.ndarray, min_share: float) -> float:
    """PSI of two count (or share) vectors over the same bins."""
    if before.sum() == 0 or now.sum() == 0:
        return float("nan")
    share_before = np.maximum(before / before.sum(), min_share)
    share_now = np.maximum(now / now.sum(), min_share)
    return float(np.sum((share_now - share_before) * np.log(share_now / share_before)))


def category_counts(customers: duckdb.DuckDBPyRelation, column: str) -> pd.Series:
    """Customers per value of a category (counted by DuckDB), a missing value as its own."""
    found = counts(customers, column)
    found.index = pd.Index(found.index, dtype="string").fillna(MISSING)
    return found


def column_values(customers: duckdb.DuckDBPyRelation, column: str) -> np.ndarray:
    """A feature's values, missing ones left out."""
    values = frame(customers, [column])[column].to_numpy(dtype=np.float64, na_value=np.nan)
    return values[~np.isnan(values)]
