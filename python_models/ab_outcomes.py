"""The outcome of every assigned customer: from the logs, or simulated from the configured truth.

Simulated outcomes come with a pre-period value correlated with the outcome (for CUPED), and the
true effect used to draw them is stored beside each row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from python_models._ab_stats import simulate
from python_models._experiments import configured


def model(
    ab_assignments: pd.DataFrame,
    stg_experiment_logs: pd.DataFrame,
    variables: dict[str, Any],
    seed: int,
) -> pd.DataFrame:
    experiments = configured(variables)
    parts = []
    for name, assigned in ab_assignments.groupby("experiment", sort=True):
        if (assigned["source"] == "log").all():
            logs = stg_experiment_logs[stg_experiment_logs["experiment"] == name]
            values = logs.set_index("customer_id").loc[assigned["customer_key"]]
            parts.append(
                assigned.assign(
                    outcome=values["outcome"].to_numpy(dtype=np.float64),
                    pre_period_value=values["pre_period_value"].to_numpy(dtype=np.float64),
                    true_effect=np.nan,
                )
            )
            continue
        experiment = experiments[name]
        base_seed = experiment.seed if experiment.seed is not None else seed
        pieces = []
        for segment_id, members in assigned.groupby("segment_id", sort=True):
            # One stream per segment: adding a segment never changes another's draws.
            rng = np.random.default_rng([base_seed, int(segment_id)])
            truth = experiment.truth(int(segment_id))
            treated = (members["arm"] == "treatment").to_numpy(dtype=np.float64)
            outcome, pre = simulate(truth, treated, rng)
            pieces.append(
                members.assign(outcome=outcome, pre_period_value=pre, true_effect=truth.effect)
            )
        parts.append(pd.concat(pieces))
    if not parts:
        return ab_assignments.assign(outcome=[], pre_period_value=[], true_effect=[])
    return pd.concat(parts, ignore_index=True).sort_values(["experiment", "customer_key"])
