"""How each drift check's values spread now and in the last published refresh.

A feature is cut into the previous refresh's quantile bins (``config.drift_settings.bins``; ties
merge bins), a categorical attribute into its values; each row gives the customers and shares on
both sides. ml.drift measures the drift over these rows; a BI tool or the report draws them.
On the first refresh, or for a check the last refresh did not have, there are no rows.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from python_models import _drift_measures as measures

COLUMNS = {
    "check_kind": "feature or attribute",
    "subject": "The feature or categorical attribute",
    "label": "How the report calls it",
    "bin": "The bin's position, from 1 (lowest values first), or the value's, by customers before",
    "bin_low": "A feature bin's lowest value (inclusive); null: no lower end",
    "bin_high": "A feature bin's highest value (exclusive); null: no upper end",
    "value": "An attribute's value ((missing) for no value)",
    "customers_before": "Customers in the bin in the last published refresh",
    "customers_now": "Customers in the bin now",
    "share_before": "customers_before / all customers then",
    "share_now": "customers_now / all customers now",
}


def _feature_rows(before: pd.Series, now: pd.Series, bins: int) -> pd.DataFrame:
    """``before`` and ``now``: customers per value (``value_counts``)."""
    before_values, before_counts = before.index.to_numpy(float), before.to_numpy()
    edges = measures.quantile_edges(before_values, before_counts, bins)
    lows = np.concatenate([[np.nan], edges])
    highs = np.concatenate([edges, [np.nan]])
    return pd.DataFrame(
        {
            "bin": np.arange(1, len(edges) + 2),
            "bin_low": lows,
            "bin_high": highs,
            "value": pd.Series([None] * (len(edges) + 1), dtype="string"),
            "customers_before": measures.bin_counts(before_values, before_counts, edges),
            "customers_now": measures.bin_counts(now.index.to_numpy(float), now.to_numpy(), edges),
        }
    )


def _attribute_rows(before: pd.Series, now: pd.Series) -> pd.DataFrame:
    """``before`` and ``now``: customers per value."""
    counts = pd.concat({"customers_before": before, "customers_now": now}, axis=1).fillna(0)
    counts = counts.sort_values(["customers_before", "customers_now"], ascending=False)
    return pd.DataFrame(
        {
            "bin": np.arange(1, len(counts) + 1),
            "bin_low": np.nan,
            "bin_high": np.nan,
            "value": pd.Series(counts.index, dtype="string"),
            "customers_before": counts["customers_before"].to_numpy(np.int64),
            "customers_now": counts["customers_now"].to_numpy(np.int64),
        }
    )


def model(
    int_customer_features: duckdb.DuckDBPyRelation,
    previous_int_customer_features: duckdb.DuckDBPyRelation | None,
    drift_settings: pd.DataFrame,
    drift_checks: pd.DataFrame,
) -> pd.DataFrame:
    bins = int(drift_settings["bins"].iloc[0])
    earlier = previous_int_customer_features
    frames = []
    for check in drift_checks.itertuples():
        if earlier is None or check.subject not in earlier.columns:
            continue
        if check.check_kind == "feature":
            rows = _feature_rows(
                measures.value_counts(earlier, check.subject),
                measures.value_counts(int_customer_features, check.subject),
                bins,
            )
        else:
            rows = _attribute_rows(
                measures.category_counts(earlier, check.subject),
                measures.category_counts(int_customer_features, check.subject),
            )
        rows.insert(0, "label", check.label)
        rows.insert(0, "subject", check.subject)
        rows.insert(0, "check_kind", check.check_kind)
        frames.append(rows)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in COLUMNS})
    table = pd.concat(frames, ignore_index=True)
    for side in ("before", "now"):
        totals = table.groupby("subject")[f"customers_{side}"].transform("sum")
        table[f"share_{side}"] = table[f"customers_{side}"] / totals.where(totals > 0)
    return table[list(COLUMNS)]


def _dtype(column: str) -> str:
    if column in ("check_kind", "subject", "label", "value"):
        return "string"
    return "int64" if column in ("bin", "customers_before", "customers_now") else "float64"
