"""Drift measures between two samples of one column: quantile bins of the earlier sample and
the population stability index (PSI) over them, PSI over the values of a category, and the
two-sample Kolmogorov-Smirnov test.

PSI = sum over bins of (now - before) * ln(now / before), the shares floored at ``min_share``
so that a bin empty on one side gives a large, finite figure.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
from scipy import stats
from sqlglot import exp

from engine.model_api import DIALECT
from python_models._relations import counts

MISSING = "(missing)"
# scipy's ks_2samp is exact up to this many values a side, asymptotic (Smirnov) above.
KS_EXACT_UP_TO = 10_000


def quantile_edges(values: np.ndarray, counts: np.ndarray, bins: int) -> np.ndarray:
    """The inner edges of ``bins`` equal-count bins of the earlier sample (ties merge bins).

    The sample is given as its distinct values, ascending, and their counts (``value_counts``):
    at millions of customers, reading and sorting every value cost a second per feature. The
    edges are np.quantile's (linear method) of the values repeated, to the last bit: the same
    positions and numpy's own interpolation between the two order statistics around each."""
    if len(counts) == 0:  # no value before: one bin, open at both ends
        return np.empty(0)
    ends = np.cumsum(counts)
    positions = (ends[-1] - 1) * (np.arange(1, bins) / bins)
    below = np.floor(positions)
    low = values[np.searchsorted(ends, below, side="right")]
    high = values[np.searchsorted(ends, np.minimum(below + 1, ends[-1] - 1), side="right")]
    weight = positions - below
    step = high - low
    inner = np.where(weight >= 0.5, high - step * (1 - weight), low + step * weight)
    return np.unique(inner)


def bin_counts(values: np.ndarray, counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Customers per bin, from distinct values and their counts: bin i holds
    edges[i-1] <= x < edges[i] (the ends are open)."""
    bins = np.searchsorted(edges, values, side="right")
    per_bin = np.zeros(len(edges) + 1, dtype=np.int64)
    np.add.at(per_bin, bins, counts.astype(np.int64))
    return per_bin


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


def value_counts(customers: duckdb.DuckDBPyRelation, column: str) -> pd.Series:
    """A feature's customers per value (as a float), missing ones left out, counted by DuckDB."""
    value = exp.cast(exp.column(column, quoted=True), exp.DataType.build("double"))
    present = exp.and_(value.is_(exp.null()).not_(), exp.func("isnan", value.copy()).not_())
    found = customers.filter(present.sql(DIALECT)).project(f"{value.sql(DIALECT)} as v")
    return counts(found, "v")


def ks_two_sample(before: pd.Series, now: pd.Series) -> tuple[float, float]:
    """scipy's two-sided ks_2samp of two samples given as counts per value (``value_counts``).

    At millions of customers, sorting every value of both refreshes cost seconds per feature;
    the counts per value give the same empirical distributions. Above ``KS_EXACT_UP_TO`` values
    a side, scipy takes Smirnov's asymptotic p-value, computed here the same way; below, the
    values are rebuilt and handed to scipy."""
    n1, n2 = int(before.sum()), int(now.sum())
    if min(n1, n2) == 0 or max(n1, n2) <= KS_EXACT_UP_TO:
        test = stats.ks_2samp(
            np.repeat(before.index.to_numpy(float), before.to_numpy()),
            np.repeat(now.index.to_numpy(float), now.to_numpy()),
        )
        return float(test.statistic), float(test.pvalue)
    values = before.index.union(now.index)
    below_before = before.reindex(values, fill_value=0).cumsum().to_numpy() / n1
    below_now = now.reindex(values, fill_value=0).cumsum().to_numpy() / n2
    differences = below_before - below_now
    below, above = float(np.clip(-differences.min(), 0, 1)), float(differences.max())
    statistic = below if below > above else above  # scipy's choice: 0.0, never -0.0
    larger, smaller = sorted([float(n1), float(n2)], reverse=True)
    effective = larger * smaller / (larger + smaller)
    return statistic, float(np.clip(stats.kstwo.sf(statistic, np.round(effective)), 0, 1))
