"""The segments themselves: the final k-means fit, stable ids, readable names, a SQL scorer.

Ids are kept across refreshes only between segments that are the same group (most customers in
common, centroids close: python_models/_segment_matching.py); a segment with no counterpart gets
a new id, never a recycled one. Names say what holds for most members
(python_models/_segment_names.py), and the shares behind each word are published here. The
nearest-centroid rule is also installed as the DuckDB macro ``ml.assign_segment(<features>)``, so
BI users can score new customers in SQL.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd

from engine.model_api import ModelResult
from python_models import _segment_matching as matching
from python_models import _segment_names as naming
from python_models import _sql_scoring as sql
from python_models._segmentation import (
    feature_names,
    fit_kmeans,
    fit_sample,
    from_original,
    squared_distances,
    to_original,
)

# It fits on a sample: at scale the Spark engine hands it a sample of each large input, the
# customers whose id hashes below a cut ([spark] fit_sample_rows).
FIT_SAMPLE_KEY = "customer_id"

PARAMETERS = {
    # A new centroid keeps a previous id only if it lies within this distance (in scaled units)
    # and the two segments share most of their customers.
    "match_max_distance": 1.0,
    # A feature's word enters a segment's name when it holds for at least this share of the
    # segment's customers (above, or below, the median customer).
    "name_min_share": 0.75,
    # Override names by segment id, e.g. { 3 = "Big spenders" }.
    "names": {},
    # Words used in names: feature = [low word, high word]. A feature not listed reads
    # "Low <label>" / "High <label>" (features.labels). The sample's words are in pipeline.toml.
    "feature_words": {},
}
PARAMETER_CONSTRAINTS = {
    "match_max_distance": {"type": "number", "min": 0},
    "name_min_share": {"type": "number", "above": 0.5, "max": 1},
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
    "population_median": (
        "The median customer's value of the feature, in the data's units (over the customers "
        "k-means was fitted on: all of them up to fit_sample_size)"
    ),
    "share_above_median": "Share of the segment's customers above population_median",
    "share_below_median": "Share of the segment's customers below population_median",
    "name_word": (
        "The word the name uses for the feature (its high word when share_above_median, its "
        "low word when share_below_median reaches name_min_share); null when none does"
    ),
}


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


def model(
    int_customer_features: duckdb.DuckDBPyRelation,
    int_feature_scaling: pd.DataFrame,
    segment_model_selection: pd.DataFrame,
    segment_lineage: pd.DataFrame,
    previous_segment_centroids: pd.DataFrame | None,
    previous_segment_history: pd.DataFrame | None,
    previous_customer_segments: duckdb.DuckDBPyRelation | None,
    config: dict[str, Any],
    seed: int,
) -> ModelResult:
    if segment_lineage["is_new_lineage"].iloc[-1]:
        # A new lineage owes nothing to the previous segments: ids start again from 1.
        previous_segment_centroids = previous_segment_history = None
        previous_customer_segments = None
    features = feature_names(int_feature_scaling)
    scaling = int_feature_scaling.set_index("feature").loc[features]
    centers, scales, transforms = _scaling_arrays(scaling)

    chosen = segment_model_selection[segment_model_selection["is_chosen"]].iloc[0]
    k, n_init, sample_size = int(chosen["k"]), int(chosen["n_init"]), int(chosen["fit_rows"])
    sample = fit_sample(int_customer_features, features, sample_size, seed)
    fitted = sample.matrix
    estimator = fit_kmeans(fitted, k, n_init, seed)
    centroids = estimator.cluster_centers_

    # First run: ids follow the centroids' order in original units, so they never depend on
    # k-means' internal label numbering.
    # (A transform is monotone, so this order is the order in transformed units too.)
    transformed = centroids * scales + centers
    order = np.lexsort(transformed.T[::-1])
    centroids, transformed = centroids[order], transformed[order]
    original = to_original(transformed, transforms)
    # Each fitted customer's nearest centroid; a tie goes to the first, as the SQL scorer's.
    positions = np.argmin(squared_distances(fitted, centroids), axis=1)

    previous, previous_ids = _previous_centroids(previous_segment_centroids, features, scaling)
    used = [previous_ids]
    if previous_segment_history is not None and not previous_segment_history.empty:
        used.append(previous_segment_history["segment_id"].to_numpy(dtype=np.int64))
    next_id = int(max((u.max() for u in used if u.size), default=0)) + 1
    overlap = matching.member_overlap(
        sample.customer_ids, positions, k, previous_customer_segments, previous_ids
    )
    distance = np.sqrt(((centroids[:, None, :] - previous[None, :, :]) ** 2).sum(axis=2))
    ids = matching.match_ids(overlap, distance, previous_ids, config["match_max_distance"], next_id)

    shares = naming.member_shares(to_original(fitted * scales + centers, transforms), positions, k)
    chosen_words = naming.words(shares, features, scaling["label"].tolist(), config)
    names = naming.names(chosen_words, ids, config["names"])

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
            "population_median": np.tile(shares["median"], len(ids)),
            "share_above_median": shares["above"][by_id].reshape(-1),
            "share_below_median": shares["below"][by_id].reshape(-1),
            "name_word": chosen_words[by_id].reshape(-1),
        }
    )
    distances = [sql.squared_distance(features, transforms, centers, scales, c) for c in centroids]
    scorer = sql.create_macro(
        "ml", sql.CENTROID_SCORER, features, sql.nearest(distances, ids.tolist())
    )
    return ModelResult(table=table, functions=(scorer,))
