"""The customer value models' fits: BG/NBD (purchases, activity) and Gamma-Gamma (value of a
purchase), by maximum likelihood, on the calibration period and on the whole observation.

One row per stage, model and parameter: the estimate with its standard error, and the fit's
log-likelihood, convergence and status. Calibration fits are checked on the holdout
(ml.value_holdout_customers); full fits make the published predictions
(ml.customer_value_predictions). A fit that cannot be made says why in ``reason``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from python_models import _value_fitting as fitting
from python_models import _value_models as vm

STAGES = ("calibration", "full")
FITTED, NOT_FITTED, NOT_CONVERGED = "fitted", "not fitted", "did not converge"

COLUMNS = {
    "stage": "calibration (fit before value.calibration_end, checked on the holdout) or full "
    "(fit on the whole observation, used for the published predictions)",
    "model": "bg_nbd (purchases and activity) or gamma_gamma (value of a purchase)",
    "status": "fitted, not fitted or did not converge",
    "reason": "Why the fit was not made or is not used, or what to keep in mind about a fitted "
    "one (estimates the data hardly pin down); null otherwise",
    "customers": "Customers the fit used",
    "repeat_customers": "Of them, customers with a repeat purchase",
    "parameter": "The parameter: r, alpha, a, b (BG/NBD) or p, q, gamma (Gamma-Gamma)",
    "estimate": "Its maximum-likelihood estimate",
    "std_error": "Its standard error, from the observed information (the inverse Hessian)",
    "log_likelihood": "The fit's maximised log-likelihood",
    "iterations": "Optimiser iterations",
    "frequency_value_correlation": "Gamma-Gamma assumes a customer's purchase value does not "
    "depend on how often they buy: the Pearson correlation of repeat purchases and mean "
    "repeat value over the customers fitted (should be near 0)",
    "calibration_end": "The last day of calibration",
    "observation_end": "The last day observed",
}


def _summaries(inputs: pd.DataFrame, stage: str) -> pd.DataFrame:
    if stage == "full":
        columns = ["repeat_purchases", "recency_period", "age_period", "mean_repeat_value"]
        rows = inputs
    else:
        columns = [
            "calibration_repeat_purchases",
            "calibration_recency_period",
            "calibration_age_period",
            "calibration_mean_repeat_value",
        ]
        rows = inputs[inputs["in_calibration"].astype(bool)]
    frame = rows[columns].astype(float)
    frame.columns = ["x", "t_x", "T", "z"]
    return frame


def _unfitted(stage: str, model: str, reason: str, customers: int, repeaters: int) -> dict:
    return {
        "stage": stage,
        "model": model,
        "status": NOT_FITTED,
        "reason": reason,
        "customers": customers,
        "repeat_customers": repeaters,
    }


def _weak_note(fit: vm.Fit) -> str | None:
    """A note on estimates the data hardly pin down (a standard error above the estimate, or
    none): the likelihood is nearly flat along them. BG/NBD's a and b go that way on data with
    almost no sign of drop-out; the predictions still hold, the parameters' values do not."""
    weak = [
        f"{name} = {value:.3g} (standard error {fit.std_errors[name]:.3g})"
        for name, value in fit.parameters.items()
        if not fit.std_errors[name] <= value
    ]
    if not weak:
        return None
    note = f"{', '.join(weak)}: poorly determined, the likelihood is nearly flat along them"
    if fit.model == vm.BG_NBD:
        a, b = fit.parameters["a"], fit.parameters["b"]
        note += f"; the chance of dropping out after a purchase, a/(a+b), is {a / (a + b):.2g}"
    return note


def _rows(stage: str, fit: vm.Fit, customers: int, repeaters: int, **extra) -> list[dict]:
    status = FITTED if fit.converged else NOT_CONVERGED
    reason = _weak_note(fit) if fit.converged else f"the optimiser stopped: {fit.message}"
    return [
        {
            "stage": stage,
            "model": fit.model,
            "status": status,
            "reason": reason,
            "customers": customers,
            "repeat_customers": repeaters,
            "parameter": name,
            "estimate": value,
            "std_error": fit.std_errors[name],
            "log_likelihood": fit.log_likelihood,
            "iterations": fit.iterations,
            **extra,
        }
        for name, value in fit.parameters.items()
    ]


def _why_not(stage: str, data: pd.DataFrame, holdout_periods: float, minimum: int) -> str | None:
    if data.empty:
        return f"no customer made a purchase in the {stage} period"
    if stage == "calibration" and not holdout_periods > 0:
        return "calibration_end is not before the observation's end: nothing is held out"
    repeaters = int((data["x"] > 0).sum())
    if repeaters < minimum:
        return (
            f"{repeaters} customers with a repeat purchase in the {stage} period; the models "
            f"need at least {minimum} (value.min_repeat_customers)"
        )
    return None


def _fit_stage(stage: str, data: pd.DataFrame, why_not: str | None) -> list[dict]:
    customers, repeaters = len(data), int((data["x"] > 0).sum())
    if why_not is not None:
        return [
            _unfitted(stage, model, why_not, customers, repeaters)
            for model in (vm.BG_NBD, vm.GAMMA_GAMMA)
        ]
    x, t_x, T, z = (data[c].to_numpy() for c in ("x", "t_x", "T", "z"))
    rows = _rows(stage, fitting.fit_bg_nbd(x, t_x, T), customers, repeaters)
    valued = (x > 0) & (z > 0)
    left_out = int(((x > 0) & ~(z > 0)).sum())
    if valued.sum() < 2:
        reason = "fewer than 2 customers have repeat purchases worth more than nothing"
        return [*rows, _unfitted(stage, vm.GAMMA_GAMMA, reason, customers, repeaters)]
    fit = fitting.fit_gamma_gamma(x[valued], z[valued])
    correlation = float(np.corrcoef(x[valued], z[valued])[0, 1])
    gamma_rows = _rows(
        stage, fit, int(valued.sum()), int(valued.sum()), frequency_value_correlation=correlation
    )
    if left_out:
        note = f"{left_out} customers whose repeat purchases are worth nothing or less left out"
        for row in gamma_rows:
            row["reason"] = "; ".join(r for r in (row["reason"], note) if r)
    return rows + gamma_rows


SCHEMA = pa.schema(
    [
        ("stage", pa.string()),
        ("model", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("customers", pa.int64()),
        ("repeat_customers", pa.int64()),
        ("parameter", pa.string()),
        ("estimate", pa.float64()),
        ("std_error", pa.float64()),
        ("log_likelihood", pa.float64()),
        ("iterations", pa.int64()),
        ("frequency_value_correlation", pa.float64()),
        ("calibration_end", pa.date32()),
        ("observation_end", pa.date32()),
    ]
)


def _day(value: object) -> datetime.date | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def _stage_rows(stage: tuple[str, pd.DataFrame, str | None]) -> list[dict]:
    return _fit_stage(*stage)


def model(
    int_customer_value_inputs: pd.DataFrame,
    value_settings: pd.DataFrame,
    parallel: Callable[[Callable[[Any], list[dict]], Iterable[Any]], Iterator[list[dict]]],
) -> pa.Table:
    """The two stages are fitted side by side (on the fit workers): independent fits, a few
    seconds each at a million customers."""
    settings = value_settings.iloc[0]
    inputs = int_customer_value_inputs
    holdout = float(inputs["holdout_length_period"].iloc[0]) if len(inputs) else 0.0
    stages = []
    for stage in STAGES:
        data = _summaries(inputs, stage)
        stages.append(
            (stage, data, _why_not(stage, data, holdout, int(settings["min_repeat_customers"])))
        )
    # Only the fits go to the workers: a stage without one would fork them for nothing.
    fitted = iter(list(parallel(_stage_rows, [stage for stage in stages if stage[2] is None])))
    parts = [_stage_rows(stage) if stage[2] is not None else next(fitted) for stage in stages]
    rows = [row for part in parts for row in part]
    ends = {
        column: _day(inputs[column].iloc[0]) if len(inputs) else None
        for column in ("calibration_end", "observation_end")
    }
    return pa.Table.from_pylist([{**row, **ends} for row in rows], schema=SCHEMA)
