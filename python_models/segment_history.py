"""Segments per published refresh, so size and centroid drift can be charted over time.

The previous warehouse's history plus one row per segment and feature for this run.
"""

from __future__ import annotations

import pandas as pd


def model(
    customer_segments: pd.DataFrame,
    segment_centroids: pd.DataFrame,
    previous_segment_history: pd.DataFrame | None,
    run_id: str,
) -> pd.DataFrame:
    sizes = customer_segments.groupby("segment_id").size().rename("customers")
    current = segment_centroids.join(sizes, on="segment_id")
    current["customers"] = current["customers"].fillna(0).astype("int64")
    current["share"] = current["customers"] / len(customer_segments)
    current.insert(0, "run_id", run_id)
    current = current[
        [
            "run_id",
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
    earlier = previous_segment_history[previous_segment_history["run_id"] != run_id]
    return pd.concat([earlier[current.columns], current], ignore_index=True)
