"""How customers moved between segments since the last published refresh.

One row per (previous segment, current segment) pair with its customer count. A customer new
since the last refresh has no previous segment; one who left has no current segment. A refresh
that starts a new lineage (ml.segment_lineage) has no previous segments at all.
"""

from __future__ import annotations

import duckdb
import pandas as pd

GROUPS = "from_segment_id, from_segment_name, to_segment_id, to_segment_name"


COLUMNS = {
    "from_segment_id": "The segment in the last published refresh; null for a customer new since",
    "from_segment_name": "Its name then",
    "to_segment_id": "The segment now; null for a customer who is no longer in the data",
    "to_segment_name": "Its name now",
    "customers": "Customers who moved from the one to the other",
    "moved": "Whether the segment changed",
}


def model(
    customer_segments: duckdb.DuckDBPyRelation,
    segment_lineage: pd.DataFrame,
    previous_customer_segments: duckdb.DuckDBPyRelation | None,
) -> pd.DataFrame:
    if segment_lineage["is_new_lineage"].iloc[-1]:
        previous_customer_segments = None  # a new population: nobody moved, everyone is new
    # Joined and counted in DuckDB: two 10M-customer memberships would not fit pandas' merge.
    current = customer_segments.project(
        "customer_id, segment_id as to_segment_id, segment_name as to_segment_name"
    ).set_alias("current")
    earlier = (
        customer_segments.limit(0)
        if previous_customer_segments is None
        else previous_customer_segments
    )
    previous = earlier.project(
        "customer_id as previous_customer_id, segment_id as from_segment_id, "
        "segment_name as from_segment_name"
    ).set_alias("previous")
    joined = previous.join(current, "previous_customer_id = customer_id", how="outer")
    grouped = (
        joined.aggregate(f"{GROUPS}, count(*) as customers", GROUPS).to_arrow_table().to_pandas()
    )
    grouped["from_segment_id"] = grouped["from_segment_id"].astype("Int64")
    grouped["to_segment_id"] = grouped["to_segment_id"].astype("Int64")
    grouped["moved"] = grouped["from_segment_id"].ne(grouped["to_segment_id"]).fillna(True)
    return grouped.sort_values(
        ["from_segment_id", "to_segment_id"], na_position="first"
    ).reset_index(drop=True)
