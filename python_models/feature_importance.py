"""Which features drive the segments, by two methods, with their spread — and where they disagree.

A random forest learns the segments from the features (original units). Impurity importance
comes from the forest itself (mean and SD over its trees); permutation importance is measured on
held-out customers (mean and SD over repeats). Both for all segments together and per segment,
one versus rest: what sets this segment apart. ``importance_share`` is each method's importances
clipped at zero and scaled to sum to 1 within a scope, so methods can be compared side by side.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.model_selection import train_test_split

from python_models._surrogate import TrainingData, training_data

PARAMETERS = {
    "n_estimators": 100,
    "test_share": 0.3,
    "permutation_repeats": 10,
    "fit_sample_size": 100_000,
}


def _scope(
    scope: str,
    segment_id: int | None,
    data: TrainingData,
    target: np.ndarray,
    config: dict[str, Any],
    seed: int,
) -> list[dict[str, Any]]:
    x_train, x_test, y_train, y_test = train_test_split(
        data.matrix, target, test_size=config["test_share"], stratify=target, random_state=seed
    )
    forest = RandomForestClassifier(
        n_estimators=config["n_estimators"], oob_score=True, random_state=seed, n_jobs=1
    ).fit(x_train, y_train)
    impurity_std = np.std([t.feature_importances_ for t in forest.estimators_], axis=0)
    permuted = permutation_importance(
        forest, x_test, y_test, n_repeats=config["permutation_repeats"], random_state=seed
    )
    rows = []
    for method, means, stds in (
        ("impurity", forest.feature_importances_, impurity_std),
        ("permutation", permuted.importances_mean, permuted.importances_std),
    ):
        clipped = np.clip(means, 0, None)
        shares = (
            clipped / clipped.sum() if clipped.sum() > 0 else np.full(len(means), 1 / len(means))
        )
        ranks = pd.Series(means).rank(ascending=False, method="min").astype(int).to_numpy()
        for f, feature in enumerate(data.features):
            rows.append(
                {
                    "scope": scope,
                    "segment_id": segment_id,
                    "method": method,
                    "feature": feature,
                    "importance": float(means[f]),
                    "importance_std": float(stds[f]),
                    "importance_share": float(shares[f]),
                    "rank": int(ranks[f]),
                    "oob_score": float(forest.oob_score_),
                    "held_out_accuracy": float(forest.score(x_test, y_test)),
                }
            )
    return rows


def model(
    int_customer_features: pd.DataFrame,
    int_feature_scaling: pd.DataFrame,
    customer_segments: pd.DataFrame,
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
    jobs = [("all", None, data.labels)] + [
        ("segment", int(s), (data.labels == s).astype(np.int64)) for s in np.unique(data.labels)
    ]
    results = [
        _scope(scope, segment, data, target, config, seed) for scope, segment, target in jobs
    ]
    table = pd.DataFrame([row for rows in results for row in rows])
    names = segment_centroids.drop_duplicates("segment_id").set_index("segment_id")["segment_name"]
    table["segment_name"] = table["segment_id"].map(names)
    table["segment_id"] = table["segment_id"].astype("Int64")

    # Say so when the methods name different top features, instead of choosing silently.
    key = table["segment_id"].astype("string").fillna("all")
    tops = (
        table[table["rank"] == 1]
        .groupby([key, "method"])["feature"]
        .agg(lambda f: ", ".join(sorted(f)))
    )
    tops = tops.unstack("method")
    agree = tops["impurity"] == tops["permutation"]
    table["methods_agree_on_top"] = key.map(agree).astype(bool)
    table["top_feature_note"] = key.map(
        lambda k: (
            f"both methods rank {tops.loc[k, 'impurity']} first"
            if agree[k]
            else f"impurity ranks {tops.loc[k, 'impurity']} first, "
            f"permutation ranks {tops.loc[k, 'permutation']} first"
        )
    )
    table["share_sum_in_scope"] = table.groupby([key, "method"])["importance_share"].transform(
        "sum"
    )
    return table
