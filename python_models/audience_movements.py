"""Who entered and who left each audience since the last published refresh."""

from __future__ import annotations

import pandas as pd

COLUMNS = {
    "audience": "The audience",
    "customer_id": "The customer",
    "change": "entered (in the audience now, not in the last refresh) or left (the reverse)",
    "audience_group": "Their group: now for who entered, then for who left",
}
KEEP = ["audience", "customer_id", "audience_group"]


def _keys(members: pd.DataFrame) -> pd.Series:
    # As text: a customer id's type may differ between two refreshes' exports.
    return members["audience"].astype(str) + "\x1f" + members["customer_id"].astype(str)


def model(
    audience_assignments: pd.DataFrame, previous_audience_assignments: pd.DataFrame | None
) -> pd.DataFrame:
    now = audience_assignments[KEEP]
    if previous_audience_assignments is None:
        before = now.iloc[0:0]
    else:
        before = previous_audience_assignments[KEEP]
    in_now, in_before = _keys(now), _keys(before)
    entered = now[~in_now.isin(in_before)].assign(change="entered")
    left = before[~in_before.isin(in_now)].assign(change="left")
    changes = pd.concat([entered, left], ignore_index=True)
    return changes[["audience", "customer_id", "change", "audience_group"]].astype(
        {"audience": "string", "change": "string", "audience_group": "string"}
    )
