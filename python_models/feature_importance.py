"""Which features drive the segments, with their spread, and whether two methods agree.

A random forest learns the segments from the features (original units). Impurity importance
comes from the forest itself (mean and SD over its trees); permutation importance is measured on
held-out customers (mean and SD over repeats), for all segments together and per segment (one
versus rest: the forest's held-out accuracy at telling that segment from the rest). Both methods
judge the one forest, so the comparison is like with like; per segment there is permutation
importance only (an impurity importance for one segment would need another forest, a different
model). The methods are said to disagree only when each ranks a different feature first by more
than two standard errors of the difference. ``importance_share`` is each method's importances
clipped at zero and scaled to sum to 1 within a scope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import make_scorer
from sklearn.model_selection import train_test_split

from python_models._surrogate import training_data

# It fits on a sample: at scale the Spark engine hands it a sample of each large input, the
# customers whose id hashes below a cut ([spark] fit_sample_rows).
FIT_SAMPLE_KEY = "customer_id"

PARAMETERS = {
    "n_estimators": 100,
    "test_share": 0.3,
    "permutation_repeats": 10,
    # Importances settle long before this many customers; above it, a seeded sample is used.
    "fit_sample_size": 10_000,
}
PARAMETER_CONSTRAINTS = {
    "n_estimators": {"type": "integer", "min": 1},
    "test_share": {"type": "number", "above": 0, "below": 1},
    "permutation_repeats": {"type": "integer", "min": 1},
    "fit_sample_size": {"type": "integer", "min": 2},
}


COLUMNS = {
    "scope": "all (every segment) or segment (that segment versus the rest)",
    "segment_id": "The segment, for scope segment",
    "method": (
        "impurity (mean decrease, training data; scope all) or permutation (held-out accuracy loss)"
    ),
    "feature": "A modelling feature",
    "importance": "The feature's importance by the method",
    "importance_std": "Its standard deviation (across trees or permutation repeats)",
    "importance_share": "Importance clipped at zero, as a share of the scope and method's total",
    "rank": "The feature's rank by importance within the scope and method (1 = most important)",
    "oob_score": "The forest's out-of-bag accuracy",
    "held_out_accuracy": "The forest's accuracy on the held-out share",
    "segment_name": "The segment's name, for scope segment",
    "methods_agree_on_top": (
        "Scope all: false only when each method ranks its own feature first beyond its spread"
    ),
    "top_feature_note": "The top features in words, and whether the methods disagree",
    "share_sum_in_scope": (
        "Sum of importance_share within the scope and method (1, or 0 when all clip to 0)"
    ),
}


def one_vs_rest_accuracy(segment: int) -> Callable[[np.ndarray, np.ndarray], float]:
    """Accuracy at telling one segment from the rest."""

    def accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
        return float(np.mean((truth == segment) == (predicted == segment)))

    return accuracy


def _rows(
    scope: str,
    segment_id: int | None,
    features: list[str],
    methods: dict[str, tuple[np.ndarray, np.ndarray]],
    oob_score: float,
    held_out_accuracy: float,
) -> list[dict[str, Any]]:
    rows = []
    for method, (means, stds) in methods.items():
        clipped = np.clip(means, 0, None)
        shares = (
            clipped / clipped.sum() if clipped.sum() > 0 else np.full(len(means), 1 / len(means))
        )
        ranks = pd.Series(means).rank(ascending=False, method="min").astype(int).to_numpy()
        for f, feature in enumerate(features):
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
                    "oob_score": oob_score,
                    "held_out_accuracy": held_out_accuracy,
                }
            )
    return rows


def _clear_top(rows: pd.DataFrame, draws: int) -> str | None:
    """The top feature when it beats the runner-up by more than two standard errors of the
    difference (each importance's SD over ``draws`` trees or repeats); else None."""
    ranked = rows.sort_values(["importance", "feature"], ascending=[False, True])
    if len(ranked) < 2:
        return str(ranked["feature"].iloc[0])
    first, second = ranked.iloc[0], ranked.iloc[1]
    error = np.sqrt((first["importance_std"] ** 2 + second["importance_std"] ** 2) / draws)
    return str(first["feature"]) if first["importance"] - second["importance"] > 2 * error else None


def _top_feature_note(rows: pd.DataFrame, draws: dict[str, int]) -> tuple[bool, str]:
    """Whether the two methods agree on the top feature, judged against their spread, and how
    to say so: they disagree only when each names its own top beyond its spread."""
    tops = {
        method: ", ".join(sorted(group.loc[group["rank"] == 1, "feature"]))
        for method, group in rows.groupby("method")
    }
    if tops["impurity"] == tops["permutation"]:
        return True, f"both methods rank {tops['impurity']} first"
    clear = {m: _clear_top(rows[rows["method"] == m], draws[m]) for m in draws}
    said = f"impurity ranks {tops['impurity']} first, permutation ranks {tops['permutation']} first"
    if clear["impurity"] and clear["permutation"]:
        return False, f"{said}, each beyond its spread: the methods disagree"
    return True, f"{said}, within their spread: not a disagreement"


def _impurity(forest: RandomForestClassifier) -> tuple[np.ndarray, np.ndarray]:
    spread = np.std([tree.feature_importances_ for tree in forest.estimators_], axis=0)
    return forest.feature_importances_, spread


def _fit(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    config: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    forest = RandomForestClassifier(
        n_estimators=config["n_estimators"], oob_score=True, random_state=seed, n_jobs=1
    ).fit(x_train, y_train)
    # One set of permutations, every scope's score at once: with several scorers scikit-learn
    # predicts once per permutation and scores all of them on it.
    scorers = {"all": "accuracy"} | {
        f"segment_{s}": make_scorer(one_vs_rest_accuracy(s)) for s in np.unique(y_train)
    }
    permuted = permutation_importance(
        forest,
        x_test,
        y_test,
        scoring=scorers,
        n_repeats=config["permutation_repeats"],
        random_state=seed,
    )
    return {
        "impurity": _impurity(forest),
        "oob_score": float(forest.oob_score_),
        "permutation": {
            name: (result.importances_mean, result.importances_std)
            for name, result in permuted.items()
        },
        "predicted": forest.predict(x_test),
    }


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
    x_train, x_test, y_train, y_test = train_test_split(
        data.matrix,
        data.labels,
        test_size=config["test_share"],
        # A segment of one customer cannot be split in two: stratify only when every one can.
        stratify=data.labels if np.unique(data.labels, return_counts=True)[1].min() >= 2 else None,
        random_state=seed,
    )
    fitted = _fit(x_train, y_train, x_test, y_test, config, seed)
    predicted = fitted["predicted"]
    rows = _rows(
        "all",
        None,
        data.features,
        {"impurity": fitted["impurity"], "permutation": fitted["permutation"]["all"]},
        fitted["oob_score"],
        float(np.mean(predicted == y_test)),
    )
    for segment in (int(s) for s in np.unique(data.labels)):
        rows += _rows(
            "segment",
            segment,
            data.features,
            {"permutation": fitted["permutation"][f"segment_{segment}"]},
            fitted["oob_score"],
            one_vs_rest_accuracy(segment)(y_test, predicted),
        )
    table = pd.DataFrame(rows)
    names = segment_centroids.drop_duplicates("segment_id").set_index("segment_id")["segment_name"]
    table["segment_name"] = table["segment_id"].map(names)
    table["segment_id"] = table["segment_id"].astype("Int64")
    overall = table[table["scope"] == "all"]
    draws = {"impurity": config["n_estimators"], "permutation": config["permutation_repeats"]}
    agree, note = _top_feature_note(overall, draws)
    is_all = table["scope"] == "all"
    table["methods_agree_on_top"] = pd.array([agree if a else None for a in is_all], "boolean")
    top = table[~is_all & (table["rank"] == 1)].groupby("segment_id")["feature"]
    segment_tops = top.agg(lambda f: ", ".join(sorted(f)))
    table["top_feature_note"] = np.where(
        is_all,
        note,
        "permutation importance only: "
        + table["segment_id"].map(segment_tops).fillna("").astype(str)
        + " sets the segment apart most",
    )
    key = table["segment_id"].astype("string").fillna("all")
    table["share_sum_in_scope"] = table.groupby([key, "method"])["importance_share"].transform(
        "sum"
    )
    return table
