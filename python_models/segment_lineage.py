"""Whether this refresh continues the previous segments or starts a new lineage.

Segment ids, history and migrations compare a refresh with the last published one. That is
right while the customers are (mostly) the same people; when the landing data is replaced by a
different population, matching its centroids to the old ones would report the old customers
"moving" into segments that describe someone else. A refresh that shares fewer than
``min_shared_share`` of its customers with the last publish starts a new lineage: segment ids
from 1, no migrations, history kept under the old lineage number. One row per refresh.
"""

from __future__ import annotations

import duckdb
import pandas as pd

PARAMETERS = {
    # A refresh continues the lineage when at least this share of its customers were in the
    # last published refresh.
    "min_shared_share": 0.2,
}
PARAMETER_CONSTRAINTS = {"min_shared_share": {"type": "number", "min": 0, "max": 1}}
COLUMNS = {
    "run_id": "The refresh",
    "lineage": "Lineage number: segment ids are comparable only within one lineage",
    "is_new_lineage": "Whether this refresh started the lineage",
    "reason": "Why the lineage continued or started",
    "customers": "Customers segmented in this refresh",
    "shared_customers": "Of them, customers also in the last published refresh",
    "shared_share": "shared_customers / customers",
}


def _shared(current: duckdb.DuckDBPyRelation, previous: duckdb.DuckDBPyRelation) -> tuple[int, int]:
    ids = current.project("customer_id").set_alias("current")
    earlier = previous.project("customer_id as previous_id").set_alias("previous")
    ((customers,),) = ids.aggregate("count(*)").fetchall()
    ((shared,),) = ids.join(earlier, "customer_id = previous_id").aggregate("count(*)").fetchall()
    return int(customers), int(shared)


def _decision(
    customers: int, shared: int | None, last_lineage: int | None, min_share: float
) -> tuple[int, bool, str]:
    if last_lineage is None or shared is None:
        return 1, True, "first refresh (or history reset with --reset-history)"
    share = shared / customers if customers else 0.0
    if share < min_share:
        return (
            last_lineage + 1,
            True,
            (
                f"only {shared} of {customers} customers ({share:.1%}) were in the last refresh, "
                f"below min_shared_share {min_share:.0%}: a different population"
            ),
        )
    return last_lineage, False, f"{share:.1%} of the customers were in the last refresh"


def model(
    int_customer_features: duckdb.DuckDBPyRelation,
    previous_customer_segments: duckdb.DuckDBPyRelation | None,
    previous_segment_lineage: pd.DataFrame | None,
    run_id: str,
    config: dict,
) -> pd.DataFrame:
    earlier = previous_segment_lineage
    if earlier is not None:
        earlier = earlier[earlier["run_id"] != run_id]
    if previous_customer_segments is None:
        ((customers,),) = int_customer_features.aggregate("count(*)").fetchall()
        shared = None
    else:
        customers, shared = _shared(int_customer_features, previous_customer_segments)
    # A warehouse from before lineages were recorded continues as lineage 1.
    last = int(earlier["lineage"].max()) if earlier is not None and len(earlier) else 1
    last_lineage = None if previous_customer_segments is None else last
    lineage, is_new, reason = _decision(customers, shared, last_lineage, config["min_shared_share"])
    row = pd.DataFrame(
        {
            "run_id": [run_id],
            "lineage": [lineage],
            "is_new_lineage": [is_new],
            "reason": [reason],
            "customers": [int(customers)],
            "shared_customers": pd.array([shared], dtype="Int64"),
            "shared_share": pd.array(
                [shared / customers if shared is not None and customers else None],
                dtype="Float64",
            ),
        }
    )
    if earlier is None or earlier.empty:
        return row
    # The earlier rows as read back lost their nullable types (a column of nulls comes back as
    # floats), which would turn shared_customers into a DOUBLE from the second refresh on.
    return pd.concat([earlier[row.columns].astype(row.dtypes.to_dict()), row], ignore_index=True)
