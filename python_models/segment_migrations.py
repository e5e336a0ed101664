"""How customers moved between segments since the last published refresh.

One row per (previous segment, current segment) pair with its customer count. A customer new
since the last refresh has no previous segment; one who left has no current segment.
"""

from __future__ import annotations

import pandas as pd


def model(
    customer_segments: pd.DataFrame, previous_customer_segments: pd.DataFrame | None
) -> pd.DataFrame:
    current = customer_segments[["customer_id", "segment_id", "segment_name"]]
    if previous_customer_segments is None:
        previous = current.iloc[0:0]
    else:
        previous = previous_customer_segments[["customer_id", "segment_id", "segment_name"]]
    joined = previous.merge(
        current, on="customer_id", how="outer", suffixes=("_previous", "_current")
    )
    grouped = (
        joined.groupby(
            [
                "segment_id_previous",
                "segment_name_previous",
                "segment_id_current",
                "segment_name_current",
            ],
            dropna=False,
        )
        .size()
        .reset_index(name="customers")
    )
    grouped = grouped.rename(
        columns={
            "segment_id_previous": "from_segment_id",
            "segment_name_previous": "from_segment_name",
            "segment_id_current": "to_segment_id",
            "segment_name_current": "to_segment_name",
        }
    )
    grouped["from_segment_id"] = grouped["from_segment_id"].astype("Int64")
    grouped["to_segment_id"] = grouped["to_segment_id"].astype("Int64")
    grouped["moved"] = grouped["from_segment_id"].ne(grouped["to_segment_id"]).fillna(True)
    return grouped.sort_values(["from_segment_id", "to_segment_id"], na_position="first")
