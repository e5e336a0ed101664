"""Customers per gender: the smallest Python model, proving the contract end to end."""

from __future__ import annotations

import pandas as pd


def model(stg_customers: pd.DataFrame) -> pd.DataFrame:
    counts = stg_customers.groupby("gender", sort=True).size()
    return pd.DataFrame(
        {
            "gender": counts.index.astype(str),
            "customers": counts.to_numpy(dtype="int64"),
            "share": counts.to_numpy(dtype="float64") / counts.sum(),
        }
    )
