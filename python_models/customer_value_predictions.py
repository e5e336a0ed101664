"""What each customer is expected to do next, from the value models fitted on the whole
observation (ml.value_model_fits, stage full): the probability they are still active, the
purchases expected over each horizon (value.horizons_days), the expected value of a purchase,
and the customer lifetime value over value.clv_horizon_days, discounted at
value.annual_discount_rate.

``ml.probability_alive(x, t_x, T)`` computes the first in SQL (BG/NBD's closed form with the
fitted parameters), for any summary a BI user brings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from engine.model_api import ModelResult
from python_models import _sql_scoring as sql
from python_models import _value_models as vm

MACRO_NAME = "probability_alive"

COLUMNS = {
    "customer_id": "The customer (intermediate.int_customer_value_inputs)",
    "probability_alive": "BG/NBD's probability that the customer is still active (0-1); "
    "1 without a repeat purchase (the model's customers drop out only after a purchase)",
    "expected_purchases_{days}d": "Purchases (purchase days) BG/NBD expects in the next {days} "
    "days (value.horizons_days)",
    "expected_purchase_value": "Gamma-Gamma's expected value of one of the customer's future "
    "purchases: their own mean repeat value shrunk toward the population's",
    "customer_lifetime_value": "Expected purchases over value.clv_horizon_days (in steps of 30 "
    "days) times the expected purchase value, discounted at value.annual_discount_rate a year",
    "value_status": "fitted, or why there is no prediction (the fit's status and reason in "
    "ml.value_model_fits)",
}


def full_fits(fits: pd.DataFrame) -> tuple[dict[str, dict[str, float]], str]:
    """The full-observation fits' parameters by model, and a status: 'fitted' or the reason
    some predictions are missing."""
    params = vm.fitted_parameters(fits, "full")
    full = fits[fits["stage"] == "full"].drop_duplicates("model").set_index("model")
    problems = [
        f"{name}: {full['reason'].get(name, 'no fit')}"
        for name in (vm.BG_NBD, vm.GAMMA_GAMMA)
        if name not in params
    ]
    return params, "; ".join(problems) if problems else "fitted"


def probability_alive_macro(params: dict[str, float] | None) -> exp.Create:
    """CREATE MACRO ml.probability_alive(x, t_x, T): the expression vm.probability_alive
    computes, term for term; null when BG/NBD was not fitted."""
    x, t_x, T = (exp.column(n) for n in ("x", "t_x", "T"))
    if params is None:
        body: exp.Expression = exp.cast(exp.null(), exp.DataType.build("double"))
        return sql.create_macro("ml", MACRO_NAME, ["x", "t_x", "T"], body)
    r, alpha, a, b = (sql.double(params[k]) for k in vm.PARAMETERS[vm.BG_NBD])
    ratio = exp.Div(
        this=exp.Paren(this=exp.Add(this=alpha, expression=T)),
        expression=exp.Paren(this=exp.Add(this=alpha.copy(), expression=t_x)),
    )
    odds = exp.Mul(
        this=exp.Div(
            this=a,
            expression=exp.Paren(
                this=exp.Sub(this=exp.Add(this=b, expression=x.copy()), expression=sql.double(1))
            ),
        ),
        expression=exp.Pow(
            this=exp.Paren(this=ratio), expression=exp.Paren(this=exp.Add(this=r, expression=x))
        ),
    )
    alive = exp.Div(
        this=sql.double(1),
        expression=exp.Paren(this=exp.Add(this=sql.double(1), expression=odds)),
    )
    body = exp.Case().when(exp.GT(this=x.copy(), expression=exp.Literal.number(0)), alive)
    return sql.create_macro("ml", MACRO_NAME, ["x", "t_x", "T"], body.else_(sql.double(1)))


def _summaries(inputs: pd.DataFrame) -> tuple[np.ndarray, ...]:
    names = ("repeat_purchases", "recency_period", "age_period", "mean_repeat_value")
    return tuple(inputs[c].to_numpy(float) for c in names)


def purchase_predictions(
    inputs: pd.DataFrame, bg_nbd: dict[str, float], settings: pd.Series
) -> dict[str, np.ndarray]:
    x, t_x, T, _ = _summaries(inputs)
    period = int(settings["period_days"])
    columns = {"probability_alive": vm.probability_alive(bg_nbd, x, t_x, T)}
    for days in settings["horizons_days"]:
        columns[f"expected_purchases_{days}d"] = vm.expected_purchases(
            bg_nbd, days / period, x, t_x, T
        )
    return columns


def value_predictions(
    inputs: pd.DataFrame, params: dict[str, dict[str, float]], settings: pd.Series
) -> dict[str, np.ndarray]:
    x, t_x, T, z = _summaries(inputs)
    mean_value = vm.expected_mean_value(params[vm.GAMMA_GAMMA], x, z)
    lifetime_value = vm.discounted_value(
        params[vm.BG_NBD],
        mean_value,
        x,
        t_x,
        T,
        int(settings["clv_horizon_days"]),
        int(settings["period_days"]),
        float(settings["annual_discount_rate"]),
    )
    return {"expected_purchase_value": mean_value, "customer_lifetime_value": lifetime_value}


def model(
    int_customer_value_inputs: pd.DataFrame,
    value_model_fits: pd.DataFrame,
    value_settings: pd.DataFrame,
) -> ModelResult:
    settings = value_settings.iloc[0]
    inputs = int_customer_value_inputs
    params, status = full_fits(value_model_fits)
    names = [
        "probability_alive",
        *(f"expected_purchases_{d}d" for d in settings["horizons_days"]),
        "expected_purchase_value",
        "customer_lifetime_value",
    ]
    columns = {n: np.full(len(inputs), np.nan) for n in names}
    if vm.BG_NBD in params:
        columns.update(purchase_predictions(inputs, params[vm.BG_NBD], settings))
    if status == "fitted":
        columns.update(value_predictions(inputs, params, settings))
    table = pa.table(
        {
            "customer_id": pa.array(inputs["customer_id"]),
            **{n: pa.array(columns[n], pa.float64(), from_pandas=True) for n in names},
            "value_status": pa.array([status] * len(inputs), pa.string()),
        }
    )
    return ModelResult(table=table, functions=(probability_alive_macro(params.get(vm.BG_NBD)),))
