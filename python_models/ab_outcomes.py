"""The outcome of every assigned customer: from the logs, or simulated from the configured truth.

Simulated outcomes come with a pre-period value correlated with the outcome (for CUPED), and the
true effect used to draw them is stored beside each row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from python_models._ab_stats import simulate
from python_models._experiments import configured
from python_models._relations import distinct, frame, where

ASSIGNMENT_COLUMNS = ["experiment", "customer_key", "is_synthetic", "segment_id", "arm", "source"]


COLUMNS = {
    "outcome": "The user's outcome: 0/1 for a conversion, an amount otherwise",
    "pre_period_value": "The same metric before the experiment (the CUPED covariate)",
    "true_effect": "For simulations: the effect the outcome was drawn with; null for logs",
}


def _assigned(relation: duckdb.DuckDBPyRelation) -> pd.DataFrame:
    return frame(relation, ASSIGNMENT_COLUMNS, order_by=["customer_key"])


def _logged(assigned: pd.DataFrame, logs: pd.DataFrame) -> pd.DataFrame:
    values = logs.set_index("customer_id").loc[assigned["customer_key"]]
    return assigned.assign(
        outcome=values["outcome"].to_numpy(dtype=np.float64),
        pre_period_value=values["pre_period_value"].to_numpy(dtype=np.float64),
        true_effect=np.nan,
    )


def model(
    ab_assignments: duckdb.DuckDBPyRelation,
    stg_experiment_logs: pd.DataFrame,
    variables: dict[str, Any],
    seed: int,
) -> Iterator[pd.DataFrame]:
    """One part per experiment and segment, so only one segment's customers are held at once."""
    experiments = configured(variables)
    written = False
    for name in distinct(ab_assignments, "experiment"):
        in_experiment = where(ab_assignments, experiment=name)
        if distinct(in_experiment, "source") == ["log"]:
            logs = stg_experiment_logs[stg_experiment_logs["experiment"] == name]
            written = True
            yield _logged(_assigned(in_experiment), logs)
            continue
        experiment = experiments[name]
        base_seed = experiment.seed if experiment.seed is not None else seed
        for segment_id in distinct(in_experiment, "segment_id"):
            members = _assigned(where(in_experiment, segment_id=int(segment_id)))
            # One stream per segment: adding a segment never changes another's draws.
            rng = np.random.default_rng([base_seed, int(segment_id)])
            truth = experiment.truth(int(segment_id))
            treated = (members["arm"] == "treatment").to_numpy(dtype=np.float64)
            outcome, pre = simulate(truth, treated, rng)
            written = True
            yield members.assign(outcome=outcome, pre_period_value=pre, true_effect=truth.effect)
    if not written:
        empty = frame(ab_assignments.limit(0), ASSIGNMENT_COLUMNS)
        yield empty.assign(outcome=[], pre_period_value=[], true_effect=[]).astype(
            {"outcome": "float64", "pre_period_value": "float64", "true_effect": "float64"}
        )
