"""How faithful can a small decision tree be to the segments? Measured, not assumed.

For depth 1, 2, … the tree is trained on the features in original units to predict the k-means
segment, and its fidelity (agreement with the segment) is measured on held-out folds. The chosen
depth is the smallest whose cross-validated fidelity reaches the target, capped at max_depth.
One row per depth tried (scope 'all'), plus one row per segment for the chosen depth.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from python_models._surrogate import fit_tree, training_data

PARAMETERS = {
    "target_fidelity": 0.9,
    "max_depth": 6,
    "cv_folds": 5,
    "min_samples_leaf": 1,
    # Fidelity below this is flagged by a warning expectation.
    "warn_fidelity": 0.8,
    "fit_sample_size": 200_000,
}
PARAMETER_CONSTRAINTS = {
    "target_fidelity": {"type": "number", "above": 0, "max": 1},
    "max_depth": {"type": "integer", "min": 1},
    "cv_folds": {"type": "integer", "min": 2},
    "min_samples_leaf": {"type": "integer", "min": 1},
    "warn_fidelity": {"type": "number", "min": 0, "max": 1},
    "fit_sample_size": {"type": "integer", "min": 2},
}


def _folds(labels: np.ndarray, wanted: int, seed: int) -> StratifiedKFold:
    smallest = int(np.bincount(np.unique(labels, return_inverse=True)[1]).min())
    return StratifiedKFold(n_splits=max(2, min(wanted, smallest)), shuffle=True, random_state=seed)


def model(
    int_customer_features: duckdb.DuckDBPyRelation,
    int_feature_scaling: pd.DataFrame,
    customer_segments: duckdb.DuckDBPyRelation,
    segment_centroids: pd.DataFrame,
    config: dict[str, Any],
    seed: int,
) -> pd.DataFrame:
    data = training_data(
        int_customer_features,
        int_feature_scaling,
        customer_segments,
        config["fit_sample_size"],
        seed,
    )
    folds = _folds(data.labels, config["cv_folds"], seed)
    rows: list[dict[str, Any]] = []
    chosen = None
    for depth in range(1, config["max_depth"] + 1):
        tree = fit_tree(data, depth, config["min_samples_leaf"], seed)
        held_out = cross_val_predict(tree, data.matrix, data.labels, cv=folds)
        fold_scores = [
            float(np.mean(held_out[test] == data.labels[test]))
            for _, test in folds.split(data.matrix, data.labels)
        ]
        rows.append(
            {
                "depth": depth,
                "scope": "all",
                "segment_id": None,
                "customers": len(data.labels),
                "train_fidelity": float(np.mean(tree.predict(data.matrix) == data.labels)),
                "cv_fidelity": float(np.mean(held_out == data.labels)),
                "cv_fidelity_std": float(np.std(fold_scores, ddof=1)),
                "leaves": int(tree.get_n_leaves()),
            }
        )
        chosen = (depth, tree, held_out)
        if rows[-1]["cv_fidelity"] >= config["target_fidelity"]:
            break
    assert chosen is not None
    depth, tree, held_out = chosen
    train_predictions = tree.predict(data.matrix)
    for segment in np.unique(data.labels):
        members = data.labels == segment
        rows.append(
            {
                "depth": depth,
                "scope": "segment",
                "segment_id": int(segment),
                "customers": int(members.sum()),
                "train_fidelity": float(np.mean(train_predictions[members] == segment)),
                "cv_fidelity": float(np.mean(held_out[members] == segment)),
                "cv_fidelity_std": None,
                "leaves": int(tree.get_n_leaves()),
            }
        )
    table = pd.DataFrame(rows)
    names = segment_centroids.drop_duplicates("segment_id").set_index("segment_id")["segment_name"]
    table["segment_name"] = table["segment_id"].map(names)
    table["segment_id"] = table["segment_id"].astype("Int64")
    table["is_chosen"] = table["depth"] == depth
    reached = rows[depth - 1]["cv_fidelity"] >= config["target_fidelity"]
    table["target_fidelity"] = config["target_fidelity"]
    table["depth_rule"] = (
        f"smallest depth with cross-validated fidelity >= {config['target_fidelity']:g}"
        if reached
        else f"target {config['target_fidelity']:g} not reached by max_depth {config['max_depth']}"
    )
    table["cv_folds"] = folds.get_n_splits()
    table["min_samples_leaf"] = config["min_samples_leaf"]
    return table
