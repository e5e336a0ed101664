"""Who is in each configured audience, and in which group: target or holdout.

An audience ([audiences.<name>] in pipeline.toml, seed config.audiences) holds the customers of
marts.dim_customers its condition selects. Its holdout is decided per customer by a hash of the
audience's name and the customer's id, so the same customer stays in the same group from refresh
to refresh (and a customer who leaves and comes back returns to it):

    holdout  when  int(md5("<audience>:<customer_id>")[:16], 16) / 2**64 < holdout_share

which DuckDB computes as ``('0x' || left(md5(...), 16))::ubigint / 2^64``. ``first_seen_run_id``
is the refresh a customer entered the audience in, kept while they stay.
"""

from __future__ import annotations

import hashlib

import duckdb
import numpy as np
import pandas as pd
import sqlglot

from engine.model_api import DIALECT, ParameterError
from python_models._relations import frame

COLUMNS = {
    "audience": "The audience (audiences.<name>)",
    "customer_id": "A customer its condition selects in marts.dim_customers",
    "audience_group": "target (in the exported list) or holdout (kept out, to measure against)",
    "holdout_draw": "The customer's hash draw in [0, 1): holdout when below holdout_share",
    "first_seen_run_id": "The refresh the customer entered the audience in",
}


def holdout_draws(audience: str, customer_ids: pd.Series) -> np.ndarray:
    """Each customer's draw in [0, 1) from md5 of "<audience>:<customer id>"."""
    return np.array(
        [
            int(hashlib.md5(f"{audience}:{cid}".encode()).hexdigest()[:16], 16) / 2**64
            for cid in customer_ids
        ],
        dtype=np.float64,
    )


def _members(dim_customers: duckdb.DuckDBPyRelation, audience: pd.Series) -> pd.DataFrame:
    condition = sqlglot.parse_one(audience["condition"], read=DIALECT).sql(DIALECT)
    try:
        chosen = frame(dim_customers.filter(condition), ["customer_id"], ["customer_id"])
    except duckdb.Error as exc:  # a type mismatch, say: the config's mistake, not the model's
        key = f"audiences.{audience['audience']}.condition"
        raise ParameterError(key, f"cannot be applied to marts.dim_customers: {exc}") from None
    draws = holdout_draws(audience["audience"], chosen["customer_id"])
    return pd.DataFrame(
        {
            "audience": audience["audience"],
            "customer_id": chosen["customer_id"],
            "audience_group": np.where(draws < audience["holdout_share"], "holdout", "target"),
            "holdout_draw": draws,
        }
    )


def _first_seen(members: pd.DataFrame, previous: pd.DataFrame, run_id: str) -> np.ndarray:
    """The refresh each member entered in: kept from the last refresh, else this one."""

    # Matched as text: a customer id's type may differ between two refreshes' exports.
    def keys(frame: pd.DataFrame) -> pd.MultiIndex:
        return pd.MultiIndex.from_arrays(
            [frame["audience"].astype(str), frame["customer_id"].astype(str)]
        )

    seen = pd.Series(previous["first_seen_run_id"].to_numpy(), index=keys(previous))
    earlier = seen.reindex(keys(members)).to_numpy()
    return np.where(pd.isna(earlier), run_id, earlier)


def model(
    dim_customers: duckdb.DuckDBPyRelation,
    audiences: pd.DataFrame,
    previous_audience_assignments: pd.DataFrame | None,
    run_id: str,
) -> pd.DataFrame:
    # Every audience (none configured: no rows, the customer id still in its own type).
    frames = [_members(dim_customers, row) for _, row in audiences.iterrows()]
    empty = frame(dim_customers.limit(0), ["customer_id"]).assign(
        audience="", audience_group="", holdout_draw=0.0
    )
    members = pd.concat([empty, *frames], ignore_index=True)
    members["first_seen_run_id"] = run_id
    if previous_audience_assignments is not None and len(previous_audience_assignments):
        members["first_seen_run_id"] = _first_seen(members, previous_audience_assignments, run_id)
    text = ["audience", "audience_group", "first_seen_run_id"]
    return members.astype({"holdout_draw": "float64"} | {c: "string" for c in text})[list(COLUMNS)]
