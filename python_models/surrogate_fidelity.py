"""How faithful can a small decision tree be to the segments? Measured, not assumed.

For depth 1, 2, … the tree is trained on the features in original units to predict the k-means
segment, and its fidelity (agreement with the segment) is measured on held-out folds. The chosen
depth is the smallest whose cross-validated fidelity reaches the target, capped at max_depth.
One row per depth tried (scope 'all'), plus one row per segment for the chosen depth (recall
and precision on held-out folds). Having picked the depth that reached the target, its own
cross-validated fidelity flatters it; ``nested_cv_fidelity`` measures the whole rule on folds
that chose nothing.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.tree import DecisionTreeClassifier

from python_models._segmentation import fit_rows
from python_models._surrogate import fit_tree, training_data

# It fits on a sample: at scale the Spark engine hands it a sample of each large input, the
# customers whose id hashes below a cut ([spark] fit_sample_rows).
FIT_SAMPLE_KEY = "customer_id"

PARAMETERS = {
    "target_fidelity": 0.9,
    "max_depth": 6,
    "cv_folds": 5,
    "min_samples_leaf": 1,
    # Fidelity below this is flagged by a warning expectation.
    "warn_fidelity": 0.8,
    "fit_sample_size": 200_000,
    # Nested cross-validation refits the whole depth rule per fold: on at most this many rows.
    "nested_sample_size": 10_000,
}
PARAMETER_CONSTRAINTS = {
    "target_fidelity": {"type": "number", "above": 0, "max": 1},
    "max_depth": {"type": "integer", "min": 1},
    "cv_folds": {"type": "integer", "min": 2},
    "min_samples_leaf": {"type": "integer", "min": 1},
    "warn_fidelity": {"type": "number", "min": 0, "max": 1},
    "fit_sample_size": {"type": "integer", "min": 2},
    "nested_sample_size": {"type": "integer", "min": 10},
}


COLUMNS = {
    "depth": "A depth of the surrogate decision tree tried",
    "scope": "all (every customer) or segment (one segment at the chosen depth)",
    "segment_id": "The segment, for scope segment",
    "customers": "Customers in the scope",
    "train_fidelity": (
        "Share of the scope the tree assigns to its segment, on the data it was fitted on"
    ),
    "cv_fidelity": "The same on held-out folds (stratified cross-validation); per segment: recall",
    "cv_fidelity_std": "Standard deviation of cv_fidelity across folds",
    "leaves": "Leaves of the tree (rules)",
    "cv_precision": (
        "For a segment: share of the customers the rules put in it that belong to it, held out"
    ),
    "segment_name": "The segment's name, for scope segment",
    "is_chosen": "Whether this depth is the published tree's",
    "target_fidelity": "The held-out fidelity the depth rule aims for",
    "depth_rule": "The rule that chose the depth, in words",
    "nested_cv_fidelity": (
        "For the chosen depth: held-out fidelity on folds that took no part in choosing the depth"
    ),
    "cv_folds": "Cross-validation folds",
    "min_samples_leaf": "The tree's smallest leaf",
}


def _folds(labels: np.ndarray, wanted: int, seed: int) -> StratifiedKFold:
    smallest = int(np.bincount(np.unique(labels, return_inverse=True)[1]).min())
    return StratifiedKFold(n_splits=max(2, min(wanted, smallest)), shuffle=True, random_state=seed)


def _share(hits: np.ndarray) -> float | None:
    return float(np.mean(hits)) if len(hits) else None


def _smallest_reaching(
    matrix: np.ndarray, labels: np.ndarray, config: dict[str, Any], seed: int
) -> int:
    """The depth rule itself: the smallest depth whose cross-validated fidelity reaches the
    target (max_depth if none does)."""
    folds = _folds(labels, config["cv_folds"], seed)
    for depth in range(1, config["max_depth"] + 1):
        tree = DecisionTreeClassifier(
            max_depth=depth, min_samples_leaf=config["min_samples_leaf"], random_state=seed
        )
        held_out = cross_val_predict(tree, matrix, labels, cv=folds)
        if np.mean(held_out == labels) >= config["target_fidelity"]:
            return depth
    return config["max_depth"]


def nested_fidelity(
    matrix: np.ndarray, labels: np.ndarray, config: dict[str, Any], seed: int
) -> float:
    """The fidelity of choosing the depth by the rule, measured on folds the choice never saw.

    Each outer fold's depth is chosen by cross-validation inside the other folds alone; the
    cross-validated fidelity of the chosen depth is optimistic, having picked the winner.
    """
    rows = fit_rows(len(labels), config["nested_sample_size"], seed)
    matrix, labels = matrix[rows], labels[rows]
    hits = 0
    for train, test in _folds(labels, config["cv_folds"], seed).split(matrix, labels):
        depth = _smallest_reaching(matrix[train], labels[train], config, seed)
        tree = DecisionTreeClassifier(
            max_depth=depth, min_samples_leaf=config["min_samples_leaf"], random_state=seed
        ).fit(matrix[train], labels[train])
        hits += int(np.sum(tree.predict(matrix[test]) == labels[test]))
    return hits / len(labels)


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
                # Of the customers the held-out tree puts in this segment, the share that are.
                "cv_precision": _share(data.labels[held_out == segment] == segment),
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
    chosen_overall = (table["scope"] == "all") & table["is_chosen"]
    table["nested_cv_fidelity"] = np.where(
        chosen_overall, nested_fidelity(data.matrix, data.labels, config, seed), np.nan
    )
    table["cv_folds"] = folds.get_n_splits()
    table["min_samples_leaf"] = config["min_samples_leaf"]
    return table
