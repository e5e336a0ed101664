"""The outcome of every assigned customer: from the logs, simulated from the configured truth, or
read back from the order lines for a campaign on an audience.

Simulated outcomes come with a pre-period value correlated with the outcome (for CUPED), and the
true effect used to draw them is stored beside each row. A campaign's outcome is the customer's
purchases dated from its start_date to its end_date (the order lines' end when not given):
conversion 1 when there was one, amount their value after returns; its pre-period value is the
same measure over as many days just before the start.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from engine.model_api import DIALECT
from python_models._ab_stats import CONVERSION, simulate
from python_models._experiments import Experiment, configured
from python_models._relations import arrow_table, distinct, where

ASSIGNMENT_COLUMNS = ["experiment", "customer_key", "is_synthetic", "segment_id", "arm", "source"]


COLUMNS = {
    "outcome": "The user's outcome: 0/1 for a conversion, an amount otherwise",
    "pre_period_value": "The same metric before the experiment (the CUPED covariate)",
    "true_effect": "For simulations: the effect the outcome was drawn with; null for logs and "
    "campaigns",
}


def _assigned(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    """The assignments as Arrow, which the outcomes are appended to: a pandas frame of 10M
    customers cost a second of string conversions each way."""
    return arrow_table(relation, ASSIGNMENT_COLUMNS, order_by=["customer_key"])


def _with_outcomes(
    assigned: pa.Table, outcome: np.ndarray, pre_period_value: np.ndarray, true_effect: float
) -> pa.Table:
    """The assignments and their outcomes; NaN is written as null, as DuckDB reads pandas."""
    columns = {
        "outcome": outcome,
        "pre_period_value": pre_period_value,
        "true_effect": np.full(assigned.num_rows, true_effect),
    }
    for name, values in columns.items():
        assigned = assigned.append_column(name, pa.array(values, from_pandas=True))
    return assigned


def _keys(assigned: pa.Table) -> np.ndarray:
    return assigned.column("customer_key").to_numpy()


def _logged(assigned: pa.Table, logs: pd.DataFrame) -> pa.Table:
    values = logs.set_index("customer_id").loc[_keys(assigned)]
    return _with_outcomes(
        assigned,
        values["outcome"].to_numpy(dtype=np.float64),
        values["pre_period_value"].to_numpy(dtype=np.float64),
        np.nan,
    )


def _window_totals(
    purchases: duckdb.DuckDBPyRelation, first: datetime.date, last: datetime.date
) -> pd.DataFrame:
    """Per customer: purchase days and their value in [first, last]."""
    day = exp.column("purchase_date", quoted=True)
    within = exp.Between(
        this=day,
        low=exp.cast(exp.Literal.string(first.isoformat()), "date"),
        high=exp.cast(exp.Literal.string(last.isoformat()), "date"),
    )
    chosen = purchases.filter(within.sql(DIALECT))
    totals = chosen.aggregate(
        "customer_id, count(*) as purchases, sum(purchase_value)::double as value", "customer_id"
    )
    return totals.to_arrow_table().to_pandas().set_index("customer_id")


def _read_back(
    assigned: pa.Table, purchases: duckdb.DuckDBPyRelation, experiment: Experiment
) -> pa.Table:
    """Outcomes from the order lines after the campaign's start, the covariate from before."""
    assert experiment.start_date is not None
    ((latest,),) = purchases.aggregate("max(purchase_date)").fetchall()
    end = experiment.end_date or latest or experiment.start_date
    days = (end - experiment.start_date).days + 1
    before_end = experiment.start_date - datetime.timedelta(days=1)
    before_start = experiment.start_date - datetime.timedelta(days=days)
    measure = "purchases" if experiment.metric == CONVERSION else "value"
    keys = _keys(assigned)
    after = _window_totals(purchases, experiment.start_date, end)[measure].reindex(keys)
    before = _window_totals(purchases, before_start, before_end)[measure].reindex(keys)
    after, before = after.fillna(0).to_numpy(float), before.fillna(0).to_numpy(float)
    if experiment.metric == CONVERSION:
        after, before = (after > 0).astype(float), (before > 0).astype(float)
    return _with_outcomes(assigned, after, before, np.nan)


def model(
    ab_assignments: duckdb.DuckDBPyRelation,
    stg_experiment_logs: pd.DataFrame,
    int_customer_purchases: duckdb.DuckDBPyRelation,
    variables: dict[str, Any],
    seed: int,
) -> Iterator[pa.Table]:
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
        if distinct(in_experiment, "source") == ["audience"]:
            written = True
            yield _read_back(_assigned(in_experiment), int_customer_purchases, experiments[name])
            continue
        experiment = experiments[name]
        base_seed = experiment.seed if experiment.seed is not None else seed
        for segment_id in distinct(in_experiment, "segment_id"):
            members = _assigned(where(in_experiment, segment_id=int(segment_id)))
            # One stream per segment: adding a segment never changes another's draws.
            rng = np.random.default_rng([base_seed, int(segment_id)])
            truth = experiment.truth(int(segment_id))
            treated = pc.fill_null(pc.equal(members.column("arm"), "treatment"), False)
            in_treatment = treated.to_numpy(zero_copy_only=False).astype(np.float64)
            outcome, pre = simulate(truth, in_treatment, rng)
            written = True
            yield _with_outcomes(members, outcome, pre, truth.effect)
    if not written:
        nothing = np.empty(0)
        yield _with_outcomes(_assigned(ab_assignments.limit(0)), nothing, nothing, np.nan)
