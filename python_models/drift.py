"""Drift since the last published refresh: per feature, per categorical attribute, per segment.

A feature's population stability index (PSI) is taken over the previous refresh's quantile bins
(ml.drift_distributions), with the two-sample Kolmogorov-Smirnov statistic on the values
themselves; an attribute's PSI over its values. A check at ``watch`` or above is worth a look;
at ``alert`` its action applies: a ``warn`` check fills ``warning_alert``, a ``block`` check
``blocking_alert``, and the expectations on this table make the first a warning and the second
a failed run that publishes nothing (expectations/ml.drift.json).

Per segment (the same segment ids, when the lineage continues): its share before and now, the
share of its earlier customers who moved to another segment (ml.segment_migrations), and how
far its centroid moved, in each refresh's scaled units.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from python_models import _drift_measures as measures
from python_models._relations import counts

COLUMNS = {
    "run_id": "The refresh measured",
    "previous_run_id": "The last published refresh it is compared with; null: none",
    "check_kind": "feature, attribute or segment",
    "subject": "The feature, the categorical attribute, or the segment's id",
    "label": "How the report calls it (a segment: its name now)",
    "psi": "Population stability index over the previous refresh's bins (ml.drift_distributions)",
    "ks_statistic": "A feature's two-sample Kolmogorov-Smirnov statistic, before against now",
    "ks_p_value": "Its p-value (at millions of customers a tiny shift is significant: read psi)",
    "bins": "Bins (feature) or values (attribute) the PSI is taken over",
    "level": "stable, watch (psi at drift.watch or above) or alert (at drift.alert or above); "
    "no earlier refresh, or not in the last refresh",
    "action": "What an alert does: warn or block",
    "warning_alert": "For an alert of a warn check: what drifted, by how much",
    "blocking_alert": "For an alert of a block check: what drifted, by how much (fails the run)",
    "share_before": "A segment's share of customers in the last refresh",
    "share_now": "Its share now",
    "moved_share": "Share of its customers then, still here, who are now in another segment",
    "centroid_shift": "Distance its centroid moved, in scaled units (each refresh's scaling)",
}


def _level(psi: float, settings: pd.Series) -> str:
    if psi >= settings["alert"]:
        return "alert"
    return "watch" if psi >= settings["watch"] else "stable"


def _alert_text(row: dict, settings: pd.Series) -> str:
    return (
        f"{row['label']} ({row['check_kind']} {row['subject']}): PSI {row['psi']:.3f} at or above "
        f"drift.alert {settings['alert']:g} since run {row['previous_run_id']}"
    )


def _check_rows(
    checks: pd.DataFrame,
    distributions: pd.DataFrame,
    features: tuple[duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation | None],
    settings: pd.Series,
) -> list[dict]:
    now, before = features
    rows = []
    for check in checks.itertuples():
        bins = distributions[distributions["subject"] == check.subject]
        row = {"check_kind": check.check_kind, "subject": check.subject, "label": check.label,
               "action": check.action}  # fmt: skip
        if before is None:
            rows.append({**row, "level": "no earlier refresh"})
            continue
        if bins.empty:
            rows.append({**row, "level": "not in the last refresh"})
            continue
        row["psi"] = measures.psi(
            bins["customers_before"].to_numpy(float),
            bins["customers_now"].to_numpy(float),
            float(settings["min_share"]),
        )
        row["bins"] = len(bins)
        if check.check_kind == "feature":
            row["ks_statistic"], row["ks_p_value"] = measures.ks_two_sample(
                measures.value_counts(before, check.subject),
                measures.value_counts(now, check.subject),
            )
        row["level"] = _level(row["psi"], settings)
        rows.append(row)
    return rows


def _segment_rows(
    segments: tuple[duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation | None],
    centroids: tuple[pd.DataFrame, pd.DataFrame | None],
    segment_migrations: pd.DataFrame,
    continues: bool,
) -> list[dict]:
    now, before = segments
    sizes = counts(now, "segment_id")
    names = centroids[0].drop_duplicates("segment_id").set_index("segment_id")["segment_name"]
    earlier = counts(before, "segment_id") if before is not None and continues else None
    shift = _centroid_shift(*centroids) if continues and centroids[1] is not None else {}
    rows = []
    for segment_id, customers in sizes.items():
        row = {"check_kind": "segment", "subject": str(segment_id),
               "label": names.get(segment_id), "share_now": customers / sizes.sum()}  # fmt: skip
        if earlier is not None:
            row["share_before"] = earlier.get(segment_id, 0) / earlier.sum()
            row["moved_share"] = _moved_share(segment_migrations, segment_id)
            row["centroid_shift"] = shift.get(segment_id, np.nan)
        rows.append(row)
    return rows


def _moved_share(migrations: pd.DataFrame, segment_id: int) -> float:
    stayed_here = migrations[
        (migrations["from_segment_id"] == segment_id) & migrations["to_segment_id"].notna()
    ]
    total = stayed_here["customers"].sum()
    moved = stayed_here.loc[stayed_here["moved"].astype(bool), "customers"].sum()
    return float(moved / total) if total else np.nan


def _centroid_shift(now: pd.DataFrame, before: pd.DataFrame) -> dict[int, float]:
    wide_now = now.pivot(index="segment_id", columns="feature", values="centroid_scaled")
    wide_before = before.pivot(index="segment_id", columns="feature", values="centroid_scaled")
    shared = wide_now.index.intersection(wide_before.index)
    columns = wide_now.columns.intersection(wide_before.columns)
    difference = wide_now.loc[shared, columns] - wide_before.loc[shared, columns]
    return np.sqrt((difference**2).sum(axis=1)).to_dict()


def model(
    drift_distributions: pd.DataFrame,
    drift_settings: pd.DataFrame,
    drift_checks: pd.DataFrame,
    int_customer_features: duckdb.DuckDBPyRelation,
    previous_int_customer_features: duckdb.DuckDBPyRelation | None,
    customer_segments: duckdb.DuckDBPyRelation,
    previous_customer_segments: duckdb.DuckDBPyRelation | None,
    segment_centroids: pd.DataFrame,
    previous_segment_centroids: pd.DataFrame | None,
    segment_migrations: pd.DataFrame,
    segment_lineage: pd.DataFrame,
    run_id: str,
) -> pd.DataFrame:
    settings = drift_settings.iloc[0]
    continues = not bool(segment_lineage["is_new_lineage"].iloc[-1])
    rows = _check_rows(
        drift_checks,
        drift_distributions,
        (int_customer_features, previous_int_customer_features),
        settings,
    ) + _segment_rows(
        (customer_segments, previous_customer_segments),
        (segment_centroids, previous_segment_centroids),
        segment_migrations,
        continues,
    )
    table = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    table["run_id"] = run_id
    earlier = segment_lineage["run_id"].iloc[:-1]
    table["previous_run_id"] = earlier.iloc[-1] if len(earlier) else None
    alerts = table["level"] == "alert"
    texts = [_alert_text(row, settings) if alert else None
             for row, alert in zip(table.to_dict("records"), alerts, strict=True)]  # fmt: skip
    table["warning_alert"] = np.where(alerts & (table["action"] == "warn"), texts, None)
    table["blocking_alert"] = np.where(alerts & (table["action"] == "block"), texts, None)
    return _typed(table)


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    text = ["run_id", "previous_run_id", "check_kind", "subject", "label", "level", "action",
            "warning_alert", "blocking_alert"]  # fmt: skip
    for column in table.columns:
        if column in text:
            table[column] = table[column].astype("string")
        elif column == "bins":
            table[column] = table[column].astype("Int64")
        else:
            table[column] = table[column].astype("float64")
    return table
