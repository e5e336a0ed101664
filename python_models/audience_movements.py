"""Who entered and who left each audience since the last published refresh."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from python_models._audience_keys import membership_keys

COLUMNS = {
    "audience": "The audience",
    "customer_id": "The customer",
    "change": "entered (in the audience now, not in the last refresh) or left (the reverse)",
    "audience_group": "Their group: now for who entered, then for who left",
}
KEEP = ["audience", "customer_id", "audience_group"]


def _absent(keys: pa.Array, others: pa.Array) -> np.ndarray:
    """Which keys are not among the others."""
    return ~pc.is_in(keys, value_set=others).to_numpy(zero_copy_only=False)


def model(
    audience_assignments: pd.DataFrame, previous_audience_assignments: pd.DataFrame | None
) -> pd.DataFrame:
    now = audience_assignments[KEEP]
    if previous_audience_assignments is None:
        before = now.iloc[0:0]
    else:
        before = previous_audience_assignments[KEEP]
    in_now, in_before = membership_keys(now), membership_keys(before)
    entered = now[_absent(in_now, in_before)].assign(change="entered")
    left = before[_absent(in_before, in_now)].assign(change="left")
    changes = pd.concat([entered, left], ignore_index=True)
    return changes[["audience", "customer_id", "change", "audience_group"]].astype(
        {"audience": "string", "change": "string", "audience_group": "string"}
    )
