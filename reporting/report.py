"""One self-contained HTML report of the published warehouse.

Every number on the page is read from the warehouse, and the statements at the top are generated
from the tables, so the report cannot contradict the data. Figures are embedded as PNG data URIs:
the file opens anywhere, with no network.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.warehouse.atomic_files import write_text_atomically
from engine.warehouse.published import connect_read_only
from reporting import figures

PLOTTED_CUSTOMERS = 50_000
TABLES = {
    # Plots need a picture of the customers, not all 10M of them: a seeded sample above this size.
    "customers": (
        "select * from marts.dim_customers "
        f"using sample reservoir({PLOTTED_CUSTOMERS} rows) repeatable (42) order by customer_id"
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


@dataclass(frozen=True)
class Headline:
    key: str  # data-key on the page, so a test can compare the figure with the warehouse
    value: str
    text: str  # with {value} where the figure goes


def read_tables(warehouse: Path) -> dict[str, Any]:
    with connect_read_only(warehouse) as con:
        tables: dict[str, Any] = {
            name: con.sql(sql).to_arrow_table().to_pandas() for name, sql in TABLES.items()
        }
        tables["expectations"] = con.sql(LATEST_EXPECTATIONS).to_arrow_table().to_pandas()
    return tables


def _staging_headlines(t: dict[str, pd.DataFrame]) -> list[Headline]:
    """What staging made of each source that has rows, and who is not segmented."""
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
    return found


def headlines(t: dict[str, pd.DataFrame]) -> list[Headline]:
    chosen = t["selection"][t["selection"]["is_chosen"]].iloc[0]
    found = [
        *_staging_headlines(t),
        Headline(
            "chosen_k",
            str(int(chosen["k"])),
            f"{{value}} segments: silhouette {chosen['silhouette']:.3f}, bootstrap stability "
            f"{chosen['stability_ari_mean']:.2f} ± {chosen['stability_ari_std']:.2f} "
            f"(rule: {chosen['selection_rule']}).",
        ),
    ]
    overall = t["importance"][(t["importance"]["scope"] == "all")]
    permutation = overall[overall["method"] == "permutation"].sort_values("rank").iloc[0]
    found.append(
        Headline(
            "top_feature_importance",
            f"{permutation['importance']:.2f}",
            f"{figures.label(permutation['feature'], feature_labels(t))} separates the segments "
            "most: "
            f"permutation importance {{value}} ± {permutation['importance_std']:.2f}; "
            f"{permutation['top_feature_note']}.",
        )
    )
    tree = t["fidelity"][(t["fidelity"]["scope"] == "all") & t["fidelity"]["is_chosen"]].iloc[0]
    found.append(
        Headline(
            "surrogate_fidelity",
            f"{tree['nested_cv_fidelity']:.1%}",
            f"A decision tree of depth {int(tree['depth'])} ({int(tree['leaves'])} leaves) "
            "reproduces the segment of {value} of customers on held-out folds that took no part "
            "in choosing its depth (nested cross-validation).",
        )
    )
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


def _surrogate_png(t: dict[str, Any]) -> bytes:
    names = t["segments"].set_index("segment_id")["segment_name"].to_dict()
    return figures.surrogate_tree(t["rules"], names, feature_labels(t))


def _attribute_shares(attributes: pd.DataFrame) -> str:
    if attributes.empty:
        return ""
    columns = ["segment_name", "attribute", "value", "customers", "share", "share_index"]
    return "<h3>Attributes by segment</h3>" + _table(attributes, columns)


def feature_labels(t: dict[str, Any]) -> figures.Labels:
    return dict(zip(t["scaling"]["feature"], t["scaling"]["label"], strict=True))


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
    kind = results["source"].map({"simulation": "simulated", "log": "logged"})
    return results.assign(data=kind)


def _headline_html(headline: Headline) -> str:
    figure = f'<b data-key="{headline.key}">{html.escape(headline.value)}</b>'
    return html.escape(headline.text).replace("{value}", figure)


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


# Column headings a reader understands; any other column reads as its name in words.
HEADINGS = {
    "k": "k",
    "calinski_harabasz": "Calinski–Harabasz",
    "davies_bouldin": "Davies–Bouldin",
    "stability_ari_mean": "stability (ARI)",
    "stability_ari_std": "± SD",
    "is_elbow": "elbow",
    "is_chosen": "chosen",
    "cv_fidelity": "held-out fidelity",
    "nested_cv_fidelity": "nested fidelity",
    "users_control": "users (control)",
    "users_treatment": "users (treatment)",
    "lift_ci_low": "lift CI low",
    "lift_ci_high": "lift CI high",
    "p_value": "p",
    "p_value_holm": "p (Holm)",
    "achieved_power": "power",
    "power_alpha": "at alpha",
    "mde": "MDE",
    "srm_p_value": "SRM p",
    "share_index": "index",
    "segment_name": "segment",
}


def heading(column: str) -> str:
    return HEADINGS.get(column, column.replace("_", " "))


def _cell(value: Any) -> Any:
    """Booleans as a mark a reader scans (✓ or nothing), not True / False."""
    if isinstance(value, bool | np.bool_):
        return "✓" if value else ""
    return value


def _table(frame: pd.DataFrame, columns: list[str] | None = None) -> str:
    shown = (frame[columns] if columns else frame).copy()
    for column in shown.columns:
        if shown[column].dtype == bool or shown[column].dtype == "boolean":
            shown[column] = shown[column].map(_cell).astype(object)
    shown.columns = [heading(c) for c in shown.columns]
    return shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, na_rep="")


def _run_line(runs: pd.DataFrame) -> str:
    """Which run built the data on the page, and when."""
    built = runs[runs["status"] == "success"].sort_values("started_at").iloc[-1]
    finished = pd.Timestamp(built["finished_at"]).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<p class='run'>Built by run <b data-key='run_id'>{html.escape(str(built['run_id']))}"
        f"</b> on {finished}.</p>"
    )


def _experiments_section(t: dict[str, Any], experiments: list[str]) -> str:
    if not experiments:
        return "<p>No experiment configured (vars.experiments) or logged (experiment_logs).</p>"
    return (
        "".join(_image(figures.forest_plot(t["ab"], e), f"forest plot {e}") for e in experiments)
        + _table(
            _with_data_kind(t["ab"]),
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
        )
        + "<h3>Power and sample ratio</h3>"
        + _table(
            t["ab"],
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


def purchases_note(purchases: pd.DataFrame) -> str:
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
        f"{p['unmatched_return_value']:,.2f} {left}. {p['non_product_lines']:,} lines of "
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
    return f"<p>{html.escape(line)}</p>" + (_table(failed, columns) if len(failed) else "")


def _rfm_section(t: dict[str, Any]) -> str:
    """The classic RFM groups, and how they spread over the k-means segments."""
    crosstab = rfm_crosstab(t["rfm_crosstab"], t["rfm_groups"])
    return (
        f"<p>{html.escape(purchases_note(t['purchases']))}</p>"
        "<p>Recency (R) and frequency (F) scores 1-5 (5: the most recent, most frequent fifth) "
        "name each customer's group, as in marts.rfm_scores.</p>"
        + _table(t["rfm_groups"])
        + "<h3>RFM group × segment (customers)</h3>"
        + _table(crosstab)
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


def _value_accuracy(t: dict[str, Any]) -> str:
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
        + _table(accuracy, ["measure", "model", "baseline", "model_is_better"])
        + _image(
            figures.holdout_tracking(t["value_tracking"], settings["period"]), "holdout tracking"
        )
    )


def _value_section(t: dict[str, Any]) -> str:
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
        + _value_accuracy(t)
        + "<h3>Who is still active</h3>"
        + _image(
            figures.alive_heatmap(t["customer_value"], settings["period"]), "probability alive"
        )
        + "<p>A customer without a repeat purchase reads as active (probability 1): BG/NBD's "
        "customers can only drop out right after a purchase.</p>"
        + f"<h3>Value over {int(settings['clv_horizon_days'])} days by segment and RFM group</h3>"
        + _table(value_by_group(t["value_by_group"]))
    )


def value_by_group(groups: pd.DataFrame) -> pd.DataFrame:
    """Segments first, then RFM groups, figures rounded the way money and head counts read."""
    shown = groups.sort_values("grouping", key=lambda g: g != "segment", kind="stable")
    return pd.DataFrame(
        {
            "group": np.where(shown["grouping"] == "segment", "segment", "RFM group"),
            "name": shown["group_name"],
            "customers": shown["customers"].map("{:,}".format),
            "expected still active": shown["expected_active_customers"].map("{:,.0f}".format),
            "total lifetime value": shown["total_lifetime_value"].map("{:,.0f}".format),
            "mean lifetime value": shown["mean_lifetime_value"].map("{:,.2f}".format),
        }
    )


def render(t: dict[str, Any]) -> str:
    features = t["scaling"]["feature"].tolist()
    sections: list[tuple[str, str]] = []
    items = "".join(f"<li>{_headline_html(h)}</li>" for h in headlines(t))
    sections.append(("In short", f"<ul class='headlines'>{items}</ul>"))
    rejected = t["eda"][t["eda"]["section"].isin(["rejected", "rejected order lines"])]
    sections.append(
        (
            "The data",
            _image(
                figures.distributions(
                    t["customers"],
                    features,
                    feature_labels(t),
                    dict(zip(t["scaling"]["feature"], t["scaling"]["transform"], strict=True)),
                ),
                "feature distributions",
            )
            + "<h3>Rejected rows by reason</h3>"
            + (
                _table(rejected.astype({"value": "int64"}), ["section", "subject", "value"])
                if len(rejected)
                else "<p>None.</p>"
            ),
        )
    )
    sections.append(
        (
            "How many segments",
            _image(figures.k_selection(t["selection"]), "k selection curves")
            + _table(
                t["selection"],
                [
                    "k",
                    "inertia",
                    "silhouette",
                    "calinski_harabasz",
                    "davies_bouldin",
                    "stability_ari_mean",
                    "stability_ari_std",
                    "is_elbow",
                    "is_chosen",
                ],
            ),
        )
    )
    sections.append(
        (
            "The segments",
            _image(
                figures.segment_scatter(t["customers"], *most_separating(t, 2), feature_labels(t)),
                "segment scatter",
            )
            + f"<p>{html.escape(scatter_caption(t))}</p>"
            + _table(
                t["segments"],
                [
                    "segment_id",
                    "segment_name",
                    "customers",
                    "share",
                    *[f"{f}_mean" for f in features],
                    *[f"{f}_index" for f in features],
                    "mean_silhouette",
                ],
            )
            + _attribute_shares(t["attributes"]),
        )
    )
    sections.append(
        (
            "Why: the surrogate tree",
            _image(_surrogate_png(t), "surrogate decision tree")
            + _table(
                t["fidelity"],
                [
                    "depth",
                    "scope",
                    "segment_name",
                    "customers",
                    "train_fidelity",
                    "cv_fidelity",
                    "leaves",
                    "is_chosen",
                ],
            )
            + _table(t["rules"], ["segment_name", "rule", "support", "purity", "segment_coverage"]),
        )
    )
    sections.append(
        (
            "What drives the segments",
            _image(figures.importances(t["importance"], feature_labels(t)), "feature importances")
            + _table(
                t["importance"][t["importance"]["scope"] == "all"],
                ["method", "feature", "importance", "importance_std", "rank", "oob_score"],
            ),
        )
    )
    if t["rfm_groups"]["customers"].sum() > 0:
        sections.append(("RFM groups", _rfm_section(t)))
        sections.append(("Customer value", _value_section(t)))
    experiments = sorted(t["ab"]["experiment"].unique())
    sections.append(("Experiments", _experiments_section(t, experiments)))
    sections.append(("Expectations (latest refresh)", expectations_section(t["expectations"])))
    sections.append(
        (
            "Run history",
            _image(figures.run_history(t["runs"]), "run history")
            + _table(
                t["runs"],
                [
                    "run_id",
                    "started_at",
                    "status",
                    "models_built",
                    "rows_rejected",
                    "expectations_passed",
                    "expectations_warned",
                    "seconds",
                ],
            ),
        )
    )
    body = "".join(
        f"<section><h2>{html.escape(title)}</h2>{content}</section>" for title, content in sections
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Customer segments report</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "img{max-width:100%;display:block;margin:1em 0}"
        "table{border-collapse:collapse;font-size:12px;margin:1em 0}"
        "td,th{padding:3px 6px;border-bottom:1px solid #ddd;text-align:right}"
        "th{font-weight:600;vertical-align:bottom}"
        ".headlines li{margin:.4em 0}.run{color:#555}"
        "</style></head><body><h1>Customer segments</h1>"
        f"{_run_line(t['runs'])}{body}</body></html>"
    )


def write_report(warehouse: Path, destination: Path) -> Path:
    """Render the report from the published warehouse and write it atomically."""
    page = render(read_tables(warehouse))
    return write_text_atomically(destination, page)
