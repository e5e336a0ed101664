"""One self-contained HTML report of the published warehouse.

Every number on the page is read from the warehouse, and the statements at the top are generated
from the tables, so the report cannot contradict the data. Figures are embedded as PNG data URIs:
the file opens anywhere, with no network.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.project import units
from engine.refresh.fit_workers import FitWorkers, in_this_process
from engine.warehouse.atomic_files import write_text_atomically
from engine.warehouse.published import connect_read_only
from reporting import figures, story, tables
from reporting.drawings import Drawings, Parallel
from reporting.story import feature_labels

PLOTTED_CUSTOMERS = 50_000
TABLES = {
    # Plots need a picture of the customers, not all 10M of them: a seeded sample above this size,
    # drawn by a hash of the id, since the table is stored in no particular order.
    "customers": (
        "select * from (select * from marts.dim_customers order by hash(customer_id, 42), "
        f"customer_id limit {PLOTTED_CUSTOMERS}) as sampled order by customer_id"
    ),
    "segments": "select * from marts.dim_segments order by segment_id",
    "attributes": (
        "select * from marts.dim_segment_attributes order by segment_id, attribute, value"
    ),
    "reconciliation": "select * from staging.stg_customers_reconciliation",
    "line_reconciliation": "select * from staging.stg_transactions_reconciliation",
    "unsegmented": (
        "select regexp_replace(unsegmented_reason, ' -?[0-9][0-9.e+-]* cannot', ' … cannot') "
        "as reason, "
        "count(*) as customers from intermediate.int_customer_profiles "
        "where not is_segmented group by reason order by customers desc, reason"
    ),
    "rfm_groups": (
        "select g.rfm_group, g.recency_min || '-' || g.recency_max as recency_scores, "
        "g.frequency_min || '-' || g.frequency_max as frequency_scores, count(s.customer_id) "
        "as customers, avg(s.recency_days) as mean_recency_days, avg(s.frequency) as "
        "mean_frequency, avg(s.monetary) as mean_monetary from config.rfm_groups g "
        "left join marts.rfm_scores s on s.rfm_group = g.rfm_group "
        "group by all order by any_value(g.position)"
    ),
    "rfm_crosstab": "select * from marts.rfm_segment_crosstab",
    "purchases": (
        "select coalesce(sum(orders), 0) as orders, coalesce(sum(purchase_days), 0) as "
        "purchase_days, coalesce(sum(cancelled_orders), 0) as cancelled_orders, "
        "count(*) filter (where not has_purchase) as customers_without_purchase, "
        "coalesce(sum(unmatched_return_lines), 0) as unmatched_return_lines, "
        "count(*) filter (where unmatched_return_lines > 0) as unmatched_return_customers, "
        "coalesce(sum(unmatched_return_value), 0) as unmatched_return_value, "
        "coalesce(sum(non_product_lines), 0) as non_product_lines, "
        "(select frequency_counts from config.order_settings) as frequency_counts, "
        "(select subtracts_unmatched_returns from config.order_settings) as subtracts "
        "from intermediate.int_customer_orders"
    ),
    "value_fits": "select * from ml.value_model_fits order by stage, model, parameter",
    "value_settings": "select * from config.value_settings",
    "drift_settings": "select * from config.drift_settings",
    "value_accuracy": "select * from marts.value_holdout_accuracy order by position",
    "value_tracking": "select * from marts.value_holdout_tracking order by period",
    "value_by_group": "select * from marts.customer_value_by_group",
    "customer_value": (
        "select repeat_purchases, recency_period, age_period, probability_alive "
        "from marts.customer_value where probability_alive is not null"
    ),
    "eda": "select * from marts.eda_profile order by section_order, subject, statistic_order",
    "selection": "select * from ml.segment_model_selection order by k",
    "fidelity": "select * from ml.surrogate_fidelity order by depth, segment_id",
    "rules": "select * from ml.surrogate_rules order by segment_id, support desc",
    "importance": "select * from ml.feature_importance",
    "ab": "select * from ml.ab_segment_results order by experiment, scope, segment_id",
    "ab_summary": "select * from marts.ab_experiment_summary order by experiment",
    "scaling": "select * from intermediate.int_feature_scaling order by position",
    "migrations": "select change, customers from ml.segment_migrations",
    "drift": "select * from ml.drift",
    "audiences": "select * from marts.audience_summary order by audience",
    "drift_distributions": (
        "select * from ml.drift_distributions order by check_kind, subject, bin"
    ),
    "runs": "select * from meta.runs order by started_at",
}
LATEST_EXPECTATIONS = """
    select table_name, expectation_type, column_name, severity, success, observed_value,
           unexpected_count
    from meta.expectation_results
    where run_id = (
        select run_id from meta.runs where status = 'success' order by started_at desc limit 1
    )
    order by success, table_name, expectation_type
"""


def read_tables(warehouse: Path) -> dict[str, Any]:
    with connect_read_only(warehouse) as con:
        found: dict[str, Any] = {
            name: con.sql(sql).to_arrow_table().to_pandas() for name, sql in TABLES.items()
        }
        found["expectations"] = con.sql(LATEST_EXPECTATIONS).to_arrow_table().to_pandas()
    return found


def _surrogate_image(t: dict[str, Any], drawings: Drawings) -> str:
    names = t["segments"].set_index("segment_id")["segment_name"].to_dict()
    return drawings.image(
        figures.surrogate_tree,
        t["rules"],
        names,
        feature_labels(t),
        story.feature_units(t),
        alt="surrogate decision tree",
    )


def _attribute_shares(attributes: pd.DataFrame) -> str:
    if attributes.empty:
        return ""
    columns = ["segment_name", "attribute", "value", "customers", "share", "share_index"]
    return "<h3>Attributes by segment</h3>" + tables.table(attributes, columns)


def most_separating(t: dict[str, Any], count: int) -> list[str]:
    """The features that separate the segments most, by published permutation importance."""
    importance = t["importance"]
    overall = importance[(importance["scope"] == "all") & (importance["method"] == "permutation")]
    ranked = overall.sort_values(["rank", "feature"])["feature"].tolist()
    return ranked[:count]


def scatter_caption(t: dict[str, Any]) -> str:
    """What the scatter shows, and which features it cannot: segments that differ only on those
    overlap in it."""
    labels = feature_labels(t)
    shown = most_separating(t, 2)
    hidden = [f for f in t["scaling"]["feature"] if f not in shown]
    said = " against ".join(figures.label(f, labels) for f in reversed(shown))
    if not hidden:
        return f"Customers by {said}, coloured by segment."
    missing = ", ".join(figures.label(f, labels) for f in hidden)
    return (
        f"Customers by {said}, the two features that separate the segments most, coloured by "
        f"segment. Not shown: {missing}; segments that differ on it overlap here."
    )


def _with_data_kind(results: pd.DataFrame) -> pd.DataFrame:
    """Says in every row whether its outcomes were simulated or logged."""
    kind = results["source"].map(
        {"simulation": "simulated", "log": "logged", "audience": "campaign (order lines)"}
    )
    return results.assign(data=kind)


def _run_line(runs: pd.DataFrame) -> str:
    """Which run built the data on the page, and when."""
    built = runs[runs["status"] == "success"].sort_values("started_at").iloc[-1]
    finished = pd.Timestamp(built["finished_at"]).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<p class='run'>Built by run <b data-key='run_id'>{html.escape(str(built['run_id']))}"
        f"</b> on {finished}.</p>"
    )


LIFT_COLUMNS = ("absolute_lift", "lift_ci_low", "lift_ci_high", "mde")


def lifts_in_units(results: pd.DataFrame) -> pd.DataFrame:
    """Each lift written in its experiment's unit: a conversion's in percentage points, an
    amount's in its configured unit, signed."""
    shown = results.copy()
    for column in LIFT_COLUMNS:
        shown[column] = [
            tables.lift(value, unit)
            for value, unit in zip(shown[column], shown["outcome_unit"].fillna(""), strict=True)
        ]
    return shown


def _experiments_section(t: dict[str, Any], experiments: list[str], drawings: Drawings) -> str:
    if not experiments:
        return "<p>No experiment configured (vars.experiments) or logged (experiment_logs).</p>"
    results = lifts_in_units(_with_data_kind(t["ab"]))
    return (
        "".join(
            drawings.image(figures.forest_plot, t["ab"], e, alt=f"forest plot {e}")
            for e in experiments
        )
        + "<p>Lifts are treatment minus control: a conversion's in percentage points (pp), an "
        "amount's in its unit (vars.experiments.&lt;name&gt;.unit).</p>"
        + tables.table(
            results,
            [
                "experiment",
                "data",
                "segment_name",
                "decision",
                "users_control",
                "users_treatment",
                "absolute_lift",
                "lift_ci_low",
                "lift_ci_high",
                "p_value",
                "p_value_holm",
            ],
            headings={"absolute_lift": "lift"},
        )
        + "<h3>Power and sample ratio</h3>"
        + tables.table(
            results,
            [
                "experiment",
                "segment_name",
                "achieved_power",
                "power_alpha",
                "mde",
                "users_needed",
                "srm_p_value",
            ],
        )
    )


def rfm_crosstab(pairs: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """Customers per RFM group (rows, in the groups' order) and segment (columns, by segment id,
    the customers not segmented last)."""
    crosstab = pairs.pivot_table(
        index="rfm_group", columns="segment_name", values="customers", aggfunc="sum", fill_value=0
    )
    by_id = pairs.sort_values("segment_id", na_position="last")["segment_name"].drop_duplicates()
    crosstab = crosstab.reindex(index=groups["rfm_group"], columns=by_id).fillna(0).astype(int)
    return crosstab.reset_index().rename(columns={"rfm_group": "RFM group"})


def purchases_note(purchases: pd.DataFrame, money: str = "") -> str:
    """What the order lines count as purchases, in one paragraph of the warehouse's figures."""
    p = purchases.iloc[0]
    left = "subtracted anyway" if p["subtracts"] else "left out of monetary"
    return (
        f"Frequency counts {p['frequency_counts'].replace('_', ' ')}: {p['orders']:,} orders "
        f"on {p['purchase_days']:,} purchase days. {p['cancelled_orders']:,} orders were "
        f"cancelled in full and count as no purchase; {p['customers_without_purchase']:,} "
        f"customers have no purchase order and are not segmented. "
        f"{p['unmatched_return_lines']:,} return lines of {p['unmatched_return_customers']:,} "
        f"customers return more than the data shows them buying (bought before it begins): "
        f"{units.measured(float(p['unmatched_return_value']), money, 2)} {left}. "
        f"{p['non_product_lines']:,} lines of "
        "non-product codes (transactions.non_product_codes) are neither purchases nor returns."
    )


def expectations_section(checks: pd.DataFrame) -> str:
    """One line for all of them, and a table of only those that did not pass: the full list is
    in meta.expectation_results and the lineage docs."""
    failed = checks[~checks["success"].astype(bool)]
    warned = int((failed["severity"] == "warning").sum())
    line = (
        f"{len(checks):,} expectations on {checks['table_name'].nunique():,} tables: "
        f"{len(checks) - len(failed):,} passed, {warned:,} warned, {len(failed) - warned:,} "
        "failed. Every one is listed in meta.expectation_results and in the lineage docs "
        "(python pipeline.py docs)."
    )
    columns = ["table_name", "column_name", "expectation_type", "severity", "observed_value"]
    return f"<p>{html.escape(line)}</p>" + (tables.table(failed, columns) if len(failed) else "")


def _rfm_section(t: dict[str, Any]) -> str:
    """The classic RFM groups, and how they spread over the k-means segments."""
    crosstab = rfm_crosstab(t["rfm_crosstab"], t["rfm_groups"])
    return (
        f"<p>{html.escape(purchases_note(t['purchases'], story.money_unit(t)))}</p>"
        "<p>Recency (R) and frequency (F) scores 1-5 (5: the most recent, most frequent fifth) "
        "name each customer's group, as in marts.rfm_scores.</p>"
        + tables.table(
            t["rfm_groups"],
            formats={
                "mean_recency_days": tables.in_unit("days"),
                "mean_monetary": tables.in_unit(story.money_unit(t)),
            },
        )
        + "<h3>RFM group × segment (customers)</h3>"
        + tables.table(crosstab)
    )


# Gamma-Gamma assumes spend per purchase does not follow how often a customer buys; a
# correlation past this between the two makes its values suspect.
VALUE_CORRELATION_WARNING = 0.3


def value_status(fits: pd.DataFrame) -> str | None:
    """None when both full fits are usable, else why the report shows no customer value."""
    full = fits[fits["stage"] == "full"].drop_duplicates("model")
    failed = full[full["status"] != "fitted"]
    if failed.empty:
        return None
    return "; ".join(f"{m}: {r}" for m, r in zip(failed["model"], failed["reason"], strict=True))


def _value_accuracy(t: dict[str, Any], drawings: Drawings) -> str:
    accuracy = t["value_accuracy"]
    if accuracy["model"].isna().all():
        calibration = t["value_fits"][t["value_fits"]["stage"] == "calibration"]
        why = "; ".join(calibration["reason"].dropna().unique()) or "no calibration customer"
        return f"<p>No holdout comparison: {html.escape(why)}.</p>"
    settings = t["value_settings"].iloc[0]
    calibration_end = t["value_fits"]["calibration_end"].iloc[0]
    better = int(accuracy["model_is_better"].sum())
    verdict = (
        "The models beat the naive baseline on every measure."
        if better == len(accuracy)
        else f"The models beat the naive baseline on {better} of {len(accuracy)} measures: "
        "where they do not, prefer the simpler reading."
    )
    return (
        f"<p>Fitted on purchases up to {pd.Timestamp(calibration_end):%Y-%m-%d} and "
        f"checked on the {len(t['value_tracking'])} {settings['period']}s after it. {verdict}</p>"
        + tables.table(accuracy, ["measure", "model", "baseline", "model_is_better"])
        + drawings.image(
            figures.holdout_tracking,
            t["value_tracking"],
            settings["period"],
            alt="holdout tracking",
        )
    )


def _value_section(t: dict[str, Any], drawings: Drawings) -> str:
    """Customer value: whether the models earn their place, who is still active, and the value
    of each segment and RFM group."""
    why = value_status(t["value_fits"])
    if why is not None:
        return f"<p>No customer value this refresh: {html.escape(why)}.</p>"
    gamma = t["value_fits"][
        (t["value_fits"]["stage"] == "full") & (t["value_fits"]["model"] == "gamma_gamma")
    ]
    correlation = float(gamma["frequency_value_correlation"].iloc[0])
    warning = (
        f"<p><b>Caution:</b> spend per purchase correlates with purchase frequency "
        f"({correlation:.2f}); Gamma-Gamma assumes they are independent, so expected values "
        "and lifetime values lean on a broken assumption.</p>"
        if abs(correlation) > VALUE_CORRELATION_WARNING
        else ""
    )
    full = t["value_fits"][t["value_fits"]["stage"] == "full"].drop_duplicates("model")
    notes = "".join(
        f"<p><b>Note ({html.escape(model)}):</b> {html.escape(reason)}.</p>"
        for model, reason in zip(full["model"], full["reason"], strict=True)
        if isinstance(reason, str)
    )
    settings = t["value_settings"].iloc[0]
    return (
        "<p>BG/NBD predicts each customer's purchases and whether they are still active; "
        "Gamma-Gamma the value of a purchase (marts.customer_value).</p>"
        + warning
        + notes
        + "<h3>Holdout: do the models earn their place?</h3>"
        + _value_accuracy(t, drawings)
        + "<h3>Who is still active</h3>"
        + drawings.image(
            figures.alive_heatmap,
            t["customer_value"],
            settings["period"],
            alt="probability alive",
        )
        + "<p>A customer without a repeat purchase reads as active (probability 1): BG/NBD's "
        "customers can only drop out right after a purchase.</p>"
        + f"<h3>Value over {int(settings['clv_horizon_days'])} days by segment and RFM group</h3>"
        + tables.table(value_by_group(t["value_by_group"], story.money_unit(t)))
    )


def value_by_group(groups: pd.DataFrame, money: str = "") -> pd.DataFrame:
    """Segments first, then RFM groups, figures rounded the way money and head counts read."""
    shown = groups.sort_values("grouping", key=lambda g: g != "segment", kind="stable")
    return pd.DataFrame(
        {
            "group": np.where(shown["grouping"] == "segment", "segment", "RFM group"),
            "name": shown["group_name"],
            "customers": shown["customers"].map("{:,}".format),
            "expected still active": shown["expected_active_customers"].map("{:,.0f}".format),
            "total lifetime value": shown["total_lifetime_value"].map(
                lambda v: units.measured(v, money, 0)
            ),
            "mean lifetime value": shown["mean_lifetime_value"].map(
                lambda v: units.measured(v, money, 2)
            ),
        }
    )


def _data_section(t: dict[str, Any], drawings: Drawings) -> str:
    features = t["scaling"]["feature"].tolist()
    rejected = t["eda"][t["eda"]["section"].isin(["rejected", "rejected order lines"])]
    transforms = dict(zip(t["scaling"]["feature"], t["scaling"]["transform"], strict=True))
    return (
        drawings.image(
            figures.distributions,
            t["customers"],
            features,
            feature_labels(t),
            transforms,
            alt="feature distributions",
        )
        + "<h3>Rejected rows by reason</h3>"
        + (
            tables.table(rejected.astype({"value": "int64"}), ["section", "subject", "value"])
            if len(rejected)
            else "<p>None.</p>"
        )
    )


def _selection_section(t: dict[str, Any], drawings: Drawings) -> str:
    columns = [
        "k",
        "inertia",
        "silhouette",
        "calinski_harabasz",
        "davies_bouldin",
        "stability_ari_mean",
        "stability_ari_std",
        "is_elbow",
        "is_chosen",
    ]
    return drawings.image(
        figures.k_selection, t["selection"], alt="k selection curves"
    ) + tables.table(t["selection"], columns)


def _segments_section(t: dict[str, Any], drawings: Drawings) -> str:
    """Every segment's means in the features' units, and its index (100: everyone's mean)."""
    features, labels = t["scaling"]["feature"].tolist(), feature_labels(t)
    found_units = story.feature_units(t)
    means = {f"{f}_mean": tables.in_unit(found_units[f]) for f in features}
    headings = {f"{f}_mean": f"{labels[f]}: mean" for f in features} | {
        f"{f}_index": f"{labels[f]}: index" for f in features
    }
    columns = [
        "segment_id",
        "segment_name",
        "customers",
        "share",
        *means,
        *[f"{f}_index" for f in features],
        "mean_silhouette",
    ]
    return (
        drawings.image(
            figures.segment_scatter,
            t["customers"],
            *most_separating(t, 2),
            labels,
            alt="segment scatter",
        )
        + f"<p>{html.escape(scatter_caption(t))}</p>"
        + tables.table(t["segments"], columns, formats=means, headings=headings)
        + _attribute_shares(t["attributes"])
    )


def _surrogate_section(t: dict[str, Any], drawings: Drawings) -> str:
    fidelity = "depth scope segment_name customers train_fidelity cv_fidelity leaves is_chosen"
    fidelity_columns = fidelity.split()
    rules = ["segment_name", "rule", "support", "purity", "segment_coverage"]
    return (
        _surrogate_image(t, drawings)
        + tables.table(t["fidelity"], fidelity_columns)
        + tables.table(t["rules"], rules)
    )


def _importance_section(t: dict[str, Any], drawings: Drawings) -> str:
    overall = t["importance"][t["importance"]["scope"] == "all"]
    return drawings.image(
        figures.importances, t["importance"], feature_labels(t), alt="feature importances"
    ) + tables.table(
        overall.assign(feature=overall["feature"].map(feature_labels(t))),
        ["method", "feature", "importance", "importance_std", "rank", "oob_score"],
    )


def _history_section(t: dict[str, Any], drawings: Drawings) -> str:
    columns = [
        "run_id",
        "started_at",
        "status",
        "models_built",
        "rows_rejected",
        "expectations_passed",
        "expectations_warned",
        "seconds",
    ]
    return drawings.image(figures.run_history, t["runs"], alt="run history") + tables.table(
        t["runs"], columns
    )


def _drift_section(t: dict[str, Any], drawings: Drawings) -> str:
    """Each feature and attribute before and now, and each segment's share and movement."""
    drift = t["drift"]
    checks = drift[drift["check_kind"] != "segment"]
    segments = drift[drift["check_kind"] == "segment"]
    if checks["psi"].isna().all():
        levels = ", ".join(sorted(set(checks["level"].dropna())))
        return f"<p>Nothing to compare: {html.escape(levels or 'no checks')}.</p>"
    settings = t["drift_settings"].iloc[0]
    said = (
        f"PSI over the last refresh's quantile bins: from {settings['watch']:g} worth a look, "
        f"from {settings['alert']:g} an alert (drift.watch, drift.alert)."
    )
    return (
        f"<p>{html.escape(said)} Every refresh's figures are in ml.drift_history.</p>"
        + drawings.image(
            figures.drift_panels, t["drift_distributions"], drift, alt="drift before and now"
        )
        + tables.table(
            checks,
            ["label", "check_kind", "psi", "ks_statistic", "bins", "level", "action"],
            headings={"check_kind": "kind", "psi": "PSI", "ks_statistic": "KS"},
        )
        + tables.table(
            segments,
            ["label", "share_before", "share_now", "moved_share", "centroid_shift"],
            formats={c: tables.percent for c in ("share_before", "share_now", "moved_share")},
            headings={"label": "segment", "centroid_shift": "centroid shift (scaled)"},
        )
    )


def _audiences_section(audiences: pd.DataFrame) -> str:
    columns = ["audience", "condition", "customers", "target_customers", "holdout_customers",
               "holdout_share", "entered", "left_audience"]  # fmt: skip
    return (
        "<p>The target customers of each audience are what <code>python pipeline.py export "
        "--audiences</code> writes; the holdout stays out of the file, the same customers "
        "every refresh (marts.audience_members).</p>"
        + tables.table(
            audiences,
            columns,
            formats={"holdout_share": tables.percent},
            headings={
                "target_customers": "target",
                "holdout_customers": "holdout",
                "left_audience": "left",
            },
        )
    )


def detail_sections(t: dict[str, Any], drawings: Drawings) -> list[tuple[str, str]]:
    sections = [
        ("The data", _data_section(t, drawings)),
        ("How many segments", _selection_section(t, drawings)),
        ("The segments", _segments_section(t, drawings)),
        ("Why: the surrogate tree", _surrogate_section(t, drawings)),
        ("What drives the segments", _importance_section(t, drawings)),
        ("Drift since the last refresh", _drift_section(t, drawings)),
    ]
    if len(t["audiences"]):
        sections.append(("Audiences", _audiences_section(t["audiences"])))
    if t["rfm_groups"]["customers"].sum() > 0:
        sections.append(("RFM groups", _rfm_section(t)))
        sections.append(("Customer value", _value_section(t, drawings)))
    experiments = sorted(t["ab"]["experiment"].unique())
    sections.append(("Experiments", _experiments_section(t, experiments, drawings)))
    sections.append(("Expectations (latest refresh)", expectations_section(t["expectations"])))
    sections.append(("Run history", _history_section(t, drawings)))
    return sections


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 12px;"
    "color:#222;line-height:1.4;overflow-wrap:anywhere}"
    "img{max-width:100%;height:auto;display:block;margin:1em 0}"
    ".scroll{overflow-x:auto;max-width:100%;margin:1em 0}"
    "table{border-collapse:collapse;font-size:12px}"
    "td,th{padding:3px 6px;border-bottom:1px solid #ddd;text-align:right;"
    "overflow-wrap:normal}"
    "th{font-weight:600;vertical-align:bottom}.text{text-align:left}"
    "details{border-top:1px solid #ddd;padding:.2em 0}"
    "summary{cursor:pointer}summary h2{display:inline;font-size:1.3em}"
    ".headlines li{margin:.4em 0}.run{color:#555}"
)


def render(t: dict[str, Any], parallel: Parallel = in_this_process) -> str:
    """The story first, open; the detail after it, one collapsible section each. ``parallel``
    draws the figures (in this process by default)."""
    status = value_status(t["value_fits"]) if len(t["value_fits"]) else None
    drawings = Drawings()
    detail = "".join(
        f"<details><summary><h2>{html.escape(title)}</h2></summary>{content}</details>"
        for title, content in detail_sections(t, drawings)
    )
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Customer segments report</title><style>{STYLE}</style></head><body>"
        f"<h1>Customer segments</h1>{_run_line(t['runs'])}"
        f"<section><h2>In short</h2>{story.story(t, status)}</section>"
        f"<h2>In detail</h2>{detail}</body></html>"
    )
    return drawings.filled(page, parallel)


def write_report(warehouse: Path, destination: Path, workers: int = 1) -> Path:
    """Render the report from the published warehouse and write it atomically; the figures are
    drawn by up to ``workers`` forked processes (warehouse.fit_workers)."""
    drawing = FitWorkers(workers)
    try:
        page = render(read_tables(warehouse), drawing.map)
    finally:
        drawing.close()
    return write_text_atomically(destination, page)
