"""The order-line aggregates of README.md ("Order lines") written again, independently of the SQL:
returns matched to purchases with an explicit stack per customer and product (last in, first
out), orders judged cancelled from the matches, and the per-customer figures from those.

The SQL finds the same matches with running totals over window frames; this walks the lines one
by one, so the two can only agree if both follow the definition.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

# Orders left with less than this after their returns count as cancelled (the SQL compares
# exact decimals with 0; here shares of a line are floats).
NOTHING = 1e-9


def _exact(value: float) -> Fraction:
    return Fraction(str(round(value, 10)))


def matched_weights(lines: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per line: the weight later returns took back (purchases) and the weight of a return no
    earlier purchase explains. ``lines`` has customer_id, product (None: one group per
    customer), order_date, is_return, is_purchase, weight, source_file and line_number."""
    returned = pd.Series(0.0, index=lines.index)
    unmatched = pd.Series(0.0, index=lines.index)
    moving = lines.loc[lines["is_purchase"] | lines["is_return"]]
    keys = moving["customer_id"].astype(str) + "\x00" + moving["product"].fillna("").astype(str)
    with_returns = set(keys[moving["is_return"]])
    moving = moving.loc[keys.isin(with_returns)].assign(key=keys)
    moving = moving.sort_values(["key", "order_date", "is_return", "source_file", "line_number"])
    stack: list[list] = []
    current = None
    for index, key, is_return, weight in zip(
        moving.index, moving["key"], moving["is_return"], moving["weight"], strict=True
    ):
        if key != current:
            stack, current = [], key
        left = _exact(weight)
        if not is_return:
            stack.append([index, left])
            continue
        while left > 0 and stack:
            top = stack[-1]
            taken = min(left, top[1])
            top[1] -= taken
            left -= taken
            returned[top[0]] += float(taken)
            if top[1] == 0:
                stack.pop()
        unmatched[index] = float(left)
    return returned, unmatched


def _share(value: pd.Series, part: pd.Series, weight: pd.Series) -> pd.Series:
    """A part of a line's weight valued at the line's price; a whole line keeps its value."""
    share = value * (part / weight.where(weight > 0))
    return share.where(part != weight, value).fillna(0.0)


def customer_orders(
    lines: pd.DataFrame,
    *,
    by_units: bool,
    frequency: str = "orders",
    subtract: bool = False,
    snapshot: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The per-customer figures. ``lines`` as above plus order_id, value (negative on a
    cancellation) and is_non_product; ``by_units``: the weight is the quantity, else the value."""
    lines = lines.copy()
    moving = lines["is_purchase"] | lines["is_return"]
    weight = (lines["quantity"] if by_units else lines["value"]).abs()
    lines["weight"] = weight.where(moving, 0.0)
    returned, unmatched = matched_weights(lines)
    lines["returned_value"] = _share(lines["value"], returned, lines["weight"]).where(
        lines["is_purchase"], 0.0
    )
    lines["unmatched_value"] = -_share(lines["value"], unmatched, lines["weight"]).where(
        lines["is_return"], 0.0
    )
    buys = lines.loc[lines["is_purchase"]].copy()
    buys["net"] = buys["value"] - buys["returned_value"]
    per_order = buys.groupby(["customer_id", "order_id"]).agg(
        net=("net", "sum"), bought=("value", "sum")
    )
    kept = per_order.index[per_order["net"] > NOTHING]
    cancelled = per_order.loc[(per_order["bought"] > 0) & (per_order["net"] <= NOTHING)]
    in_kept = pd.MultiIndex.from_frame(buys[["customer_id", "order_id"]]).isin(kept)
    kept_lines = buys.loc[in_kept]
    returns = lines.loc[lines["is_return"]]
    by_customer = lines.groupby("customer_id")
    kept_by = kept_lines.groupby("customer_id")
    out = pd.DataFrame(
        {
            "order_lines": by_customer.size(),
            "purchase_value": buys.groupby("customer_id")["value"].sum(),
            "return_value": -(returns["value"] + returns["unmatched_value"])
            .groupby(returns["customer_id"])
            .sum(),
            "unmatched_return_value": by_customer["unmatched_value"].sum(),
            "orders": kept_by["order_id"].nunique(),
            "purchase_days": kept_by["order_date"].agg(lambda d: d.dt.normalize().nunique()),
            "cancelled_orders": cancelled.groupby(level="customer_id").size(),
            "return_orders": returns.groupby("customer_id")["order_id"].nunique(),
            "kept_value": kept_by["net"].sum(),
            "distinct_products": kept_by["product"].nunique(),
            "first": kept_by["order_date"].min().dt.normalize(),
            "last": kept_by["order_date"].max().dt.normalize(),
        }
    )
    counts = ("orders", "purchase_days", "cancelled_orders", "return_orders", "distinct_products")
    for column in counts:
        out[column] = out[column].fillna(0).astype("int64")
    for column in ("purchase_value", "return_value", "kept_value"):
        out[column] = out[column].fillna(0.0)
    out["frequency"] = out[frequency]
    out["monetary"] = out["purchase_value"] - out["return_value"]
    if subtract:
        out["monetary"] -= out["unmatched_return_value"]
    if snapshot is None:
        snapshot = lines["order_date"].max().normalize() + pd.Timedelta(days=1)
    out["recency_days"] = (snapshot - out["last"]).dt.days
    out["tenure_days"] = (snapshot - out["first"]).dt.days
    out["average_order_value"] = out["kept_value"] / out["orders"].replace(0, np.nan)
    out["return_share"] = out["return_value"] / out["purchase_value"].where(
        out["purchase_value"] > 0
    )
    return out.sort_index()
