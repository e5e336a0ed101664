"""The surrogate tree as rules a marketer reads, and as a SQL macro a BI tool runs.

One row per leaf: the segment it predicts, its rule in plain units ("Annual income > 69.5 k$ and
Spending score <= 49.5"), the same conditions as structured values, support, purity and the share
of its segment it covers. ``ml.surrogate_segment(<features>)`` applies the same tree in SQL.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd

from engine.model_api import ModelResult, units
from python_models import _sql_scoring as sql
from python_models._surrogate import (
    fit_tree,
    leaves,
    rule_node_of,
    training_data,
    tree_expression,
)

# It fits on a sample: at scale the Spark engine hands it a sample of each large input, the
# customers whose id hashes below a cut ([spark] fit_sample_rows).
FIT_SAMPLE_KEY = "customer_id"

PARAMETERS = {
    # How features read in a rule: feature = [label, unit]; a feature not listed reads as its
    # label and unit (features.labels, features.units). The sample's are in pipeline.toml.
    "feature_labels": {},
}
PARAMETER_CONSTRAINTS = {"feature_labels": {"type": "table"}}
SCORER_NAME = "surrogate_segment"


COLUMNS = {
    "leaf_id": "The rule's id (one per leaf)",
    "segment_id": "The segment the rule predicts",
    "segment_name": "Its name",
    "rule": "The rule in plain units, e.g. 'Annual income > 70 k$ and Spending score <= 40'",
    "conditions": "The rule's conditions as structured values (feature, operator, threshold)",
    "support": "Customers the rule covers",
    "purity": "Share of them in the predicted segment",
    "segment_coverage": "Share of the predicted segment the rule covers",
    "depth": "The tree's depth",
    "tree_node": "The leaf's node number in the tree",
    "path": "The splits from the root to the leaf (node, feature, operator, threshold)",
}


def readable_threshold(value: float, unit: str = "") -> str:
    """A split threshold as people write numbers: thousands separated, at most two decimals
    (735.895 reads 735.89; the conditions column and the SQL macro keep the exact value), money
    with its symbol in front (£735.89)."""
    if unit.strip() in units.LEADING_CURRENCIES:
        return units.measured(value, unit)
    return f"{units.number(value)}{unit}"


def feature_readings(
    scaling: pd.DataFrame, configured: dict[str, list[str]]
) -> dict[str, tuple[str, str]]:
    """Per feature, its label and unit in a rule: the model's feature_labels where given, else
    the feature's label and unit (features.labels, features.units)."""
    readings = {
        row.feature: (row.label, f" {row.unit}" if row.unit else "") for row in scaling.itertuples()
    }
    return readings | {f: (label, unit) for f, (label, unit) in configured.items()}


def _rule_text(
    conditions: list[tuple[str, str, float]], readings: dict[str, tuple[str, str]]
) -> str:
    if not conditions:
        return "every customer"
    parts = []
    by_feature: dict[str, list[tuple[str, float]]] = {}
    for feature, operator, threshold in conditions:
        by_feature.setdefault(feature, []).append((operator, threshold))
    for feature, bounds in by_feature.items():
        label, unit = readings.get(feature, (feature, ""))
        low = next((t for op, t in bounds if op == ">"), None)
        high = next((t for op, t in bounds if op == "<="), None)
        if low is not None and high is not None:
            low_text, high_text = readable_threshold(low, unit), readable_threshold(high, unit)
            parts.append(f"{low_text} < {label} ≤ {high_text}")
        elif low is not None:
            parts.append(f"{label} > {readable_threshold(low, unit)}")
        else:
            parts.append(f"{label} ≤ {readable_threshold(high, unit)}")
    return " and ".join(parts)


def model(
    int_customer_features: duckdb.DuckDBPyRelation,
    int_feature_scaling: pd.DataFrame,
    customer_segments: duckdb.DuckDBPyRelation,
    segment_centroids: pd.DataFrame,
    surrogate_fidelity: pd.DataFrame,
    config: dict[str, Any],
    seed: int,
) -> ModelResult:
    chosen = surrogate_fidelity[
        surrogate_fidelity["is_chosen"] & (surrogate_fidelity["scope"] == "all")
    ]
    depth = int(chosen["depth"].iloc[0])
    sample_size = int(chosen["customers"].iloc[0])
    data = training_data(
        int_customer_features, int_feature_scaling, customer_segments, sample_size, seed
    )
    tree = fit_tree(data, depth, int(chosen["min_samples_leaf"].iloc[0]), seed)
    rules = leaves(tree, data.features)
    rule_of = rule_node_of(tree, rules, data.matrix)
    segment_sizes = pd.Series(data.labels).value_counts()
    readings = feature_readings(int_feature_scaling, config["feature_labels"])
    names = segment_centroids.drop_duplicates("segment_id").set_index("segment_id")["segment_name"]

    rows = []
    for number, leaf in enumerate(rules, start=1):
        members = rule_of == leaf.node
        correct = int(np.sum(data.labels[members] == leaf.segment_id))
        rows.append(
            {
                "leaf_id": number,
                "segment_id": leaf.segment_id,
                "segment_name": names.get(leaf.segment_id),
                "rule": _rule_text(leaf.conditions, readings),
                "conditions": [
                    {"feature": f, "operator": op, "threshold": t} for f, op, t in leaf.conditions
                ],
                "support": int(members.sum()),
                "purity": correct / max(int(members.sum()), 1),
                "segment_coverage": correct / int(segment_sizes.get(leaf.segment_id, 1)),
                "depth": depth,
                "tree_node": leaf.node,
                "path": [
                    {"node": int(n), "feature": f, "operator": op, "threshold": float(t)}
                    for n, f, op, t in leaf.path
                ],
            }
        )
    table = pd.DataFrame(rows)
    scorer = sql.create_macro(
        "ml", SCORER_NAME, data.features, tree_expression(tree, data.features)
    )
    return ModelResult(table=table, functions=(scorer,))
