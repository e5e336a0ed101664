"""Every staged customer in exactly one segment, with how sure that assignment is.

Per customer: the segment ``ml.assign_segment`` gives in DuckDB — the SQL scorer BI users call,
so Python and SQL can never disagree, and everyone is assigned in the database however large —
the distance to it, the runner-up segment and the margin between the two, and a silhouette value:
exact (scikit-learn's silhouette_samples) up to ``silhouette_exact_max_rows`` customers; above
that the O(n^2) exact value is out of reach, so the centroid-based (simplified) silhouette
(b - a) / max(a, b) with a, b the distances to the own and runner-up centroids is given instead.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_samples
from sqlglot import exp

from python_models._segmentation import SCALED_SUFFIX, feature_names, squared_distances
from python_models.segment_centroids import SCORER_NAME

PARAMETERS = {
    "silhouette_exact_max_rows": 20_000,
    # Distances are computed in chunks of this many customers to bound memory.
    "chunk_rows": 500_000,
}


def _sql_assignment(
    int_customer_features: duckdb.DuckDBPyRelation, features: list[str]
) -> pd.DataFrame:
    """Every customer's segment from the SQL scorer, beside the scaled features, by id."""
    call = exp.func(f"ml.{SCORER_NAME}", *[exp.column(f) for f in features])
    columns = [
        exp.column("customer_id"),
        call.as_("segment_id"),
        *[exp.column(f"{f}{SCALED_SUFFIX}") for f in features],
    ]
    projection = ", ".join(c.sql("duckdb") for c in columns)
    relation = int_customer_features.select(projection).order("customer_id")
    return relation.to_arrow_table().to_pandas()


def model(
    int_customer_features: duckdb.DuckDBPyRelation,
    int_feature_scaling: pd.DataFrame,
    segment_centroids: pd.DataFrame,
    config: dict[str, Any],
) -> pd.DataFrame:
    features = feature_names(int_feature_scaling)
    assigned = _sql_assignment(int_customer_features, features)
    customer_ids = assigned["customer_id"].to_numpy(dtype=np.int64)
    matrix = assigned[[f"{f}{SCALED_SUFFIX}" for f in features]].to_numpy(dtype=np.float64)
    wide = segment_centroids.pivot(index="segment_id", columns="feature", values="centroid_scaled")
    segment_ids = wide.index.to_numpy(dtype=np.int64)
    centroids = wide[features].to_numpy(dtype=np.float64)
    names = segment_centroids.drop_duplicates("segment_id").set_index("segment_id")["segment_name"]
    own = np.searchsorted(segment_ids, assigned["segment_id"].to_numpy(dtype=np.int64))

    runner_up = np.empty(len(customer_ids), dtype=np.int64)
    own_distance = np.empty(len(customer_ids))
    runner_up_distance = np.empty(len(customer_ids))
    step = config["chunk_rows"]
    for start in range(0, len(customer_ids), step):
        part = squared_distances(matrix[start : start + step], centroids)
        rows = np.arange(part.shape[0])
        mine = own[start : start + step]
        # The scorer's choice must be a nearest centroid; anything else is a bug, not data.
        if (part[rows, mine] > part.min(axis=1)).any():
            raise RuntimeError("ml.assign_segment and the centroid distances disagree")
        own_distance[start : start + step] = np.sqrt(part[rows, mine])
        others = part.copy()
        others[rows, mine] = np.inf
        second = np.argmin(others, axis=1)
        runner_up[start : start + step] = second
        runner_up_distance[start : start + step] = np.sqrt(part[rows, second])

    if len(customer_ids) <= config["silhouette_exact_max_rows"] and len(np.unique(own)) > 1:
        silhouette = silhouette_samples(matrix, own)
        method = "exact"
    else:
        largest = np.maximum(own_distance, runner_up_distance)
        silhouette = np.where(
            largest > 0, (runner_up_distance - own_distance) / np.where(largest > 0, largest, 1), 0
        )
        method = "centroid"

    return pd.DataFrame(
        {
            "customer_id": customer_ids,
            "segment_id": segment_ids[own],
            "segment_name": names.loc[segment_ids[own]].to_numpy(),
            "distance_to_centroid": own_distance,
            "silhouette": silhouette,
            "silhouette_method": method,
            "runner_up_segment_id": segment_ids[runner_up],
            "runner_up_segment_name": names.loc[segment_ids[runner_up]].to_numpy(),
            "margin": runner_up_distance - own_distance,
        }
    )
