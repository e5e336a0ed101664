"""The surrogate tree's shared pieces: the training data, and the tree as rules and as SQL.

scikit-learn compares ``float32(x) <= threshold``; the SQL does the same (CAST(x AS REAL)), so the
compiled rules agree with ``tree.predict`` even on values exactly at a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier
from sqlglot import exp

from engine.model_api import InputError
from python_models import _sql_scoring as sql
from python_models._relations import rows_with_keys, sorted_keys
from python_models._segmentation import feature_names, fit_rows


@dataclass(frozen=True)
class TrainingData:
    features: list[str]
    matrix: np.ndarray  # original units
    labels: np.ndarray  # segment ids


def training_data(
    int_customer_features: duckdb.DuckDBPyRelation,
    int_feature_scaling: pd.DataFrame,
    customer_segments: duckdb.DuckDBPyRelation,
    sample_size: int,
    seed: int,
) -> TrainingData:
    """The features and segment of the customers fit_rows picks from all of them ordered by id.

    customer_segments scores every customer of int_customer_features, so the two tables ordered
    by id line up row for row: each gives its picked rows, and no join of every customer is
    needed (at 10M customers the join was two thirds of the work).
    """
    features = feature_names(int_feature_scaling)
    customers = sorted_keys(int_customer_features, "customer_id")
    segmented = sorted_keys(customer_segments, "customer_id")
    if not customers.equals(segmented):
        raise InputError(
            f"ml.customer_segments ({len(segmented)} rows) and "
            f"intermediate.int_customer_features ({len(customers)} rows) hold different customers: "
            "the surrogate needs the segment of every customer"
        )
    chosen = customers.take(fit_rows(len(customers), sample_size, seed))
    picked = rows_with_keys(int_customer_features, features, "customer_id", chosen).to_pandas()
    segments = rows_with_keys(customer_segments, ["segment_id"], "customer_id", chosen)
    labels = segments["segment_id"].to_numpy().astype(np.int64)
    matrix = picked[features].to_numpy(dtype=np.float64)
    return TrainingData(features, matrix, labels)


def fit_tree(
    data: TrainingData, depth: int, min_samples_leaf: int, seed: int
) -> DecisionTreeClassifier:
    return DecisionTreeClassifier(
        max_depth=depth, min_samples_leaf=min_samples_leaf, random_state=seed
    ).fit(data.matrix, data.labels)


@dataclass(frozen=True)
class Leaf:
    node: int
    segment_id: int
    conditions: list[tuple[str, str, float]]  # (feature, "<=" or ">", threshold), merged
    path: list[tuple[int, str, str, float]]  # the splits from the root: (node, feature, op, t)


def _predicted(tree: DecisionTreeClassifier, node: int) -> int:
    return int(tree.classes_[int(np.argmax(tree.tree_.value[node][0]))])


def _uniform(tree: DecisionTreeClassifier, node: int) -> int | None:
    """The segment every leaf under ``node`` predicts, or None if they differ.

    A split whose two sides predict the same segment changes no prediction; treating the whole
    subtree as one leaf gives shorter rules and the same answers.
    """
    left, right = tree.tree_.children_left[node], tree.tree_.children_right[node]
    if left == right:
        return _predicted(tree, node)
    on_left = _uniform(tree, left)
    return on_left if on_left is not None and on_left == _uniform(tree, right) else None


def leaves(tree: DecisionTreeClassifier, features: list[str]) -> list[Leaf]:
    """Every (collapsed) leaf with its path's conditions merged to one interval per feature."""
    structure = tree.tree_
    found: list[Leaf] = []

    def walk(node: int, upper: dict[int, float], lower: dict[int, float], path: list) -> None:
        segment = _uniform(tree, node)
        if segment is not None:
            conditions = []
            for f in range(len(features)):
                if f in lower:
                    conditions.append((features[f], ">", lower[f]))
                if f in upper:
                    conditions.append((features[f], "<=", upper[f]))
            found.append(Leaf(node, segment, conditions, path))
            return
        f, threshold = int(structure.feature[node]), float(structure.threshold[node])
        walk(
            structure.children_left[node],
            {**upper, f: min(threshold, upper.get(f, np.inf))},
            lower,
            [*path, (node, features[f], "<=", threshold)],
        )
        walk(
            structure.children_right[node],
            upper,
            {**lower, f: max(threshold, lower.get(f, -np.inf))},
            [*path, (node, features[f], ">", threshold)],
        )

    walk(0, {}, {}, [])
    return found


def rule_node_of(tree: DecisionTreeClassifier, rules: list[Leaf], matrix: np.ndarray) -> np.ndarray:
    """For every row, the node of the rule (collapsed leaf) it falls in."""
    paths = tree.decision_path(matrix)
    rule_nodes = np.array([leaf.node for leaf in rules])
    # Each row's path passes through exactly one rule node.
    hits = paths[:, rule_nodes].toarray()
    return rule_nodes[np.argmax(hits, axis=1)]


def tree_expression(tree: DecisionTreeClassifier, features: list[str]) -> exp.Expression:
    """The tree as nested CASE expressions over the macro's feature parameters."""
    structure = tree.tree_

    def node_expression(node: int) -> exp.Expression:
        segment = _uniform(tree, node)
        if segment is not None:
            return exp.Literal.number(segment)
        feature = features[int(structure.feature[node])]
        test = exp.LTE(
            this=exp.cast(exp.column(feature), exp.DataType.build("float")),
            expression=sql.double(float(structure.threshold[node])),
        )
        return (
            exp.Case()
            .when(test, node_expression(structure.children_left[node]))
            .else_(node_expression(structure.children_right[node]))
        )

    return node_expression(0)
