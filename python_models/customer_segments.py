"""Every staged customer in exactly one segment, with how sure that assignment is.

Per customer: the nearest centroid (the same arithmetic and tie-break as ``ml.assign_segment``),
the distance to it, the runner-up segment and the margin between the two, and a silhouette value:
exact (scikit-learn's silhouette_samples) up to ``silhouette_exact_max_rows`` customers; above
that the O(n^2) exact value is out of reach, so the centroid-based (simplified) silhouette
(b - a) / max(a, b) with a, b the distances to the own and runner-up centroids is given instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_samples

from python_models._segmentation import feature_matrix, feature_names, squared_distances

PARAMETERS = {
    "silhouette_exact_max_rows": 20_000,
    # Distances are computed in chunks of this many customers to bound memory.
    "chunk_rows": 500_000,
}


def model(
    int_customer_features: pd.DataFrame,
    int_feature_scaling: pd.DataFrame,
    segment_centroids: pd.DataFrame,
    config: dict[str, Any],
) -> pd.DataFrame:
    features = feature_names(int_feature_scaling)
    customer_ids, matrix = feature_matrix(int_customer_features, features)
    wide = segment_centroids.pivot(index="segment_id", columns="feature", values="centroid_scaled")
    segment_ids = wide.index.to_numpy(dtype=np.int64)
    centroids = wide[features].to_numpy(dtype=np.float64)
    names = segment_centroids.drop_duplicates("segment_id").set_index("segment_id")["segment_name"]

    own = np.empty(len(customer_ids), dtype=np.int64)
    runner_up = np.empty(len(customer_ids), dtype=np.int64)
    own_distance = np.empty(len(customer_ids))
    runner_up_distance = np.empty(len(customer_ids))
    step = config["chunk_rows"]
    for start in range(0, len(customer_ids), step):
        part = squared_distances(matrix[start : start + step], centroids)
        ranked = np.argsort(part, axis=1, kind="stable")[:, :2]
        rows = np.arange(part.shape[0])
        own[start : start + step] = ranked[:, 0]
        runner_up[start : start + step] = ranked[:, 1]
        own_distance[start : start + step] = np.sqrt(part[rows, ranked[:, 0]])
        runner_up_distance[start : start + step] = np.sqrt(part[rows, ranked[:, 1]])

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
