"""The ``config`` layer: the value rules and feature list of pipeline.toml as tables.

Values that vary with the config reach SQL models as rows they join to; which columns exist is
expanded into the SQL itself (engine/macros.py).
"""

from __future__ import annotations

import pyarrow as pa

from engine.columns import accepted_spellings
from engine.config import Config


def value_ranges(config: Config) -> pa.Table:
    columns = list(config.ranges)
    return pa.table(
        {
            "column_name": pa.array(columns, pa.string()),
            "min_value": pa.array([config.ranges[c][0] for c in columns], pa.float64()),
            "max_value": pa.array([config.ranges[c][1] for c in columns], pa.float64()),
        }
    )


def accepted_values(config: Config) -> pa.Table:
    """One row per accepted spelling (lower-cased) and the canonical value it stands for."""
    rows: list[tuple[str, str, str]] = []
    for column in config.accepted:
        spellings = accepted_spellings(config, column) or {}
        rows += [(column, spelling, value) for spelling, value in spellings.items()]
    return pa.table(
        {
            "column_name": pa.array([r[0] for r in rows], pa.string()),
            "spelling": pa.array([r[1] for r in rows], pa.string()),
            "value": pa.array([r[2] for r in rows], pa.string()),
        }
    )


def features(config: Config) -> pa.Table:
    names = list(config.feature_columns)
    return pa.table(
        {
            "feature": pa.array(names, pa.string()),
            "position": pa.array(range(1, len(names) + 1), pa.int32()),
            "scaling": pa.array([config.scaling] * len(names), pa.string()),
            "transform": pa.array([config.transforms.get(n, "none") for n in names], pa.string()),
            "label": pa.array([config.labels.get(n, n) for n in names], pa.string()),
        }
    )


SEED_COLUMNS = {
    "value_ranges": {
        "column_name": "The column the range applies to (rules.ranges)",
        "min_value": "Smallest accepted value, inclusive",
        "max_value": "Largest accepted value, inclusive",
    },
    "accepted_values": {
        "column_name": "The categorical column (rules.accepted)",
        "spelling": "A spelling found in exports, lower-cased and trimmed",
        "value": "The accepted value it stands for",
    },
    "features": {
        "feature": "A modelling feature (features.columns)",
        "position": "Its place in the feature list, from 1",
        "scaling": "standard, minmax or none (features.scaling)",
        "transform": "Applied before scaling: log1p or none (features.transforms)",
        "label": "How the report and segment names call it (features.labels)",
    },
}

SEED_BUILDERS = {
    "value_ranges": value_ranges,
    "accepted_values": accepted_values,
    "features": features,
}
