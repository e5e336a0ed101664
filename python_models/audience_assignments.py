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

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp

from engine.model_api import DIALECT, ParameterError
from python_models._audience_keys import membership_keys
from python_models._relations import frame
from python_models._sql_scoring import double

COLUMNS = {
    "audience": "The audience (audiences.<name>)",
    "customer_id": "A customer its condition selects in marts.dim_customers",
    "audience_group": "target (in the exported list) or holdout (kept out, to measure against)",
    "holdout_draw": "The customer's hash draw in [0, 1): holdout when below holdout_share",
    "first_seen_run_id": "The refresh the customer entered the audience in",
}


def holdout_draw(audience: str) -> exp.Expression:
    """The customer's draw in [0, 1) from md5 of "<audience>:<customer id>", in SQL."""
    text = exp.DPipe(
        this=exp.Literal.string(f"{audience}:"),
        expression=exp.cast(exp.column("customer_id", quoted=True), "varchar"),
    )
    prefix = exp.func("left", exp.func("md5", text), exp.Literal.number(16))
    hexadecimal = exp.DPipe(this=exp.Literal.string("0x"), expression=prefix)
    unsigned = exp.DataType.build("ubigint", dialect=DIALECT)
    return exp.Div(this=exp.cast(hexadecimal, unsigned), expression=double(2.0**64))


def _members(dim_customers: duckdb.DuckDBPyRelation, audience: pd.Series) -> pd.DataFrame:
    condition = sqlglot.parse_one(audience["condition"], read=DIALECT).sql(DIALECT)
    # DuckDB hashes: md5 in Python, one customer at a time, took 3 s at 600,000 members.
    columns = (
        exp.column("customer_id", quoted=True),
        holdout_draw(audience["audience"]).as_("holdout_draw"),
    )
    projection = ", ".join(c.sql(DIALECT) for c in columns)
    try:
        chosen = frame(
            dim_customers.filter(condition).project(projection),
            ["customer_id", "holdout_draw"],
            ["customer_id"],
        )
    except duckdb.Error as exc:  # a type mismatch, say: the config's mistake, not the model's
        key = f"audiences.{audience['audience']}.condition"
        raise ParameterError(key, f"cannot be applied to marts.dim_customers: {exc}") from None
    draws = chosen["holdout_draw"].to_numpy(dtype=np.float64)
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
    at = pc.index_in(membership_keys(members), value_set=membership_keys(previous))
    earlier = pc.take(pa.array(previous["first_seen_run_id"], type=pa.large_string()), at)
    return pc.fill_null(earlier, run_id).to_numpy(zero_copy_only=False)


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
