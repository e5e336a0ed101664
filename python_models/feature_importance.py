"""Which features drive the segments, with their spread, and whether two methods agree.

A random forest learns the segments from the features (original units), refitted on ``refits``
train/test splits (each with its own forest seed and permutations), because one forest's ranking
can be an accident of its split: the figures are means over the refits, and their spread is the
standard deviation across refits (the split's, the forest's and the permutations' variability
together). Impurity importance comes from each forest; permutation importance is measured on each
split's held-out customers, for all segments together and per segment (one versus rest: the
forest's held-out accuracy at telling that segment from the rest). A feature "leads" a method
only when its lead over the runner-up holds across the refits (a paired t bound at 95% on the
per-refit differences); the methods are said to disagree only when each leads with a different
feature. Correlated features (Spearman |rho| >= 0.7) split permutation credit between them: the
note says so and gives the pair's grouped importance (both permuted together).
``importance_share`` is each method's importances clipped at zero and scaled to sum to 1 within
a scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, combinations
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import t as student_t
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from python_models._permutations import (
    accuracy,
    column_permutations,
    group_permutations,
    mean_losses,
    predictions,
)
from python_models._surrogate import training_data

# It fits on a sample: at scale the Spark engine hands it a sample of each large input, the
# customers whose id hashes below a cut ([spark] fit_sample_rows).
FIT_SAMPLE_KEY = "customer_id"

PARAMETERS = {
    "n_estimators": 100,
    "test_share": 0.3,
    # Train/test splits the forest is refitted on (seeds seed, seed + 1, ...).
    "refits": 5,
    # Permutation repeats per refit.
    "permutation_repeats": 5,
    # Importances settle long before this many customers; above it, a seeded sample is used.
    "fit_sample_size": 10_000,
}
PARAMETER_CONSTRAINTS = {
    "n_estimators": {"type": "integer", "min": 1},
    "test_share": {"type": "number", "above": 0, "below": 1},
    "refits": {"type": "integer", "min": 2},
    "permutation_repeats": {"type": "integer", "min": 1},
    "fit_sample_size": {"type": "integer", "min": 2},
}
# Features this rank-correlated share the credit permutation importance gives.
CORRELATED = 0.7
# A lead holds when the paired per-refit differences exclude 0 at this two-sided level.
LEAD_ERROR = 0.05


COLUMNS = {
    "scope": "all (every segment) or segment (that segment versus the rest)",
    "segment_id": "The segment, for scope segment",
    "method": (
        "impurity (mean decrease, training data; scope all) or permutation (held-out accuracy loss)"
    ),
    "feature": "A modelling feature",
    "importance": "The feature's importance by the method, the mean over the refits",
    "importance_std": (
        "Its standard deviation across the refits (split, forest and permutations together)"
    ),
    "importance_share": "Importance clipped at zero, as a share of the scope and method's total",
    "rank": "The feature's rank by importance within the scope and method (1 = most important)",
    "first_in_refits": "In how many of the refits the method ranked the feature first",
    "refits": "Train/test splits the forest was refitted on",
    "oob_score": "The forests' out-of-bag accuracy, the mean over the refits",
    "held_out_accuracy": "The forests' accuracy on the held-out share, the mean over the refits",
    "segment_name": "The segment's name, for scope segment",
    "methods_agree_on_top": (
        "Scope all: false only when each method leads with a different feature across the refits"
    ),
    "top_feature_note": (
        "The top features in words: how often each ranked first, whether the lead holds across "
        "the refits, whether the methods disagree, and which features are correlated"
    ),
    "share_sum_in_scope": (
        "Sum of importance_share within the scope and method (1, or 0 when all clip to 0)"
    ),
}


def one_vs_rest_accuracy(segment: int) -> Callable[[np.ndarray, np.ndarray], float]:
    """Accuracy at telling one segment from the rest."""

    def segment_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
        return float(np.mean((truth == segment) == (predicted == segment)))

    return segment_accuracy


@dataclass(frozen=True)
class Refits:
    """What one refit needs; picklable, so a forked worker can fit it."""

    matrix: np.ndarray
    labels: np.ndarray
    pairs: tuple[tuple[int, int], ...]  # correlated features, by position
    config: dict[str, Any]
    seed: int

    def fit(self, index: int) -> dict[str, Any]:
        seed, config = self.seed + index, self.config
        segments, sizes = np.unique(self.labels, return_counts=True)
        x_train, x_test, y_train, y_test = train_test_split(
            self.matrix,
            self.labels,
            test_size=config["test_share"],
            # A segment of one customer cannot be split in two: stratify only when every one can.
            stratify=self.labels if sizes.min() >= 2 else None,
            random_state=seed,
        )
        forest = RandomForestClassifier(
            n_estimators=config["n_estimators"], oob_score=True, random_state=seed, n_jobs=1
        ).fit(x_train, y_train)
        repeats = config["permutation_repeats"]
        copies = chain(
            column_permutations(x_test, repeats, seed),
            *(group_permutations(x_test, list(p), repeats, seed) for p in self.pairs),
        )
        rows = predictions(forest, x_test, copies)
        split = 1 + x_test.shape[1] * repeats
        predicted, by_column, by_group = rows[0], rows[1:split], rows[split:]
        scores = {"all": accuracy} | {f"segment_{s}": one_vs_rest_accuracy(s) for s in segments}
        return {
            "impurity": forest.feature_importances_,
            "oob_score": float(forest.oob_score_),
            "permutation": {
                name: mean_losses(score, y_test, predicted, by_column, repeats)
                for name, score in scores.items()
            },
            "accuracy": {name: score(y_test, predicted) for name, score in scores.items()},
            "grouped": mean_losses(accuracy, y_test, predicted, by_group, repeats).tolist(),
        }


def _rows(
    scope: str,
    segment_id: int | None,
    features: list[str],
    methods: dict[str, np.ndarray],
    oob_score: float,
    held_out_accuracy: float,
) -> list[dict[str, Any]]:
    """One row per method and feature; ``methods`` holds each method's importances, one row
    per refit."""
    rows = []
    for method, draws in methods.items():
        means, stds = draws.mean(axis=0), draws.std(axis=0, ddof=1)
        clipped = np.clip(means, 0, None)
        shares = (
            clipped / clipped.sum() if clipped.sum() > 0 else np.full(len(means), 1 / len(means))
        )
        ranks = pd.Series(means).rank(ascending=False, method="min").astype(int).to_numpy()
        firsts = np.bincount(np.argmax(draws, axis=1), minlength=len(features))
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
                    "first_in_refits": int(firsts[f]),
                    "refits": len(draws),
                    "oob_score": oob_score,
                    "held_out_accuracy": held_out_accuracy,
                }
            )
    return rows


@dataclass(frozen=True)
class Lead:
    top: str
    runner_up: str | None
    first_in: int  # refits that ranked the top feature first
    holds: bool  # the lead over the runner-up holds across the refits


def lead(draws: np.ndarray, features: list[str]) -> Lead:
    """The top feature by mean, and whether its lead holds: the paired per-refit differences
    from the runner-up exclude 0 (a two-sided t bound at 95%)."""
    means = draws.mean(axis=0)
    order = sorted(range(len(features)), key=lambda f: (-means[f], features[f]))
    first_in = int((np.argmax(draws, axis=1) == order[0]).sum())
    if len(order) < 2:
        return Lead(features[order[0]], None, first_in, True)
    differences = draws[:, order[0]] - draws[:, order[1]]
    refits = len(differences)
    bound = student_t.ppf(1 - LEAD_ERROR / 2, refits - 1) * differences.std(ddof=1)
    holds = bool(differences.mean() > bound / np.sqrt(refits))
    return Lead(features[order[0]], features[order[1]], first_in, holds)


def _top_feature_note(methods: dict[str, np.ndarray], features: list[str]) -> tuple[bool, str]:
    """Whether the two methods agree on the top feature, judged across the refits, and how to
    say so: they disagree only when each leads with its own feature."""
    leads = {m: lead(draws, features) for m, draws in methods.items()}
    refits = len(methods["permutation"])
    impurity, permutation = leads["impurity"], leads["permutation"]
    if impurity.top == permutation.top:
        holding = "holds" if permutation.holds else "does not hold"
        runner_up = f" over {permutation.runner_up}" if permutation.runner_up else ""
        return True, (
            f"both methods rank {permutation.top} first (permutation: first in "
            f"{permutation.first_in} of {refits} refits; its lead{runner_up} {holding} across "
            "the refits)"
        )
    said = (
        f"impurity ranks {impurity.top} first ({impurity.first_in} of {refits} refits), "
        f"permutation ranks {permutation.top} first ({permutation.first_in} of {refits})"
    )
    if impurity.holds and permutation.holds:
        return False, f"{said}, each lead holding across the refits: the methods disagree"
    return True, f"{said}, not both leads holding across the refits: not a disagreement"


def correlated_pairs(matrix: np.ndarray) -> list[tuple[int, int, float]]:
    """Feature pairs whose Spearman correlation reaches CORRELATED in size."""
    if matrix.shape[1] < 2 or len(matrix) < 3:
        return []
    rho = pd.DataFrame(matrix).corr(method="spearman").to_numpy()
    return [
        (a, b, float(rho[a, b]))
        for a, b in combinations(range(matrix.shape[1]), 2)
        if abs(rho[a, b]) >= CORRELATED
    ]


def _correlation_note(
    pairs: list[tuple[int, int, float]], grouped: np.ndarray, features: list[str]
) -> str:
    return "".join(
        f"; {features[a]} and {features[b]} are correlated (Spearman rho {rho:.2f}): permutation "
        f"importance splits their credit, and permuted together they cost {loss:.3f} accuracy"
        for (a, b, rho), loss in zip(pairs, grouped, strict=True)
    )


def model(
    int_customer_features: duckdb.DuckDBPyRelation,
    int_feature_scaling: pd.DataFrame,
    customer_segments: duckdb.DuckDBPyRelation,
    segment_centroids: pd.DataFrame,
    config: dict[str, Any],
    seed: int,
    parallel: Callable[[Callable[[int], dict[str, Any]], Iterable[int]], Iterator[dict[str, Any]]],
) -> pd.DataFrame:
    data = training_data(
        int_customer_features,
        int_feature_scaling,
        customer_segments,
        config["fit_sample_size"],
        seed,
    )
    pairs = correlated_pairs(data.matrix)
    refits = Refits(data.matrix, data.labels, tuple((a, b) for a, b, _ in pairs), config, seed)
    fits = list(parallel(refits.fit, range(config["refits"])))
    overall = {
        "impurity": np.array([f["impurity"] for f in fits]),
        "permutation": np.array([f["permutation"]["all"] for f in fits]),
    }
    oob = float(np.mean([f["oob_score"] for f in fits]))
    rows = _rows(
        "all",
        None,
        data.features,
        overall,
        oob,
        float(np.mean([f["accuracy"]["all"] for f in fits])),
    )
    for segment in (int(s) for s in np.unique(data.labels)):
        scope = f"segment_{segment}"
        rows += _rows(
            "segment",
            segment,
            data.features,
            {"permutation": np.array([f["permutation"][scope] for f in fits])},
            oob,
            float(np.mean([f["accuracy"][scope] for f in fits])),
        )
    table = pd.DataFrame(rows)
    names = segment_centroids.drop_duplicates("segment_id").set_index("segment_id")["segment_name"]
    table["segment_name"] = table["segment_id"].map(names)
    table["segment_id"] = table["segment_id"].astype("Int64")
    # Notes are read by people: features by their labels (features.labels), not column names.
    labels = dict(zip(int_feature_scaling["feature"], int_feature_scaling["label"], strict=True))
    said = [labels.get(f, f) for f in data.features]
    agree, note = _top_feature_note(overall, said)
    grouped = np.mean([f["grouped"] for f in fits], axis=0) if pairs else np.empty(0)
    note += _correlation_note(pairs, grouped, said)
    is_all = table["scope"] == "all"
    table["methods_agree_on_top"] = pd.array([agree if a else None for a in is_all], "boolean")
    top = table[~is_all & (table["rank"] == 1)].groupby("segment_id")["feature"]
    segment_tops = top.agg(lambda f: ", ".join(sorted(labels.get(x, x) for x in f)))
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
