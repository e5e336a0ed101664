"""The config's value rules and features: ranges, accepted values and their aliases, which
columns are features and how they are transformed, scaled and labelled, and the checks that every
rule and feature names a column some source maps."""

from __future__ import annotations

from typing import Any

from engine.errors import ConfigError
from engine.project.columns import KEY_COLUMN, KINDS, NUMERIC_KINDS, TRANSFORMS
from engine.project.orders import ORDER_AGGREGATE_LABELS, ORDER_AGGREGATES, TRANSACTIONS
from engine.project.sources import SourceConfig
from engine.project.units import readable_label, unit_in_label

SCALING_METHODS = ("standard", "minmax", "none")


def ranges_of(rules: dict[str, Any], where: str) -> dict[str, tuple[float, float]]:
    ranges: dict[str, tuple[float, float]] = {}
    for column, bounds in rules.get("ranges", {}).items():
        for bound in ("min", "max"):
            if bound not in bounds:
                raise ConfigError(f"{where}: missing required key 'rules.ranges.{column}.{bound}'")
        if bounds["min"] > bounds["max"]:
            raise ConfigError(
                f"{where}: key 'rules.ranges.{column}': min {bounds['min']} is above "
                f"max {bounds['max']}"
            )
        ranges[column] = (float(bounds["min"]), float(bounds["max"]))
    return ranges


def accepted_values(
    rules: dict[str, Any], where: str
) -> tuple[dict[str, tuple[str, ...]], dict[str, dict[str, str]]]:
    accepted: dict[str, tuple[str, ...]] = {}
    aliases: dict[str, dict[str, str]] = {}
    for column, spec in rules.get("accepted", {}).items():
        if "values" not in spec:
            raise ConfigError(f"{where}: missing required key 'rules.accepted.{column}.values'")
        accepted[column] = tuple(spec["values"])
        aliases[column] = dict(spec.get("aliases", {}))
        for spelling, target in aliases[column].items():
            if target not in accepted[column]:
                raise ConfigError(
                    f"{where}: key 'rules.accepted.{column}.aliases.{spelling}' maps to "
                    f"{target!r}, which is not in 'rules.accepted.{column}.values' "
                    f"{list(accepted[column])}"
                )
    return accepted, aliases


def features(
    features: dict[str, Any],
    ranges: dict[str, tuple[float, float]],
    sources: dict[str, SourceConfig],
    where: str,
) -> tuple[tuple[str, ...], str]:
    """The feature columns and the scaling method. A feature is a source column with a range,
    or, with a transactions source, one of the per-customer order aggregates."""
    scaling = features.get("scaling", "standard")
    if scaling not in SCALING_METHODS:
        raise ConfigError(
            f"{where}: key 'features.scaling' must be one of {list(SCALING_METHODS)}, "
            f"got {scaling!r}"
        )
    feature_columns = tuple(features["columns"])
    aggregates = ORDER_AGGREGATES if not sources[TRANSACTIONS].implicit else ()
    unknown = [c for c in feature_columns if c not in ranges and c not in aggregates]
    if unknown:
        from_orders = (
            f", or order aggregates of sources.{TRANSACTIONS} ({', '.join(ORDER_AGGREGATES)})"
        )
        raise ConfigError(
            f"{where}: key 'features.columns' lists {unknown}; features must be numeric columns "
            f"with a range in 'rules.ranges' ({sorted(ranges)}){from_orders}"
        )
    if len(feature_columns) < 2:
        raise ConfigError(
            f"{where}: key 'features.columns' lists {list(feature_columns)}; segmenting needs "
            "at least 2 features"
        )
    if len(set(feature_columns)) != len(feature_columns):
        raise ConfigError(f"{where}: key 'features.columns' lists a column twice")
    return feature_columns, scaling


def kinds_of(
    sources: dict[str, SourceConfig],
    document: dict[str, Any],
    rules: tuple[dict[str, tuple[float, float]], dict[str, tuple[str, ...]]],
    where: str,
) -> dict[str, dict[str, str]]:
    """sources.<name>.kinds, checked against the column's mapping and rule."""
    ranges, accepted = rules
    kinds: dict[str, dict[str, str]] = {}
    for name, spec in document["sources"].items():
        kinds[name] = dict(spec.get("kinds", {}))
        for column, kind in kinds[name].items():
            key = f"sources.{name}.kinds.{column}"
            if column in sources[name].roles:
                raise ConfigError(
                    f"{where}: key '{key}': '{column}' is a canonical {name} column, whose kind "
                    "is fixed"
                )
            if column not in sources[name].columns:
                raise ConfigError(
                    f"{where}: key '{key}': '{column}' has no entry in 'sources.{name}.columns'"
                )
            if kind not in KINDS:
                raise ConfigError(
                    f"{where}: key '{key}' must be one of {list(KINDS)}, got {kind!r}"
                )
            if column in ranges and kind not in NUMERIC_KINDS:
                raise ConfigError(
                    f"{where}: key '{key}' = {kind!r}, but 'rules.ranges.{column}' needs a "
                    f"numeric kind ({' or '.join(NUMERIC_KINDS)})"
                )
            if column in accepted and kind != "category":
                raise ConfigError(
                    f"{where}: key '{key}' = {kind!r}, but 'rules.accepted.{column}' makes it "
                    "a category"
                )
    return kinds


def rules_take_effect(sources: dict[str, SourceConfig], rules: dict[str, Any], where: str) -> None:
    """A rule for a column no source maps would be silently ignored: refuse it."""
    mapped = {c for s in sources.values() for c in s.columns}
    for section in ("ranges", "accepted"):
        for column in rules.get(section, {}):
            if column not in mapped:
                raise ConfigError(
                    f"{where}: key 'rules.{section}.{column}': no source maps a column "
                    f"'{column}' (add it to a 'sources.<name>.columns')"
                )


def feature_options(
    features: dict[str, Any],
    feature_columns: tuple[str, ...],
    ranges: dict[str, tuple[float, float]],
    where: str,
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """features.transforms, features.labels and features.units of every configured feature:
    a label defaults to the column name in words, a unit to the one the label states."""
    transforms = dict(features.get("transforms", {}))
    labels = dict(features.get("labels", {}))
    units = dict(features.get("units", {}))
    for section, values in (("transforms", transforms), ("labels", labels), ("units", units)):
        unknown = [c for c in values if c not in feature_columns]
        if unknown:
            raise ConfigError(
                f"{where}: key 'features.{section}' names {unknown}, which are not in "
                f"'features.columns' {list(feature_columns)}"
            )
    for column, transform in transforms.items():
        if transform not in TRANSFORMS:
            raise ConfigError(
                f"{where}: key 'features.transforms.{column}' must be one of "
                f"{list(TRANSFORMS)}, got {transform!r}"
            )
        if transform == "log1p" and column in ranges and ranges[column][0] <= -1:
            raise ConfigError(
                f"{where}: key 'features.transforms.{column}' = 'log1p' needs values above -1, "
                f"but 'rules.ranges.{column}.min' is {ranges[column][0]}"
            )
    labels = {
        c: labels.get(c) or ORDER_AGGREGATE_LABELS.get(c) or readable_label(c)
        for c in feature_columns
    }
    units = {c: units.get(c, unit_in_label(labels[c])).strip() for c in feature_columns}
    return transforms, labels, units


def features_are_mapped(
    feature_columns: tuple[str, ...],
    sources: dict[str, SourceConfig],
    kinds: dict[str, dict[str, str]],
    where: str,
) -> None:
    for column in feature_columns:
        owners = [s for s in sources.values() if column in s.columns]
        if not owners and column in ORDER_AGGREGATES:
            continue  # computed by intermediate.int_customer_orders
        if not owners:
            raise ConfigError(
                f"{where}: key 'features.columns' lists '{column}', which no source maps "
                "(add it to a 'sources.<name>.columns')"
            )
        declared = [kinds[s.name].get(column) for s in owners]
        if any(k is not None and k not in NUMERIC_KINDS for k in declared):
            raise ConfigError(
                f"{where}: key 'features.columns' lists '{column}', whose kind is not numeric"
            )


def attributes_are_unique(sources: dict[str, SourceConfig], where: str) -> None:
    """Customers and their order lines meet in one profile row: one column, one source."""
    customers, lines = sources["customers"].columns, sources[TRANSACTIONS].columns
    shared = [c for c in lines if c in customers and c != KEY_COLUMN]
    if shared:
        raise ConfigError(
            f"{where}: key 'sources.{TRANSACTIONS}.columns' maps {shared}, which "
            "'sources.customers.columns' maps too; a customer's profile takes each column from "
            "one source, so rename one of them"
        )
    clashes = [c for c in (*customers, *lines) if c in ORDER_AGGREGATES]
    if clashes:
        raise ConfigError(
            f"{where}: a source maps {clashes}, which int_customer_orders computes; rename the "
            "mapped column"
        )


def column_kind(
    declared: dict[str, str],
    accepted: dict[str, tuple[str, ...]],
    ranges: dict[str, tuple[float, float]],
    name: str,
) -> str:
    """A column's kind: as declared (sources.<name>.kinds), else a column with accepted values
    is a category, one with a range a number, any other text."""
    if name in declared:
        return declared[name]
    if name in accepted:
        return "category"
    return "number" if name in ranges else "text"


def categorical_attributes(
    sources: dict[str, SourceConfig],
    kinds: dict[str, dict[str, str]],
    rules: tuple[dict[str, tuple[float, float]], dict[str, tuple[str, ...]]],
    feature_columns: tuple[str, ...],
) -> tuple[str, ...]:
    """The category columns of a customer's profile (the customers source and the order
    lines) that are not features, in declared order."""
    ranges, accepted = rules
    return tuple(
        name
        for source in ("customers", TRANSACTIONS)
        for name in sources[source].columns
        if name != KEY_COLUMN
        and name not in sources[source].roles
        and name not in feature_columns
        and column_kind(kinds.get(source, {}), accepted, ranges, name) == "category"
    )
