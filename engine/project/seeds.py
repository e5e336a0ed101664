"""The ``config`` layer: the value rules and feature list of pipeline.toml as tables.

Values that vary with the config reach SQL models as rows they join to; which columns exist is
expanded into the SQL itself (engine/project/macros.py).
"""

from __future__ import annotations

import datetime

import pyarrow as pa

from engine.project.column_sets import accepted_spellings
from engine.project.config import Config
from engine.project.orders import TRANSACTIONS
from engine.project.units import readable_label


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
            "unit": pa.array([config.units.get(n, "") for n in names], pa.string()),
        }
    )


def order_settings(config: Config) -> pa.Table:
    """One row: how order lines are read and aggregated ([transactions])."""
    orders = config.orders
    latest = orders.max_order_date or datetime.datetime.now(datetime.UTC).date()
    has_order_ids = "order_id" in config.sources[TRANSACTIONS].columns
    collapses = orders.collapse_copies == "always" or (
        orders.collapse_copies == "auto" and has_order_ids
    )
    return pa.table(
        {
            "snapshot_date": pa.array([orders.snapshot_date], pa.date32()),
            "min_order_date": pa.array([orders.min_order_date], pa.date32()),
            "max_order_date": pa.array([latest], pa.date32()),
            "cancellation_prefix": pa.array([orders.cancellation_prefix], pa.string()),
            "excluded_products": pa.array([list(orders.exclude_products)], pa.list_(pa.string())),
            "non_product_codes": pa.array([list(orders.non_product_codes)], pa.list_(pa.string())),
            "frequency_counts": pa.array([orders.frequency], pa.string()),
            "subtracts_unmatched_returns": pa.array(
                [orders.unmatched_returns == "subtract"], pa.bool_()
            ),
            "collapses_copies": pa.array([collapses], pa.bool_()),
            "counts_free_purchases": pa.array([orders.free_purchases], pa.bool_()),
        }
    )


def value_settings(config: Config) -> pa.Table:
    """One row: the customer value models' periods, calibration and horizons ([value])."""
    value = config.value
    return pa.table(
        {
            "period": pa.array([value.period], pa.string()),
            "period_days": pa.array([value.period_days], pa.int32()),
            "calibration_end": pa.array([value.calibration_end], pa.date32()),
            "holdout_periods": pa.array([value.holdout], pa.int32()),
            "horizons_days": pa.array([list(value.horizons_days)], pa.list_(pa.int32())),
            "clv_horizon_days": pa.array([value.clv_horizon_days], pa.int32()),
            "annual_discount_rate": pa.array([value.annual_discount_rate], pa.float64()),
            "min_repeat_customers": pa.array([value.min_repeat_customers], pa.int32()),
        }
    )


def drift_settings(config: Config) -> pa.Table:
    """One row: the drift checks' bins and thresholds ([drift])."""
    drift = config.drift
    return pa.table(
        {
            "bins": pa.array([drift.bins], pa.int32()),
            "min_share": pa.array([drift.min_share], pa.float64()),
            "watch": pa.array([drift.watch], pa.float64()),
            "alert": pa.array([drift.alert], pa.float64()),
        }
    )


def drift_checks(config: Config) -> pa.Table:
    """One row per drift check: every feature, then every categorical attribute."""
    drift = config.drift
    checks = [("feature", f) for f in drift.features] + [("attribute", a) for a in drift.attributes]
    return pa.table(
        {
            "check_kind": pa.array([kind for kind, _ in checks], pa.string()),
            "subject": pa.array([subject for _, subject in checks], pa.string()),
            "label": pa.array(
                [config.labels.get(s) or readable_label(s) for _, s in checks], pa.string()
            ),
            "action": pa.array([drift.action_for(s) for _, s in checks], pa.string()),
        }
    )


def audiences(config: Config) -> pa.Table:
    """One row per audience ([audiences.<name>]): its condition as DuckDB SQL, holdout share
    and exported columns."""
    found = config.audiences
    return pa.table(
        {
            "audience": pa.array([a.name for a in found], pa.string()),
            "condition": pa.array([a.condition_sql for a in found], pa.string()),
            "holdout_share": pa.array([a.holdout_share for a in found], pa.float64()),
            "columns": pa.array([list(a.columns) for a in found], pa.list_(pa.string())),
        }
    )


def rfm_groups(config: Config) -> pa.Table:
    groups = config.orders.rfm_groups
    return pa.table(
        {
            "rfm_group": pa.array([g.name for g in groups], pa.string()),
            "position": pa.array(range(1, len(groups) + 1), pa.int32()),
            "recency_min": pa.array([g.recency[0] for g in groups], pa.int32()),
            "recency_max": pa.array([g.recency[1] for g in groups], pa.int32()),
            "frequency_min": pa.array([g.frequency[0] for g in groups], pa.int32()),
            "frequency_max": pa.array([g.frequency[1] for g in groups], pa.int32()),
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
        "unit": "The unit its values are in, e.g. £ or days (features.units); empty: none",
    },
    "order_settings": {
        "snapshot_date": "The date recency and tenure count to (transactions.snapshot_date); "
        "null: the day after the latest staged order date",
        "min_order_date": "An order line dated before it is rejected as implausible "
        "(transactions.min_order_date); null: no lower bound",
        "max_order_date": "An order line dated after it is rejected as implausible, a year typo "
        "say (transactions.max_order_date; default: the day of the run)",
        "cancellation_prefix": "An order id starting with it is a cancellation, staged as a "
        "return (transactions.cancellation_prefix)",
        "excluded_products": "Product ids rejected as not products (transactions.exclude_products)",
        "non_product_codes": "Product ids staged as neither purchases nor returns: postage, "
        "fees, manual adjustments (transactions.non_product_codes)",
        "frequency_counts": "What frequency counts: orders or purchase_days "
        "(transactions.frequency)",
        "subtracts_unmatched_returns": "Whether monetary subtracts the part of a return no "
        "earlier purchase explains (transactions.unmatched_returns = 'subtract')",
        "collapses_copies": "Whether a later exact copy of a staged line collapses into it "
        "(transactions.collapse_copies; auto: where lines carry an order id)",
        "counts_free_purchases": "Whether a line of zero value is a purchase, and an order of "
        "free products a purchase order (transactions.free_purchases)",
    },
    "value_settings": {
        "period": "The unit of the value models' periods: day or week (value.period)",
        "period_days": "Days in one period",
        "calibration_end": "The last day of the calibration period (value.calibration_end); "
        "null: the observation's end minus holdout_periods",
        "holdout_periods": "Periods held out after calibration (value.holdout_periods)",
        "horizons_days": "Days ahead expected purchases are published for (value.horizons_days)",
        "clv_horizon_days": "Days ahead customer lifetime value sums over (value.clv_horizon_days)",
        "annual_discount_rate": "Yearly rate future value is discounted at "
        "(value.annual_discount_rate)",
        "min_repeat_customers": "Fewer customers with a repeat purchase than this: no fit "
        "(value.min_repeat_customers)",
    },
    "drift_settings": {
        "bins": "PSI bins: the previous refresh's quantiles (drift.bins; ties merge bins)",
        "min_share": "A bin's share is floored at this in the PSI (drift.min_share)",
        "watch": "PSI from which a check is worth a look (drift.watch)",
        "alert": "PSI from which a check's action applies (drift.alert)",
    },
    "drift_checks": {
        "check_kind": "feature (a modelling feature) or attribute (a categorical attribute)",
        "subject": "The feature or attribute checked",
        "label": "How the report calls it",
        "action": "What an alert does: warn or block (drift.action, drift.actions.<subject>)",
    },
    "audiences": {
        "audience": "An audience (audiences.<name>)",
        "condition": "Its condition on marts.dim_customers' columns, as DuckDB SQL",
        "holdout_share": "Share of its customers held out of the exported list (by hash)",
        "columns": "marts.dim_customers' columns exported beside the customer id",
    },
    "rfm_groups": {
        "rfm_group": "A named RFM group (transactions.rfm_groups)",
        "position": "Its place in the map, from 1",
        "recency_min": "Lowest recency score (R, 1-5) in the group",
        "recency_max": "Highest recency score in the group",
        "frequency_min": "Lowest frequency score (F, 1-5) in the group",
        "frequency_max": "Highest frequency score in the group",
    },
}

SEED_BUILDERS = {
    "value_ranges": value_ranges,
    "accepted_values": accepted_values,
    "features": features,
    "order_settings": order_settings,
    "value_settings": value_settings,
    "rfm_groups": rfm_groups,
    "drift_settings": drift_settings,
    "drift_checks": drift_checks,
    "audiences": audiences,
}
