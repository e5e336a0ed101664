"""ml.drift of every published refresh, so a chart of drift over time is one query."""

from __future__ import annotations

import pandas as pd

# As ml.drift, one refresh after another.
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


def model(drift: pd.DataFrame, previous_drift_history: pd.DataFrame | None) -> pd.DataFrame:
    if previous_drift_history is None or previous_drift_history.empty:
        return drift
    run_id = drift["run_id"].iloc[0] if len(drift) else None
    earlier = previous_drift_history[previous_drift_history["run_id"] != run_id]
    return pd.concat([earlier[drift.columns], drift], ignore_index=True)
