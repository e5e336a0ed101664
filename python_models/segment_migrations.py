"""How customers moved between segments since the last published refresh.

One row per (previous segment, current segment) pair with its customer count. A customer new
since the last refresh has no previous segment; one who left has no current segment. A refresh
that starts a new lineage (ml.segment_lineage) has no previous segments at all.

A segment's id continues only where the segments are the same group (ml.segment_centroids); when
k changes, segments split and merge instead, and ``change`` says so: a previous segment whose
customers went, a fifth or more each, to two or more segments was split; a segment that received
a fifth or more of its customers from each of two or more previous segments is a merge.
"""

from __future__ import annotations

import duckdb
import pandas as pd

GROUPS = "from_segment_id, from_segment_name, to_segment_id, to_segment_name"
# A flow of customers is part of a split or a merge from this share of either segment.
PART = 0.2


COLUMNS = {
    "from_segment_id": "The segment in the last published refresh; null for a customer new since",
    "from_segment_name": "Its name then",
    "to_segment_id": "The segment now; null for a customer who is no longer in the data",
    "to_segment_name": "Its name now",
    "customers": "Customers who moved from the one to the other",
    "moved": "Whether the segment changed",
    "share_of_from": "customers / the from segment's customers who are still here",
    "share_of_to": "customers / the to segment's customers who were here before",
    "change": (
        "stayed, moved, split (the from segment's customers went, a fifth or more each, to two or "
        "more segments), merged (the to segment got a fifth or more from each of two or more), "
        "new customer, or left"
    ),
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
    grouped = _changes(grouped)
    return grouped.sort_values(
        ["from_segment_id", "to_segment_id"], na_position="first"
    ).reset_index(drop=True)


def _changes(pairs: pd.DataFrame) -> pd.DataFrame:
    """Shares of each flow in its two segments, and what kind of change it is part of."""
    both = pairs["from_segment_id"].notna() & pairs["to_segment_id"].notna()
    counted = pairs["customers"].where(both, 0)
    out = pairs.assign(
        share_of_from=pairs["customers"]
        / counted.groupby(pairs["from_segment_id"]).transform("sum").where(both),
        share_of_to=pairs["customers"]
        / counted.groupby(pairs["to_segment_id"]).transform("sum").where(both),
    )
    out["share_of_from"] = out["share_of_from"].astype("Float64")
    out["share_of_to"] = out["share_of_to"].astype("Float64")
    big_from = out["share_of_from"].ge(PART).fillna(False)
    big_to = out["share_of_to"].ge(PART).fillna(False)
    split = big_from & big_from.groupby(out["from_segment_id"]).transform("sum").ge(2)
    merged = big_to & big_to.groupby(out["to_segment_id"]).transform("sum").ge(2)
    change = pd.Series("moved", index=out.index, dtype=object)
    change[merged] = "merged"
    change[split] = "split"
    change[~out["moved"]] = "stayed"
    change[out["from_segment_id"].isna()] = "new customer"
    change[out["to_segment_id"].isna()] = "left"
    out["change"] = change
    return out
