"""The segments themselves: the final k-means fit, stable ids, readable names, a SQL scorer.

Ids are kept across refreshes by matching the new centroids to the previous run's with the
Hungarian algorithm (scipy's linear_sum_assignment) on centroid distances; a segment with no close
predecessor gets a new id, never a recycled one. The nearest-centroid rule is also installed as
the DuckDB macro ``ml.assign_segment(<features>)``, so BI users can score new customers in SQL.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from engine.model_api import ModelResult
from python_models import _sql_scoring as sql
from python_models._segmentation import (
    feature_matrix,
    feature_names,
    fit_kmeans,
    fit_rows,
    from_original,
    to_original,
)

# It fits on a sample: at scale the Spark engine hands it a sample of each large input, the
# customers whose id hashes below a cut ([spark] fit_sample_rows).
FIT_SAMPLE_KEY = "customer_id"

PARAMETERS = {
    # A new centroid keeps a previous id only if it lies within this distance (in scaled units).
    "match_max_distance": 1.0,
    # A feature level is "High"/"Low" when the centroid is this many population SDs from the mean.
    "name_threshold_sd": 0.5,
    # Override names by segment id, e.g. { 3 = "Big spenders" }.
    "names": {},
    # Words used in names: feature = [low word, high word]. A feature not listed reads
    # "Low <label>" / "High <label>" (features.labels). The sample's words are in pipeline.toml.
    "feature_words": {},
}
PARAMETER_CONSTRAINTS = {
    "match_max_distance": {"type": "number", "min": 0},
    "name_threshold_sd": {"type": "number", "min": 0},
    "names": {"type": "table"},
    "feature_words": {"type": "table"},
}


COLUMNS = {
    "segment_id": "Stable segment id: kept across refreshes of a lineage by matching centroids",
    "segment_name": "Readable name from where the centroid lies against the population",
    "feature": "A modelling feature",
    "feature_position": "The feature's place in the feature list, from 1",
    "centroid_scaled": "The centroid's coordinate in scaled units (what k-means fitted)",
    "centroid_original": "The same coordinate in the data's own units",
}


def _match_ids(
    centroids: np.ndarray,
    previous: np.ndarray,
    previous_ids: np.ndarray,
    max_distance: float,
    next_id: int,
) -> np.ndarray:
    """Previous ids for new centroids that match one closely; fresh ids for the rest."""
    ids = np.full(centroids.shape[0], -1, dtype=np.int64)
    if previous.size:
        cost = np.sqrt(((centroids[:, None, :] - previous[None, :, :]) ** 2).sum(axis=2))
        rows, cols = linear_sum_assignment(cost)
        for row, col in zip(rows, cols, strict=True):
            if cost[row, col] <= max_distance:
                ids[row] = previous_ids[col]
    for row in np.flatnonzero(ids < 0):
        ids[row] = next_id
        next_id += 1
    return ids


def _previous_centroids(
    previous: pd.DataFrame | None,
    features: list[str],
    scaling: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray]:
    """The previous run's centroids, re-expressed in this run's scaling (original units first)."""
    centers, scales, transforms = _scaling_arrays(scaling)
    if previous is None or previous.empty or set(previous["feature"]) != set(features):
        return np.empty((0, len(features))), np.empty(0, dtype=np.int64)
    wide = previous.pivot(index="segment_id", columns="feature", values="centroid_original")
    original = wide[features].to_numpy(dtype=np.float64)
    return (from_original(original, transforms) - centers) / scales, wide.index.to_numpy(
        dtype=np.int64
    )


def _scaling_arrays(scaling: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    return (
        scaling["center"].to_numpy(dtype=np.float64),
        scaling["scale"].to_numpy(dtype=np.float64),
        scaling["transform"].tolist(),
    )


def _names(
    transformed: np.ndarray,
    labels: list[tuple[str, str]],
    population_mean: np.ndarray,
    population_sd: np.ndarray,
    ids: np.ndarray,
    config: dict[str, Any],
) -> list[str]:
    """Names from where each centroid lies against the population, feature by feature, in the
    units the features are scaled in (after any transform)."""
    threshold = config["name_threshold_sd"]
    words = config["feature_words"]
    names = []
    for centroid in transformed:
        z = (centroid - population_mean) / np.where(population_sd > 0, population_sd, 1.0)
        parts = []
        for (feature, label), score in zip(labels, z, strict=True):
            low, high = words.get(feature, [f"Low {label}", f"High {label}"])
            if score >= threshold:
                parts.append(high)
            elif score <= -threshold:
                parts.append(low)
        names.append(" · ".join(parts) or "Average")
    overrides = {int(k): str(v) for k, v in config["names"].items()}
    names = [overrides.get(int(i), n) for i, n in zip(ids, names, strict=True)]
    # Names must be unique within a run: repeated ones are told apart by id.
    counts = pd.Series(names).value_counts()
    return [f"{n} (segment {i})" if counts[n] > 1 else n for n, i in zip(names, ids, strict=True)]


def model(
    int_customer_features: duckdb.DuckDBPyRelation,
    int_feature_scaling: pd.DataFrame,
    segment_model_selection: pd.DataFrame,
    segment_lineage: pd.DataFrame,
    previous_segment_centroids: pd.DataFrame | None,
    previous_segment_history: pd.DataFrame | None,
    config: dict[str, Any],
    seed: int,
) -> ModelResult:
    if segment_lineage["is_new_lineage"].iloc[-1]:
        # A new lineage owes nothing to the previous segments: ids start again from 1.
        previous_segment_centroids = previous_segment_history = None
    features = feature_names(int_feature_scaling)
    scaling = int_feature_scaling.set_index("feature").loc[features]
    centers, scales, transforms = _scaling_arrays(scaling)

    chosen = segment_model_selection[segment_model_selection["is_chosen"]].iloc[0]
    k, n_init, sample_size = int(chosen["k"]), int(chosen["n_init"]), int(chosen["fit_rows"])
    _, matrix = feature_matrix(int_customer_features, features)
    fitted = matrix[fit_rows(matrix.shape[0], sample_size, seed)]
    estimator = fit_kmeans(fitted, k, n_init, seed)
    centroids = estimator.cluster_centers_

    # First run: ids follow the centroids' order in original units, so they never depend on
    # k-means' internal label numbering.
    # (A transform is monotone, so this order is the order in transformed units too.)
    transformed = centroids * scales + centers
    order = np.lexsort(transformed.T[::-1])
    centroids, transformed = centroids[order], transformed[order]
    original = to_original(transformed, transforms)

    previous, previous_ids = _previous_centroids(previous_segment_centroids, features, scaling)
    used = [previous_ids]
    if previous_segment_history is not None and not previous_segment_history.empty:
        used.append(previous_segment_history["segment_id"].to_numpy(dtype=np.int64))
    next_id = int(max((u.max() for u in used if u.size), default=0)) + 1
    ids = _match_ids(centroids, previous, previous_ids, config["match_max_distance"], next_id)

    population = matrix * scales + centers
    labels = list(zip(features, scaling["label"], strict=True))
    names = _names(
        transformed, labels, population.mean(axis=0), population.std(axis=0), ids, config
    )

    by_id = np.argsort(ids)
    ids, names = ids[by_id], [names[i] for i in by_id]
    centroids, original = centroids[by_id], original[by_id]
    table = pd.DataFrame(
        {
            "segment_id": np.repeat(ids, len(features)),
            "segment_name": np.repeat(np.array(names, dtype=object), len(features)),
            "feature": np.tile(np.array(features, dtype=object), len(ids)),
            "feature_position": np.tile(np.arange(1, len(features) + 1), len(ids)),
            "centroid_scaled": centroids.reshape(-1),
            "centroid_original": original.reshape(-1),
        }
    )
    distances = [sql.squared_distance(features, transforms, centers, scales, c) for c in centroids]
    scorer = sql.create_macro(
        "ml", sql.CENTROID_SCORER, features, sql.nearest(distances, ids.tolist())
    )
    return ModelResult(table=table, functions=(scorer,))
