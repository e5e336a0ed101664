"""Customers per gender: the smallest Python model, proving the contract end to end."""

from __future__ import annotations

import duckdb
import pandas as pd

from python_models._relations import counts


def model(stg_customers: duckdb.DuckDBPyRelation) -> pd.DataFrame:
    per_gender = counts(stg_customers, "gender")
    return pd.DataFrame(
        {
            "gender": per_gender.index.astype(str),
            "customers": per_gender.to_numpy(dtype="int64"),
            "share": per_gender.to_numpy(dtype="float64") / per_gender.sum(),
        }
    )
