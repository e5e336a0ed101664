"""Segments per published refresh, so size and centroid drift can be charted over time.

The previous warehouse's history plus one row per segment and feature for this run. Segment ids
compare only within a lineage (ml.segment_lineage), so every row carries its lineage.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from python_models._relations import counts

COLUMNS = {
    "run_id": "The published refresh",
    "lineage": "The segment lineage (ml.segment_lineage): ids compare within one lineage",
    "segment_id": "The segment",
    "segment_name": "Its name in that refresh",
    "customers": "Customers in the segment in that refresh",
    "share": "Share of that refresh's customers",
    "feature": "A modelling feature",
    "centroid_original": "The segment's centroid on that feature, in the data's units",
}


def model(
    customer_segments: duckdb.DuckDBPyRelation,
    segment_centroids: pd.DataFrame,
    segment_lineage: pd.DataFrame,
    previous_segment_history: pd.DataFrame | None,
    run_id: str,
) -> pd.DataFrame:
    sizes = counts(customer_segments, "segment_id").rename("customers")
    current = segment_centroids.join(sizes, on="segment_id")
    current["customers"] = current["customers"].fillna(0).astype("int64")
    current["share"] = current["customers"] / sizes.sum()
    current.insert(0, "run_id", run_id)
    current["lineage"] = int(segment_lineage["lineage"].iloc[-1])
    current = current[
        [
            "run_id",
            "lineage",
            "segment_id",
            "segment_name",
            "customers",
            "share",
            "feature",
            "centroid_original",
        ]
    ]
    if previous_segment_history is None or previous_segment_history.empty:
        return current.reset_index(drop=True)
    earlier = previous_segment_history[previous_segment_history["run_id"] != run_id].copy()
    if "lineage" not in earlier.columns:  # written before lineages were recorded
        earlier["lineage"] = 1
    return pd.concat([earlier[current.columns], current], ignore_index=True)
