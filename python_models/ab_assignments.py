"""Who is in which arm of which experiment.

Logged experiments take the arm from their logs. Simulated ones assign by a hash of experiment
name and customer id, as experimentation platforms do: a customer's arm never changes between
refreshes, and experiments split customers independently. With ``population = N`` a simulated
experiment runs on N synthetic customers drawn from the segment shares instead of the real ones.

A campaign on an audience (``vars.experiments.<name>.audience``) takes the audience's target as
its treatment and its holdout as its control, as they were in the first refresh that built the
campaign: later refreshes keep that exposure (and each customer's segment then), so a customer
the campaign moved out of the audience is still counted where they were sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from python_models._ab_stats import ARMS, treated
from python_models._experiments import configured
from python_models._relations import frame, where

SYNTHETIC_KEY_OFFSET = 10**12  # synthetic customers never collide with real ids


COLUMNS = {
    "experiment": "The experiment (vars.experiments or the logs)",
    "customer_key": "The customer, or a synthetic user drawn from the segment shares",
    "is_synthetic": "Whether the user was simulated (vars.experiments.<name>.population)",
    "segment_id": "The user's segment",
    "arm": "control or treatment",
    "source": "hash (simulated, from the configured truth), log (staging.stg_experiment_logs) "
    "or audience (a campaign on an audience: target and holdout)",
}


def _population(
    customer_segments: pd.DataFrame, size: int, rng: np.random.Generator
) -> pd.DataFrame:
    shares = customer_segments["segment_id"].value_counts(normalize=True).sort_index()
    segments = rng.choice(shares.index.to_numpy(), size=size, p=shares.to_numpy())
    return pd.DataFrame(
        {"customer_key": SYNTHETIC_KEY_OFFSET + np.arange(size), "segment_id": np.sort(segments)}
    )


def _arms(values: np.ndarray | list[str]) -> pa.DictionaryArray:
    """Arms stored once each, not once per customer (VARCHAR in DuckDB)."""
    if isinstance(values, np.ndarray) and values.dtype == np.bool_:  # True: treatment
        return pa.DictionaryArray.from_arrays(pa.array(values.astype(np.int8)), pa.array(ARMS))
    return pa.array(values, pa.string()).dictionary_encode()


def _constant(value: str, rows: int) -> pa.DictionaryArray:
    """One value on every row, stored once."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int8)), pa.array([value]))


def _members(
    name: str, keys: np.ndarray, synthetic: bool, segment_ids: np.ndarray, arms: Any, source: str
) -> pa.Table:
    rows = len(keys)
    return pa.table(
        {
            "experiment": _constant(name, rows),
            "customer_key": pa.array(keys, pa.int64()),
            "is_synthetic": pa.array(np.full(rows, synthetic)),
            "segment_id": pa.array(segment_ids, pa.int64()),
            "arm": _arms(arms),
            "source": _constant(source, rows),
        }
    )


def _exposure(
    name: str,
    audience: str,
    customers: pd.DataFrame,
    audience_assignments: pd.DataFrame,
    previous: duckdb.DuckDBPyRelation | None,
) -> pa.Table:
    """The campaign's arms: frozen in the first refresh that built it, kept after."""
    columns = ["customer_key", "segment_id", "arm"]
    earlier = (
        frame(where(previous, experiment=name, source="audience"), columns, columns[:1])
        if previous is not None
        else pd.DataFrame(columns=columns)
    )
    if len(earlier):
        members = earlier.assign(treated=earlier["arm"] == "treatment")
    else:
        chosen = audience_assignments[audience_assignments["audience"] == audience]
        members = chosen.merge(customers, on="customer_id").sort_values("customer_id")
        members = members.rename(columns={"customer_id": "customer_key"}).assign(
            treated=members["audience_group"] == "target"
        )
    return _members(
        name,
        members["customer_key"].to_numpy(dtype=np.int64),
        False,
        members["segment_id"].to_numpy(dtype=np.int64),
        members["treated"].to_numpy(dtype=bool),
        "audience",
    )


def model(
    customer_segments: duckdb.DuckDBPyRelation,
    stg_experiment_logs: pd.DataFrame,
    audience_assignments: pd.DataFrame,
    previous_ab_assignments: duckdb.DuckDBPyRelation | None,
    variables: dict[str, Any],
    seed: int,
) -> Iterator[pa.Table]:
    """One part per experiment, in name order, each ordered by customer key."""
    customers = frame(customer_segments, ["customer_id", "segment_id"], order_by=["customer_id"])
    experiments = configured(variables)
    logged = set(stg_experiment_logs["experiment"])
    campaigns = {n: e.audience for n, e in experiments.items() if e.audience and n not in logged}
    simulated = {n for n, e in experiments.items() if n not in logged and e.simulate}
    for name in sorted(logged | simulated | set(campaigns)):
        if name in campaigns:
            yield _exposure(
                name, campaigns[name], customers, audience_assignments, previous_ab_assignments
            )
            continue
        if name in logged:
            logs = stg_experiment_logs[stg_experiment_logs["experiment"] == name]
            joined = logs.merge(customers, on="customer_id").sort_values("customer_id")
            yield _members(
                name,
                joined["customer_id"].to_numpy(dtype=np.int64),
                False,
                joined["segment_id"].to_numpy(dtype=np.int64),
                joined["variant"].to_numpy(),
                "log",
            )
            continue
        experiment = experiments[name]
        rng = np.random.default_rng(experiment.seed if experiment.seed is not None else seed)
        if experiment.population:
            members = _population(customers, experiment.population, rng)
        else:
            members = customers.rename(columns={"customer_id": "customer_key"})
        if experiment.segments is not None:
            members = members[members["segment_id"].isin(experiment.segments)]
        keys = members["customer_key"].to_numpy(dtype=np.int64)
        yield _members(
            name,
            keys,
            bool(experiment.population),
            members["segment_id"].to_numpy(dtype=np.int64),
            treated(name, keys, experiment.treatment_share),
            "hash",
        )
    if not logged and not simulated:
        yield _members("", np.array([], np.int64), False, np.array([], np.int64), [], "")
