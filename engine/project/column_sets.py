"""The declared column set: what each source column is, derived once from ``pipeline.toml``.

A column's kind comes from ``sources.<name>.kinds`` or is inferred from its rule (accepted values:
a category; a range: a number; neither: text). Whether it may be missing comes from
``sources.<name>.required`` and ``features.columns``. SQL models and suites read these as named
column sets (``customers``, ``customers_attributes``, ``features`` …); see engine/project/macros.py.
"""

from __future__ import annotations

from engine.project.columns import KEY_COLUMN, Column
from engine.project.config import Config
from engine.project.orders import ORDER_AGGREGATES, TRANSACTIONS
from engine.project.rules import column_kind


def declared_columns(config: Config, source: str) -> tuple[Column, ...]:
    """A source's declared columns (the key left out), in the order its mapping lists them."""
    spec = config.sources[source]
    return tuple(
        Column(
            name=name,
            kind=config.kinds.get(source, {}).get(name) or inferred_kind(config, name),
            required=name in spec.required or name in config.feature_columns,
            bounds=config.ranges.get(name),
            spellings=accepted_spellings(config, name),
            is_feature=name in config.feature_columns,
            date_format=spec.date_format,
        )
        for name in spec.columns
        if name != KEY_COLUMN and name not in spec.roles
    )


def inferred_kind(config: Config, name: str) -> str:
    return column_kind({}, config.accepted, config.ranges, name)


def accepted_spellings(config: Config, name: str) -> dict[str, str] | None:
    if name not in config.accepted:
        return None
    spellings = {v.strip().lower(): v for v in config.accepted[name]}
    spellings.update({k.strip().lower(): v for k, v in config.aliases[name].items()})
    return dict(sorted(spellings.items()))


def column_sets(config: Config) -> dict[str, tuple[str, ...]]:
    """Every named column set a SQL model or a suite may expand, in declared order."""
    sets: dict[str, tuple[str, ...]] = {"features": config.feature_columns}
    for source in config.sources:
        columns = declared_columns(config, source)
        attributes = [c for c in columns if not c.is_feature]
        sets[source] = tuple(c.name for c in columns)
        sets[f"{source}_attributes"] = tuple(c.name for c in attributes)
        sets[f"{source}_categories"] = tuple(c.name for c in attributes if c.kind == "category")
        # A category may have accepted values (rules.accepted) or take any value.
        sets[f"{source}_accepted"] = tuple(c.name for c in columns if c.spellings is not None)
        sets[f"{source}_ranged"] = tuple(c.name for c in columns if c.bounds is not None)
        sets[f"{source}_required"] = tuple(c.name for c in columns if c.required)
    sets.update(_profile_sets(config))
    return sets


def _profile_sets(config: Config) -> dict[str, tuple[str, ...]]:
    """A customer's profile (intermediate.int_customer_profiles): the customers source's
    columns, the order lines' attributes and, with order lines, their per-customer aggregates."""
    columns = [*declared_columns(config, "customers"), *declared_columns(config, TRANSACTIONS)]
    aggregates = () if config.sources[TRANSACTIONS].implicit else ORDER_AGGREGATES
    profile = (*(c.name for c in columns), *aggregates)
    return {
        "order_aggregates": ORDER_AGGREGATES,  # the columns of int_customer_orders features read
        "profile": profile,
        "profile_attributes": tuple(c for c in profile if c not in config.feature_columns),
        "profile_categories": tuple(
            c.name for c in columns if c.kind == "category" and not c.is_feature
        ),
    }


def feature_pairs(config: Config) -> tuple[tuple[str, str], ...]:
    """Every pair of features once, in configured order (for correlations)."""
    features = config.feature_columns
    return tuple((a, b) for i, a in enumerate(features) for b in features[i + 1 :])
