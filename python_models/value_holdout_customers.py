"""The value models fitted on calibration, checked on the holdout customer by customer: the
repeat purchases and spend each calibration customer was predicted to make after
value.calibration_end, what they made, and a naive baseline (each customer keeps buying at their
calibration rate, at their calibration mean value). The baseline says whether the models earn
their place on this data (marts.value_holdout_accuracy)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from python_models import _value_models as vm

COLUMNS = {
    "customer_id": "A customer whose first purchase is in the calibration period",
    "calibration_repeat_purchases": "Their repeat purchases in calibration (x)",
    "predicted_purchases": "Repeat purchases BG/NBD (fitted on calibration) expects in the "
    "holdout; null when it was not fitted",
    "actual_purchases": "Purchases they made in the holdout",
    "baseline_purchases": "The naive baseline: calibration repeat purchases per period of their "
    "calibration age, times the holdout's length",
    "predicted_value": "predicted_purchases times Gamma-Gamma's expected purchase value",
    "actual_value": "The value of their holdout purchases",
    "baseline_value": "baseline_purchases times their calibration mean repeat value",
}


def model(int_customer_value_inputs: pd.DataFrame, value_model_fits: pd.DataFrame) -> pd.DataFrame:
    inputs = int_customer_value_inputs
    customers = inputs[inputs["in_calibration"].astype(bool)]
    x, t_x, T, z, actual, actual_value, length = (
        customers[c].to_numpy(float)
        for c in (
            "calibration_repeat_purchases",
            "calibration_recency_period",
            "calibration_age_period",
            "calibration_mean_repeat_value",
            "holdout_purchases",
            "holdout_value",
            "holdout_length_period",
        )
    )
    params = vm.fitted_parameters(value_model_fits, "calibration")
    predicted = np.full(len(customers), np.nan)
    predicted_value = predicted.copy()
    if vm.BG_NBD in params and len(customers):
        predicted = vm.expected_purchases(params[vm.BG_NBD], float(length[0]), x, t_x, T)
    if vm.GAMMA_GAMMA in params:
        predicted_value = predicted * vm.expected_mean_value(params[vm.GAMMA_GAMMA], x, z)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(T > 0, x / T, 0.0)
    baseline = rate * length
    return pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_numpy(),
            "calibration_repeat_purchases": x.astype("int64"),
            "predicted_purchases": predicted,
            "actual_purchases": actual.astype("int64"),
            "baseline_purchases": baseline,
            "predicted_value": predicted_value,
            "actual_value": actual_value,
            "baseline_value": baseline * np.nan_to_num(z),
        }
    )
