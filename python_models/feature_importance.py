"""Which features drive the segments, by two methods, with their spread — and where they disagree.

A random forest learns the segments from the features (original units). Impurity importance
comes from the forest itself (mean and SD over its trees); permutation importance is measured on
held-out customers (mean and SD over repeats). Both for all segments together and per segment,
one versus rest — what sets this segment apart: permutation importance by the forest's accuracy
at telling that segment from the rest, impurity importance from a forest trained on that split.
``importance_share`` is each method's importances clipped at zero and scaled to sum to 1 within
a scope, so methods can be compared side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import make_scorer
from sklearn.model_selection import train_test_split

from python_models._surrogate import training_data

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
    "scope": "all (the forest that predicts every segment) or segment (one versus rest)",
    "segment_id": "The segment, for scope segment",
    "method": "impurity (mean decrease, training data) or permutation (held-out accuracy loss)",
    "feature": "A modelling feature",
    "importance": "The feature's importance by the method",
    "importance_std": "Its standard deviation (across trees or permutation repeats)",
    "importance_share": "Importance clipped at zero, as a share of the scope and method's total",
    "rank": "The feature's rank by importance within the scope and method (1 = most important)",
    "oob_score": "The forest's out-of-bag accuracy",
    "held_out_accuracy": "The forest's accuracy on the held-out share",
    "segment_name": "The segment's name, for scope segment",
    "methods_agree_on_top": "Whether impurity and permutation rank the same feature first",
    "top_feature_note": "The two methods' top features in words, and whether they disagree",
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
    impurity: tuple[np.ndarray, np.ndarray],
    permutation: tuple[np.ndarray, np.ndarray],
    oob_score: float,
    held_out_accuracy: float,
) -> list[dict[str, Any]]:
    rows = []
    for method, (means, stds) in (("impurity", impurity), ("permutation", permutation)):
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


def _impurity(forest: RandomForestClassifier) -> tuple[np.ndarray, np.ndarray]:
    spread = np.std([tree.feature_importances_ for tree in forest.estimators_], axis=0)
    return forest.feature_importances_, spread


@dataclass(frozen=True)
class Forests:
    """One forest per scope, each fitted on its own: picklable, so a fit worker can fit one.

    Scope None is every segment (with held-out permutation importance for all scopes at once);
    an integer is that segment versus the rest.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    segments: list[int]
    n_estimators: int
    permutation_repeats: int
    seed: int

    def _forest(self, labels: np.ndarray) -> RandomForestClassifier:
        return RandomForestClassifier(
            n_estimators=self.n_estimators, oob_score=True, random_state=self.seed, n_jobs=1
        ).fit(self.x_train, labels)

    def fit(self, scope: int | None) -> dict[str, Any]:
        if scope is not None:
            # Impurity importance one versus rest needs a forest that learned just that split.
            binary = self._forest((self.y_train == scope).astype(np.int64))
            return {"impurity": _impurity(binary), "oob_score": float(binary.oob_score_)}
        forest = self._forest(self.y_train)
        # One forest, one set of permutations, every scope's score at once: with several
        # scorers scikit-learn predicts once per permutation and scores all of them on it.
        scorers = {"all": "accuracy"} | {
            f"segment_{s}": make_scorer(one_vs_rest_accuracy(s)) for s in self.segments
        }
        permuted = permutation_importance(
            forest,
            self.x_test,
            self.y_test,
            scoring=scorers,
            n_repeats=self.permutation_repeats,
            random_state=self.seed,
        )
        return {
            "impurity": _impurity(forest),
            "oob_score": float(forest.oob_score_),
            "permutation": {
                name: (result.importances_mean, result.importances_std)
                for name, result in permuted.items()
            },
            "predicted": forest.predict(self.x_test),
        }


def model(
    int_customer_features: duckdb.DuckDBPyRelation,
    int_feature_scaling: pd.DataFrame,
    customer_segments: duckdb.DuckDBPyRelation,
    segment_centroids: pd.DataFrame,
    config: dict[str, Any],
    seed: int,
    parallel: Callable[[Callable[[int | None], dict[str, Any]], Iterable[int | None]], Iterator],
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
    segments = [int(s) for s in np.unique(data.labels)]
    forests = Forests(
        x_train,
        y_train,
        x_test,
        y_test,
        segments,
        config["n_estimators"],
        config["permutation_repeats"],
        seed,
    )
    scopes: list[int | None] = [None, *segments]
    fitted = list(parallel(forests.fit, scopes))
    everything = fitted[0]
    predicted = everything["predicted"]
    results = [
        _rows(
            "all",
            None,
            data.features,
            everything["impurity"],
            everything["permutation"]["all"],
            everything["oob_score"],
            float(np.mean(predicted == y_test)),
        )
    ]
    for segment, binary in zip(segments, fitted[1:], strict=True):
        results.append(
            _rows(
                "segment",
                segment,
                data.features,
                binary["impurity"],
                everything["permutation"][f"segment_{segment}"],
                binary["oob_score"],
                one_vs_rest_accuracy(segment)(y_test, predicted),
            )
        )
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
