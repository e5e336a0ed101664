"""Who is in which arm of which experiment.

Logged experiments take the arm from their logs. Simulated ones assign by a hash of experiment
name and customer id, as experimentation platforms do: a customer's arm never changes between
refreshes, and experiments split customers independently. With ``population = N`` a simulated
experiment runs on N synthetic customers drawn from the segment shares instead of the real ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from python_models._ab_stats import assign
from python_models._experiments import configured

SYNTHETIC_KEY_OFFSET = 10**12  # synthetic customers never collide with real ids


def _population(
    customer_segments: pd.DataFrame, size: int, rng: np.random.Generator
) -> pd.DataFrame:
    shares = customer_segments["segment_id"].value_counts(normalize=True).sort_index()
    segments = rng.choice(shares.index.to_numpy(), size=size, p=shares.to_numpy())
    return pd.DataFrame(
        {"customer_key": SYNTHETIC_KEY_OFFSET + np.arange(size), "segment_id": np.sort(segments)}
    )


def model(
    customer_segments: pd.DataFrame,
    stg_experiment_logs: pd.DataFrame,
    variables: dict[str, Any],
    seed: int,
) -> pd.DataFrame:
    experiments = configured(variables)
    logged = set(stg_experiment_logs["experiment"])
    parts = []
    for name in sorted(logged):
        logs = stg_experiment_logs[stg_experiment_logs["experiment"] == name]
        joined = logs.merge(customer_segments[["customer_id", "segment_id"]], on="customer_id")
        parts.append(
            pd.DataFrame(
                {
                    "experiment": name,
                    "customer_key": joined["customer_id"].to_numpy(dtype=np.int64),
                    "is_synthetic": False,
                    "segment_id": joined["segment_id"].to_numpy(dtype=np.int64),
                    "arm": joined["variant"].to_numpy(),
                    "source": "log",
                }
            )
        )
    for name, experiment in experiments.items():
        if name in logged or not experiment.simulate:
            continue
        rng = np.random.default_rng(experiment.seed if experiment.seed is not None else seed)
        if experiment.population:
            members = _population(customer_segments, experiment.population, rng)
        else:
            members = customer_segments.rename(columns={"customer_id": "customer_key"})[
                ["customer_key", "segment_id"]
            ]
        if experiment.segments is not None:
            members = members[members["segment_id"].isin(experiment.segments)]
        keys = members["customer_key"].to_numpy(dtype=np.int64)
        parts.append(
            pd.DataFrame(
                {
                    "experiment": name,
                    "customer_key": keys,
                    "is_synthetic": bool(experiment.population),
                    "segment_id": members["segment_id"].to_numpy(dtype=np.int64),
                    "arm": assign(name, keys, experiment.treatment_share),
                    "source": "hash",
                }
            )
        )
    columns = ["experiment", "customer_key", "is_synthetic", "segment_id", "arm", "source"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return pd.concat(parts, ignore_index=True)[columns].sort_values(["experiment", "customer_key"])
