"""The top of the report: who the segments are, how far to trust them, what to do, and what was
rejected, in the data's own words and units. Every figure is read from the warehouse; the ones a
test compares with it carry a data-key."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import pandas as pd

from engine.project import units
from reporting import tables

# A segment's feature "sets it apart" when its mean is this far from the overall mean (index
# 100 is the overall mean); at most this many are named, the farthest first.
APART_INDEX_DISTANCE = 15
APART_FEATURES = 3


@dataclass(frozen=True)
class Headline:
    key: str  # data-key on the page, so a test can compare the figure with the warehouse
    value: str
    text: str  # with {value} where the figure goes


def headline_html(headline: Headline) -> str:
    figure = f'<b data-key="{headline.key}">{html.escape(headline.value)}</b>'
    return html.escape(headline.text).replace("{value}", figure)


def _items(found: list[Headline]) -> str:
    return (
        "<ul class='headlines'>" + "".join(f"<li>{headline_html(h)}</li>" for h in found) + "</ul>"
    )


def feature_units(t: dict[str, Any]) -> dict[str, str]:
    return dict(zip(t["scaling"]["feature"], t["scaling"]["unit"].fillna(""), strict=True))


def feature_labels(t: dict[str, Any]) -> dict[str, str]:
    return dict(zip(t["scaling"]["feature"], t["scaling"]["label"], strict=True))


def money_unit(t: dict[str, Any]) -> str:
    """The currency of the order lines' amounts: monetary's unit, else any money feature's."""
    found = feature_units(t)
    candidates = [found.get("monetary", ""), *found.values()]
    return next((u for u in candidates if units.is_money(u)), "")


def sets_apart(segments: pd.DataFrame, t: dict[str, Any]) -> list[str]:
    """Per segment, the features whose mean is farthest from everyone's, with both means."""
    labels, found_units = feature_labels(t), feature_units(t)
    weights = segments["customers"] / segments["customers"].sum()
    overall = {f: float((segments[f"{f}_mean"] * weights).sum()) for f in labels}
    described = []
    for _, segment in segments.iterrows():
        distance = {f: abs(float(segment[f"{f}_index"]) - 100) for f in labels}
        chosen = [
            f
            for f in sorted(labels, key=lambda f: -distance[f])
            if distance[f] >= APART_INDEX_DISTANCE
        ]
        parts = [
            f"{units.without_unit(labels[f], found_units[f])} "
            f"{units.measured(float(segment[f'{f}_mean']), found_units[f])} "
            f"(all: {units.measured(overall[f], found_units[f])})"
            for f in chosen[:APART_FEATURES]
        ]
        described.append("; ".join(parts) or "close to the average on every feature")
    return described


def who(t: dict[str, Any]) -> str:
    segments = t["segments"]
    summary = pd.DataFrame(
        {
            "segment": segments["segment_name"],
            "customers": segments["customers"],
            "share": segments["share"],
            "what sets it apart (mean)": sets_apart(segments, t),
        }
    )
    return tables.table(summary)


def _changes(migrations: pd.DataFrame) -> Headline:
    by_change = migrations.groupby("change")["customers"].sum()
    total = int(by_change.drop("left", errors="ignore").sum())
    new = int(by_change.get("new customer", 0))
    if new == total:
        return Headline(
            "customers_moved", "no earlier refresh", "Changes since the last refresh: {value}."
        )
    moved = int(by_change.drop(["stayed", "new customer", "left"], errors="ignore").sum())
    left = int(by_change.get("left", 0))
    return Headline(
        "customers_moved",
        f"{moved:,}",
        f"Since the last refresh {{value}} of {total:,} customers ({moved / total:.1%}) moved "
        f"to another segment; {new:,} are new and {left:,} left.",
    )


def trust(t: dict[str, Any]) -> list[Headline]:
    chosen = t["selection"][t["selection"]["is_chosen"]].iloc[0]
    overall = t["importance"][(t["importance"]["scope"] == "all")]
    permutation = overall[overall["method"] == "permutation"].sort_values("rank").iloc[0]
    tree = t["fidelity"][(t["fidelity"]["scope"] == "all") & t["fidelity"]["is_chosen"]].iloc[0]
    return [
        Headline(
            "chosen_k",
            str(int(chosen["k"])),
            f"{{value}} segments: silhouette {chosen['silhouette']:.3f}, bootstrap stability "
            f"{chosen['stability_ari_mean']:.2f} ± {chosen['stability_ari_std']:.2f} "
            f"(rule: {chosen['selection_rule']}).",
        ),
        Headline(
            "surrogate_fidelity",
            f"{tree['nested_cv_fidelity']:.1%}",
            f"A decision tree of depth {int(tree['depth'])} ({int(tree['leaves'])} leaves) "
            "reproduces the segment of {value} of customers on held-out folds that took no part "
            "in choosing its depth (nested cross-validation).",
        ),
        Headline(
            "top_feature_importance",
            f"{permutation['importance']:.2f}",
            f"{feature_labels(t).get(permutation['feature'], permutation['feature'])} separates "
            f"the segments most: permutation importance {{value}} ± "
            f"{permutation['importance_std']:.2f}; {permutation['top_feature_note']}.",
        ),
        _changes(t["migrations"]),
        _drift(t["drift"]),
    ]


def _drift(drift: pd.DataFrame) -> Headline:
    """The checks at watch or alert, worst first; or that there was nothing to compare."""
    checks = drift[drift["check_kind"] != "segment"]
    if checks["psi"].isna().all():
        return Headline("drift", "nothing to compare", "Drift since the last refresh: {value}.")
    flagged = checks[checks["level"].isin(["watch", "alert"])].sort_values("psi", ascending=False)
    if flagged.empty:
        return Headline(
            "drift",
            "none",
            f"Drift since the last refresh: {{value}} (every PSI below watch, {len(checks)} "
            "checks).",
        )
    named = "; ".join(f"{r.label}: PSI {r.psi:.2f} ({r.level})" for r in flagged.itertuples())
    return Headline(
        "drift",
        f"{len(flagged)} of {len(checks)}",
        f"Drift since the last refresh: {{value}} checks at watch or above — {named}.",
    )


def _value_headline(t: dict[str, Any], status: str | None) -> list[Headline]:
    if t["rfm_groups"]["customers"].sum() == 0:
        return []
    if status is not None:
        return [Headline("customer_value", "none", f"Customer value: {{value}} ({status}).")]
    groups = t["value_by_group"]
    segments = groups[groups["grouping"] == "segment"]
    settings = t["value_settings"].iloc[0]
    accuracy = t["value_accuracy"]
    better = int(accuracy["model_is_better"].fillna(False).sum())
    total = units.measured(float(segments["total_lifetime_value"].sum()), money_unit(t), 0)
    active = float(segments["expected_active_customers"].sum())
    customers = int(segments["customers"].sum())
    return [
        Headline(
            "customer_value",
            total,
            f"Customer value over the next {int(settings['clv_horizon_days']):,} days: {{value}} "
            f"from {customers:,} customers, of whom {active:,.0f} ({active / customers:.0%}) are "
            f"expected to be still active; on the holdout the models beat a naive baseline on "
            f"{better} of {len(accuracy)} measures.",
        )
    ]


def actions(t: dict[str, Any], value_status: str | None) -> list[Headline]:
    found = []
    for row in t["ab_summary"].itertuples():
        kind = "simulated experiment" if row.source == "simulation" else "experiment"
        found.append(
            Headline(
                f"ab_decision_{row.experiment}",
                str(row.decision),
                f"{kind.capitalize()} {row.experiment} ({row.metric}, {int(row.users):,} users"
                f"{', outcomes simulated' if row.source == 'simulation' else ''}): "
                f"{{value}} — {row.decision_reason}.",
            )
        )
    return found + _value_headline(t, value_status) + _audience_headlines(t["audiences"])


def _audience_headlines(audiences: pd.DataFrame) -> list[Headline]:
    return [
        Headline(
            f"audience_{row.audience}",
            f"{int(row.target_customers):,}",
            f"Audience {row.audience}: {{value}} customers to contact, "
            f"{int(row.holdout_customers):,} held out to measure against "
            f"({int(row.entered):,} entered, {int(row.left_audience):,} left since the last "
            "refresh)" + (": empty, check its condition." if row.customers == 0 else "."),
        )
        for row in audiences.itertuples()
    ]


def rejected(t: dict[str, pd.DataFrame]) -> list[Headline]:
    """What staging made of each source that has rows, who is not segmented, and the checks."""
    found = []
    for key, table, what in (
        ("customers_staged", "reconciliation", "customers"),
        ("lines_staged", "line_reconciliation", "order lines"),
    ):
        counts = t[table].iloc[0]
        if int(counts["raw_rows"]) == 0:
            continue
        found.append(
            Headline(
                key,
                f"{int(counts['staged_rows']):,}",
                f"{{value}} {what} staged from {int(counts['raw_rows']):,} raw rows "
                f"({int(counts['rejected_rows']):,} rejected with reasons, "
                f"{int(counts['collapsed_rows']):,} exact duplicates collapsed).",
            )
        )
    unsegmented = t["unsegmented"]
    if len(unsegmented):
        reasons = "; ".join(f"{r.reason}: {int(r.customers):,}" for r in unsegmented.itertuples())
        found.append(
            Headline(
                "customers_unsegmented",
                f"{int(unsegmented['customers'].sum()):,}",
                f"{{value}} customers are listed but not segmented ({reasons}).",
            )
        )
    checks = t["expectations"]
    failed = int((~checks["success"]).sum())
    found.append(
        Headline(
            "expectations_passed",
            f"{int(checks['success'].sum()):,}",
            f"{{value}} of {len(checks):,} expectations passed in the latest refresh"
            + (f"; {failed:,} did not (all non-blocking)." if failed else "."),
        )
    )
    return found


def story(t: dict[str, Any], value_status: str | None) -> str:
    """The four answers a reader looks for first."""
    return (
        "<h3>Who the segments are</h3>"
        + who(t)
        + "<h3>How far to trust them</h3>"
        + _items(trust(t))
        + "<h3>What to do</h3>"
        + _items(actions(t, value_status))
        + "<h3>What was rejected</h3>"
        + _items(rejected(t))
    )
