"""What each experiment shows, per segment and overall, with the checks a trustworthy test needs.

One row per experiment x segment plus an "all" row: users and mean (or rate) per arm; absolute and
relative lift with intervals; the p-value; a CUPED-adjusted estimate with its interval and the
variance reduction; p-values adjusted across the experiment's segments (Holm, Benjamini-Hochberg);
a sample-ratio-mismatch test; achieved power, minimum detectable effect and the size needed;
Cochran's Q for heterogeneity across segments; and a decision with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from python_models import _ab_stats as ab
from python_models._experiments import Experiment, configured, for_logged, with_audience_split
from python_models._relations import distinct, frame, where

ALL = "all"
# What ab_assignments' source says the outcomes are; hashed arms are simulated.
SOURCES = {("log",): "log", ("audience",): "audience"}


COLUMNS = {
    "experiment": "The experiment",
    "scope": "all (every user) or segment",
    "segment_id": "The segment, for scope segment",
    "segment_name": "The segment's name, or all",
    "metric": "conversion (a rate) or amount (a mean)",
    "outcome_unit": "share for a conversion (lifts are differences of shares, read as "
    "percentage points); for an amount its unit (vars.experiments.<name>.unit), or empty",
    "source": "simulation, log, or audience (a campaign read back from the order lines)",
    "users_control": "Users in control",
    "users_treatment": "Users in treatment",
    "mean_control": "Mean outcome (or rate) in control",
    "mean_treatment": "Mean outcome (or rate) in treatment",
    "srm_p_value": "Sample-ratio mismatch: chi-square p-value of the split against treatment_share",
    "srm_flag": "srm_p_value below 0.001: the split is broken and the result invalid",
    "test": (
        "The test used: welch_t, two_proportion_z or fisher_exact (a small cell), or too few users"
    ),
    "absolute_lift": "Treatment minus control (rate points or amount)",
    "lift_se": "Standard error of the lift",
    "lift_ci_low": "Lower bound of the lift's confidence interval at alpha",
    "lift_ci_high": "Upper bound of the lift's confidence interval at alpha",
    "relative_lift": "Lift as a share of the control mean",
    "relative_ci_low": "Lower bound of the relative lift's interval (MOVER-R from Wilson "
    "intervals for a conversion, the delta method for an amount)",
    "relative_ci_high": "Upper bound of the relative lift's interval (as relative_ci_low)",
    "p_value": "The test's two-sided p-value",
    "decision_alpha": (
        "The alpha the row is judged at: alpha, or alpha / segments for Holm's strictest step"
    ),
    "decision_ci_high": (
        "Upper bound of the lift's interval at decision_alpha (rules out the planned effect?)"
    ),
    "cuped_lift": "Lift adjusted for the pre-period value (CUPED)",
    "cuped_ci_low": "Lower bound of the CUPED lift's interval",
    "cuped_ci_high": "Upper bound of the CUPED lift's interval",
    "cuped_p_value": "Welch p-value of the CUPED-adjusted outcomes",
    "variance_reduction": "Share of outcome variance CUPED removed",
    "achieved_power": "Power to detect the planned effect with these users, at power_alpha",
    "power_alpha": "The alpha power, MDE and users needed are computed at, in words",
    "power_method": "How power was computed: normal approximation or simulated Fisher draws",
    "mde": "Minimum detectable effect at the configured power with these users",
    "users_needed": "Users (both arms) needed for the configured power at the planned effect",
    "assigned_users": "Users assigned to the experiment in the scope",
    "true_effect": "For simulations: the users-weighted effect the outcomes were drawn with",
    "p_value_holm": "p-value adjusted across the experiment's segments (Holm)",
    "p_value_bh": "p-value adjusted across the experiment's segments (Benjamini-Hochberg)",
    "alpha": "The experiment's significance level",
    "planned_effect": "The effect the experiment was planned to detect (expected_effect)",
    "heterogeneity_q": "Cochran's Q across the segments' lifts",
    "heterogeneity_p_value": "Cochran's Q p-value: do the segments' effects differ?",
    "decision": "ship, don't ship, inconclusive, or invalid (sample-ratio mismatch)",
    "decision_reason": "Why, in words (the pre-registered rule)",
    "ci_contains_estimate": "Check: the interval contains the lift",
    "users_total": "users_control + users_treatment",
}


@dataclass(frozen=True)
class Arms:
    """One group's users as arrays: which arm each is in, their outcome and pre-period value.

    Arrays, not sub-frames: an experiment over every customer is millions of rows."""

    in_control: np.ndarray
    in_treatment: np.ndarray
    outcome: np.ndarray
    pre_period_value: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Arms:
        # Compared as Arrow strings: arm.to_numpy() would make a Python string per customer.
        return cls(
            (frame["arm"] == "control").to_numpy(dtype=bool),
            (frame["arm"] == "treatment").to_numpy(dtype=bool),
            frame["outcome"].to_numpy(dtype=np.float64),
            frame["pre_period_value"].to_numpy(dtype=np.float64),
        )

    def take(self, positions: np.ndarray) -> Arms:
        return Arms(
            self.in_control[positions],
            self.in_treatment[positions],
            self.outcome[positions],
            self.pre_period_value[positions],
        )


def analyse(
    frame: pd.DataFrame, experiment: Experiment, family: int = 1, seed: int = 0
) -> dict[str, Any]:
    """Every figure of one group (a segment, or all) of one experiment: ``analyse_arms``."""
    return analyse_arms(Arms.of(frame), experiment, family, seed)


def analyse_arms(
    arms: Arms, experiment: Experiment, family: int = 1, seed: int = 0
) -> dict[str, Any]:
    """Every figure of one group (a segment, or all) of one experiment.

    ``family``: how many segments are judged together (Holm); the row's power, its decision
    interval and its users needed are for the alpha its strictest step uses, alpha / family.
    """
    y_c, y_t = arms.outcome[arms.in_control], arms.outcome[arms.in_treatment]
    alpha = experiment.alpha
    row: dict[str, Any] = {
        "metric": experiment.metric,
        "outcome_unit": "share" if experiment.metric == ab.CONVERSION else experiment.unit,
        "users_control": len(y_c),
        "users_treatment": len(y_t),
        "mean_control": float(y_c.mean()) if len(y_c) else np.nan,
        "mean_treatment": float(y_t.mean()) if len(y_t) else np.nan,
        "srm_p_value": ab.srm_pvalue(len(y_c), len(y_t), experiment.treatment_share),
    }
    row["srm_flag"] = row["srm_p_value"] < ab.SRM_THRESHOLD
    if len(y_c) < 2 or len(y_t) < 2:
        return {**row, "test": "too few users", "p_value": np.nan}
    if experiment.metric == ab.CONVERSION:
        diff, se, low, high, p_value, test = ab.proportion_test(y_c, y_t, alpha)
    else:
        diff, se, low, high, p_value = ab.welch_interval(y_c, y_t, alpha)
        test = "welch_t"
    se_control = float(np.std(y_c, ddof=1) / np.sqrt(len(y_c)))
    se_treatment = float(np.std(y_t, ddof=1) / np.sqrt(len(y_t)))
    if experiment.metric == ab.CONVERSION:
        relative, relative_low, relative_high = (
            float(v)
            for v in ab.relative_proportion_interval(
                y_c.sum(), len(y_c), y_t.sum(), len(y_t), alpha
            )
        )
    else:
        relative, relative_low, relative_high = ab.relative_interval(
            float(y_t.mean()), se_treatment, float(y_c.mean()), se_control, alpha
        )
    judged_at = alpha / family
    if experiment.metric == ab.CONVERSION:
        decision_high = ab.proportion_test(y_c, y_t, judged_at)[3]
    else:
        decision_high = ab.welch_interval(y_c, y_t, judged_at)[3]
    row.update(
        test=test,
        absolute_lift=diff,
        lift_se=se,
        lift_ci_low=low,
        lift_ci_high=high,
        relative_lift=relative,
        relative_ci_low=relative_low,
        relative_ci_high=relative_high,
        p_value=p_value,
        decision_alpha=judged_at,
        decision_ci_high=decision_high,
    )
    x_c = arms.pre_period_value[arms.in_control]
    x_t = arms.pre_period_value[arms.in_treatment]
    if np.isfinite(x_c).all() and np.isfinite(x_t).all():
        adjusted_c, adjusted_t, reduction = ab.cuped(y_c, y_t, x_c, x_t)
        cuped_diff, _, cuped_low, cuped_high, cuped_p = ab.welch_interval(
            adjusted_c, adjusted_t, alpha
        )
        row.update(
            cuped_lift=cuped_diff,
            cuped_ci_low=cuped_low,
            cuped_ci_high=cuped_high,
            cuped_p_value=cuped_p,
            variance_reduction=reduction,
        )
    note = (
        f"alpha {alpha:g}"
        if family == 1
        else (f"alpha/{family} = {judged_at:.3g} (Holm's strictest step, {family} segments)")
    )
    # Plan for the configured baseline where the config gives one: a segment's observed control
    # rate may be 0 of 14, and a plan at 0 says nothing about the experiment that was planned.
    if experiment.baseline_given:
        control_mean, control_sd = experiment.baseline, experiment.baseline_sd
        baseline_note = f"the configured baseline {experiment.baseline:g}"
    else:
        control_mean, control_sd = float(y_c.mean()), float(np.std(y_c, ddof=1))
        measure = "rate" if experiment.metric == ab.CONVERSION else "mean"
        baseline_note = f"the observed control {measure} {control_mean:.3g}"
    plan = ab.PowerPlan(
        test, judged_at, note, experiment.expected_effect, experiment.power, seed, baseline_note
    )
    row.update(
        ab.power_figures(experiment.metric, len(y_c), len(y_t), control_mean, control_sd, plan)
    )
    return row


# Each experiment is read once, with what the whole and each segment are analysed from.
EXPERIMENT_COLUMNS = ["segment_id", "arm", "outcome", "pre_period_value", "true_effect"]
# Means and variances are sums whose last bits depend on the order of the rows, and DuckDB's
# parallel scans vary it from run to run: read in one fixed order.
IN_KEY_ORDER = ["customer_key"]


def model(
    ab_outcomes: duckdb.DuckDBPyRelation,
    ab_assignments: duckdb.DuckDBPyRelation,
    segment_centroids: pd.DataFrame,
    audiences: pd.DataFrame,
    variables: dict[str, Any],
    seed: int,
) -> pd.DataFrame:
    experiments = configured(variables)
    holdouts = dict(zip(audiences["audience"], audiences["holdout_share"], strict=True))
    names = segment_centroids.drop_duplicates("segment_id").set_index("segment_id")["segment_name"]
    assigned_counts = (
        ab_assignments.aggregate("experiment, segment_id, count(*) as n", "experiment, segment_id")
        .to_arrow_table()
        .to_pandas()
        .set_index(["experiment", "segment_id"])["n"]
    )
    rows = []
    # One experiment's outcomes at a time: each may hold every customer.
    for name in distinct(ab_outcomes, "experiment"):
        in_experiment = where(ab_outcomes, experiment=name)
        outcomes = frame(in_experiment, EXPERIMENT_COLUMNS, IN_KEY_ORDER)
        experiment = with_audience_split(
            experiments.get(name) or for_logged(name, outcomes["outcome"]), holdouts
        )
        source = SOURCES.get(tuple(distinct(in_experiment, "source")), "simulation")
        everyone = Arms.of(outcomes)
        true_effects = outcomes["true_effect"].to_numpy(dtype=np.float64, na_value=np.nan)
        segment_of = outcomes["segment_id"].to_numpy(dtype=np.int64)
        del outcomes
        segments = sorted(pd.unique(segment_of).tolist())
        group_rows, sizes = [], []
        for segment_id in segments:
            # In key order, as a read of the segment alone would give them.
            members = np.flatnonzero(segment_of == segment_id)
            row = analyse_arms(everyone.take(members), experiment, len(segments), seed + segment_id)
            row.update(
                scope="segment",
                segment_id=segment_id,
                segment_name=names.get(segment_id),
                assigned_users=int(assigned_counts.get((name, segment_id), 0)),
                true_effect=float(true_effects[members[0]]),
            )
            group_rows.append(row)
            sizes.append(len(members))
        overall = analyse_arms(everyone, experiment, 1, seed)
        truth_complete = not np.isnan(true_effects).any()
        # Weighted here, not averaged by DuckDB, whose parallel sum moves the last bits.
        truth_mean = sum(r["true_effect"] * n for r, n in zip(group_rows, sizes, strict=True))
        truth_mean /= max(sum(sizes), 1)
        overall.update(
            scope=ALL,
            segment_id=None,
            segment_name=ALL,
            assigned_users=int(assigned_counts.loc[name].sum()),
            # The overall truth is the user-weighted mean of the segments' true effects.
            true_effect=float(truth_mean) if truth_complete else np.nan,
        )

        p_values = np.array([r["p_value"] for r in group_rows], dtype=np.float64)
        usable = np.isfinite(p_values)
        holm = np.full(len(group_rows), np.nan)
        bh = np.full(len(group_rows), np.nan)
        holm[usable] = ab.adjust(p_values[usable], "holm")
        bh[usable] = ab.adjust(p_values[usable], "fdr_bh")
        estimates = np.array([r.get("absolute_lift", np.nan) for r in group_rows])
        errors = np.array([r.get("lift_se", 0.0) for r in group_rows])
        finite = np.isfinite(estimates)
        q, q_p = ab.cochran_q(estimates[finite], errors[finite])
        for row, p_holm, p_bh in zip(group_rows, holm, bh, strict=True):
            row.update(p_value_holm=p_holm, p_value_bh=p_bh)
        overall.update(p_value_holm=overall["p_value"], p_value_bh=overall["p_value"])
        for row in [*group_rows, overall]:
            row.update(
                experiment=name,
                alpha=experiment.alpha,
                planned_effect=experiment.expected_effect,
                heterogeneity_q=q,
                heterogeneity_p_value=q_p,
                source=source,
            )
            if np.isfinite(row.get("p_value", np.nan)):
                # Segments are judged on the Holm-adjusted p-value: several segments, one family.
                decision, reason = ab.decide(row, row["p_value_holm"], experiment.alpha)
            else:
                decision, reason = "inconclusive", "too few users in an arm to test"
            row.update(decision=decision, decision_reason=reason)
        rows.extend([overall, *group_rows])

    table = pd.DataFrame(rows)
    if table.empty:
        return _no_experiments()
    for column in ("lift_ci_low", "lift_ci_high", "absolute_lift"):
        if column not in table:
            table[column] = np.nan
    table["ci_contains_estimate"] = (
        (table["lift_ci_low"] <= table["absolute_lift"])
        & (table["absolute_lift"] <= table["lift_ci_high"])
    ) | table["absolute_lift"].isna()
    table["users_total"] = table["users_control"] + table["users_treatment"]
    if "users_needed" in table:
        table["users_needed"] = table["users_needed"].astype("Int64")
    table["segment_id"] = table["segment_id"].astype("Int64")
    first = ["experiment", "scope", "segment_id", "segment_name", "metric", "source"]
    return table[first + [c for c in table.columns if c not in first]]


TEXT_COLUMNS = (
    "experiment",
    "scope",
    "segment_name",
    "metric",
    "outcome_unit",
    "source",
    "test",
    "power_method",
    "decision",
    "decision_reason",
)
WHOLE_COLUMNS = (
    "segment_id",
    "users_control",
    "users_treatment",
    "assigned_users",
    "users_needed",
    "users_total",
)
FLAG_COLUMNS = ("srm_flag", "ci_contains_estimate")


def _no_experiments() -> pd.DataFrame:
    """No experiment configured or logged: the table, typed, with no rows."""

    def dtype(column: str) -> str:
        if column in TEXT_COLUMNS:
            return "string"
        if column in WHOLE_COLUMNS:
            return "Int64"
        return "boolean" if column in FLAG_COLUMNS else "float64"

    return pd.DataFrame({c: pd.Series(dtype=dtype(c)) for c in COLUMNS})
