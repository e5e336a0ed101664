"""Period by period through the holdout: the cumulative repeat purchases of the calibration
customers that BG/NBD (fitted on calibration) expects, and the naive baseline's (each customer
keeps their calibration rate). marts.value_holdout_tracking sets the actual ones beside them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa

from python_models import _value_models as vm

COLUMNS = {
    "period": "Periods (value.period) after value.calibration_end: 1 is the first",
    "period_end": "The last day of the period (the holdout's last day for a partial period)",
    "expected_cumulative_purchases": "Repeat purchases BG/NBD expects from the calibration "
    "customers from calibration's end to the period's end; null when it was not fitted",
    "baseline_cumulative_purchases": "The same by the naive baseline",
}


def model(
    int_customer_value_inputs: pd.DataFrame,
    value_model_fits: pd.DataFrame,
    value_settings: pd.DataFrame,
) -> pa.Table:
    inputs = int_customer_value_inputs
    customers = inputs[inputs["in_calibration"].astype(bool)]
    if customers.empty or not inputs["holdout_length_period"].iloc[0] > 0:
        return _table([], [], [], [])
    length = float(inputs["holdout_length_period"].iloc[0])
    calibration_end = pd.Timestamp(inputs["calibration_end"].iloc[0])
    period_days = int(value_settings["period_days"].iloc[0])
    x, t_x, T = (
        customers[c].to_numpy(float)
        for c in (
            "calibration_repeat_purchases",
            "calibration_recency_period",
            "calibration_age_period",
        )
    )
    bg_nbd = vm.fitted_parameters(value_model_fits, "calibration").get(vm.BG_NBD)
    periods = np.arange(1, math.ceil(length) + 1)
    ends = np.minimum(periods, length)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(T > 0, x / T, 0.0).sum()
    if bg_nbd:
        expected = vm.expected_total_purchases(bg_nbd, list(ends), x, t_x, T).tolist()
    else:
        expected = [np.nan] * len(ends)
    days = [(calibration_end + pd.Timedelta(days=round(t * period_days))).date() for t in ends]
    return _table(periods.tolist(), days, expected, (rate * ends).tolist())


def _table(periods: list, days: list, expected: list, baseline: list) -> pa.Table:
    return pa.table(
        {
            "period": pa.array(periods, pa.int64()),
            "period_end": pa.array(days, pa.date32()),
            "expected_cumulative_purchases": pa.array(expected, pa.float64(), from_pandas=True),
            "baseline_cumulative_purchases": pa.array(baseline, pa.float64()),
        }
    )
