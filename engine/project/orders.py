"""The transaction path's vocabulary: the canonical order-line columns, the per-customer
aggregates SQL computes from them, and the RFM group map, with their config checks.

A ``transactions`` source maps its headers to the roles below; the staging and aggregation models
(sql/staging/stg_transactions_checked.sql, sql/intermediate/int_customer_orders.sql) read them by
these names. A role the config does not map is loaded as nulls, and ``is_mapped()`` (in
engine/project/macros.py) tells SQL which ones are.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError

TRANSACTIONS = "transactions"
# Canonical order-line columns besides customer_id, each read by name in SQL.
TRANSACTION_ROLES = ("order_id", "order_date", "amount", "quantity", "unit_price", "product_id")
# Per-customer aggregates of int_customer_orders that may be modelling features.
ORDER_AGGREGATES = (
    "recency_days",
    "frequency",
    "monetary",
    "orders",
    "purchase_days",
    "tenure_days",
    "average_order_value",
    "return_share",
    "distinct_products",
)
# How names and the report call an order aggregate, and its [low word, high word], when the
# config does not say (features.labels, models.segment_centroids.feature_words): an export
# configured by its columns alone still gets segment names a person can read.
ORDER_AGGREGATE_LABELS = {
    "recency_days": "Recency (days)",
    "frequency": "Purchases",
    "monetary": "Net value",
    "orders": "Orders",
    "purchase_days": "Purchase days",
    "tenure_days": "Tenure (days)",
    "average_order_value": "Average order value",
    "return_share": "Share returned",
    "distinct_products": "Distinct products",
}
ORDER_AGGREGATE_WORDS = {
    "recency_days": ["Recent", "Lapsed"],
    "frequency": ["Occasional", "Frequent"],
    "monetary": ["Low value", "High value"],
    "orders": ["Occasional", "Frequent"],
    "purchase_days": ["Occasional", "Frequent"],
    "tenure_days": ["New", "Long-standing"],
    "average_order_value": ["Small orders", "Large orders"],
    "return_share": ["Few returns", "Many returns"],
    "distinct_products": ["Few products", "Many products"],
}
RFM_SCORES = ("recency", "frequency")
COLLAPSE_CHOICES = ("auto", "always", "never")
# What frequency counts: purchase orders, or the distinct days with one (several orders on one
# day are one purchase in the value models' convention).
FREQUENCY_CHOICES = ("orders", "purchase_days")
# What monetary does with the part of a return no earlier purchase in the data explains (a
# return of something bought before the window): leave it out, or subtract it anyway.
UNMATCHED_RETURN_CHOICES = ("exclude", "subtract")
SCORE_RANGE = (1, 5)

# The widely used RFM segment map over the recency (R) and frequency (F) scores, 1-5 each;
# monetary follows frequency closely, so the classic map leaves it out. Every (R, F) cell
# belongs to exactly one group.
DEFAULT_RFM_GROUPS: tuple[dict[str, Any], ...] = (
    {"name": "Champions", "recency": [5, 5], "frequency": [4, 5]},
    {"name": "Loyal customers", "recency": [3, 4], "frequency": [4, 5]},
    {"name": "Potential loyalists", "recency": [4, 5], "frequency": [2, 3]},
    {"name": "New customers", "recency": [5, 5], "frequency": [1, 1]},
    {"name": "Promising", "recency": [4, 4], "frequency": [1, 1]},
    {"name": "Need attention", "recency": [3, 3], "frequency": [3, 3]},
    {"name": "About to sleep", "recency": [3, 3], "frequency": [1, 2]},
    {"name": "At risk", "recency": [1, 2], "frequency": [3, 4]},
    {"name": "Can't lose them", "recency": [1, 2], "frequency": [5, 5]},
    {"name": "Hibernating", "recency": [2, 2], "frequency": [1, 2]},
    {"name": "Lost", "recency": [1, 1], "frequency": [1, 2]},
)


@dataclass(frozen=True)
class RfmGroup:
    name: str
    recency: tuple[int, int]
    frequency: tuple[int, int]

    def holds(self, recency: int, frequency: int) -> bool:
        return (
            self.recency[0] <= recency <= self.recency[1]
            and self.frequency[0] <= frequency <= self.frequency[1]
        )


@dataclass(frozen=True)
class OrderSettings:
    """The ``[transactions]`` section: how order lines are read and aggregated."""

    snapshot_date: datetime.date | None = None  # None: the day after the latest order date
    # Order dates outside these are implausible (a year typo): rejected with their own reason.
    min_order_date: datetime.date | None = None  # None: no lower bound
    max_order_date: datetime.date | None = None  # None: the day of the run
    cancellation_prefix: str = "C"  # an order id starting with it is a cancellation (a return)
    exclude_products: tuple[str, ...] = ()  # product ids rejected (not staged)
    # Product ids that are not products (postage, fees, manual adjustments): staged, but neither
    # purchases nor returns, and not part of monetary.
    non_product_codes: tuple[str, ...] = ()
    frequency: str = "orders"
    unmatched_returns: str = "exclude"
    # Whether a later exact copy of a staged line collapses into it: "auto" where lines carry an
    # order id (a copy is then a duplicated export line; without one, two identical lines are
    # plausibly two purchases), "always" or "never".
    collapse_copies: str = "auto"
    # Whether a line of zero value (a free product) is a purchase, and an order of free products
    # alone a purchase order. False: they are worth nothing and make no purchase order.
    free_purchases: bool = False
    rfm_groups: tuple[RfmGroup, ...] = ()


def _date(section: dict[str, Any], key: str, where: str) -> datetime.date | None:
    value = section.get(key)
    if value is None:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"{where}: key 'transactions.{key}' = {value!r} is not a date; "
            'expected YYYY-MM-DD, such as "2011-12-10"'
        ) from None


def order_settings(section: dict[str, Any], where: str) -> OrderSettings:
    snapshot = _date(section, "snapshot_date", where)
    earliest = _date(section, "min_order_date", where)
    latest = _date(section, "max_order_date", where)
    if earliest is not None and latest is not None and earliest > latest:
        raise ConfigError(
            f"{where}: key 'transactions.min_order_date' = {earliest} is after "
            f"'transactions.max_order_date' = {latest}; no order date could be staged"
        )
    prefix = section.get("cancellation_prefix", "C")
    if not prefix:
        raise ConfigError(
            f"{where}: key 'transactions.cancellation_prefix' must not be empty (every order "
            "would be a cancellation)"
        )
    groups = section.get("rfm_groups", list(DEFAULT_RFM_GROUPS))
    return OrderSettings(
        snapshot_date=snapshot,
        min_order_date=earliest,
        max_order_date=latest,
        cancellation_prefix=prefix,
        exclude_products=tuple(section.get("exclude_products", [])),
        non_product_codes=tuple(section.get("non_product_codes", [])),
        frequency=section.get("frequency", "orders"),
        unmatched_returns=section.get("unmatched_returns", "exclude"),
        collapse_copies=section.get("collapse_copies", "auto"),
        free_purchases=section.get("free_purchases", False),
        rfm_groups=rfm_groups(groups, where),
    )


def rfm_groups(groups: list[dict[str, Any]], where: str) -> tuple[RfmGroup, ...]:
    """The groups, checked: each names a score range per score, and every cell has one group."""
    parsed = tuple(
        _rfm_group(g, f"transactions.rfm_groups[{i}]", where) for i, g in enumerate(groups)
    )
    low, high = SCORE_RANGE
    for recency in range(low, high + 1):
        for frequency in range(low, high + 1):
            owners = [g.name for g in parsed if g.holds(recency, frequency)]
            if len(owners) != 1:
                problem = "no group" if not owners else f"{len(owners)} groups ({owners})"
                raise ConfigError(
                    f"{where}: key 'transactions.rfm_groups': the cell recency {recency}, "
                    f"frequency {frequency} has {problem}; every cell needs exactly one"
                )
    return parsed


def _rfm_group(group: Any, key: str, where: str) -> RfmGroup:
    if not isinstance(group, dict) or set(group) != {"name", *RFM_SCORES}:
        raise ConfigError(
            f"{where}: key '{key}' must be a table with keys name, recency and frequency, "
            f"got {group!r}"
        )
    if not isinstance(group["name"], str) or not group["name"]:
        raise ConfigError(f"{where}: key '{key}.name' must be a non-empty string")
    ranges = [_score_range(group[s], f"{key}.{s}", where) for s in RFM_SCORES]
    return RfmGroup(name=group["name"], recency=ranges[0], frequency=ranges[1])


def _score_range(value: Any, key: str, where: str) -> tuple[int, int]:
    low, high = SCORE_RANGE
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not low <= value[0] <= value[1] <= high
    ):
        raise ConfigError(
            f"{where}: key '{key}' must be [lowest, highest] scores within {low}..{high}, "
            f"got {value!r}"
        )
    return value[0], value[1]


def check_transactions_mapping(columns: dict[str, tuple[str, ...]], where: str) -> None:
    """A transactions source needs a customer, a date and a line value."""
    key = f"sources.{TRANSACTIONS}.columns"
    missing = [c for c in ("customer_id", "order_date") if c not in columns]
    if missing:
        raise ConfigError(f"{where}: key '{key}' must map {missing} (the header spellings)")
    if "amount" not in columns and not {"quantity", "unit_price"} <= set(columns):
        raise ConfigError(
            f"{where}: key '{key}' must map 'amount' (a line's value), or both 'quantity' and "
            "'unit_price' (the value is their product)"
        )


def check_product_codes(
    section: dict[str, Any], columns: dict[str, tuple[str, ...]], where: str
) -> None:
    """Product code lists act on product_id: without it mapped they could not take effect."""
    for key in ("exclude_products", "non_product_codes"):
        if section.get(key) and "product_id" not in columns:
            raise ConfigError(
                f"{where}: key 'transactions.{key}' lists product codes, but "
                f"'sources.{TRANSACTIONS}.columns' maps no 'product_id' to compare them with"
            )
