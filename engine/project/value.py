"""The ``[value]`` section: how the customer value models (BG/NBD, Gamma-Gamma) read order lines.

Both the SQL that builds their per-customer summaries (sql/intermediate/
int_customer_value_inputs.sql) and the Python model that fits them (python_models/
value_model_fits.py) read these settings from the seed ``config.value_settings``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError

PERIOD_DAYS = {"day": 1, "week": 7}
# A quarter of the observation is held out by default.
DEFAULT_HOLDOUT_DAYS = 91


@dataclass(frozen=True)
class ValueSettings:
    period: str = "week"  # the unit of recency_period, age_period and the holdout's periods
    # The last day of the calibration period. None: the observation's end minus holdout_periods.
    calibration_end: datetime.date | None = None
    holdout_periods: int | None = None  # None: 13 weeks or 91 days
    horizons_days: tuple[int, ...] = (30, 90, 365)  # expected purchases over each
    clv_horizon_days: int = 365
    annual_discount_rate: float = 0.10
    # Fewer customers with a repeat purchase than this: no fit (the status says why).
    min_repeat_customers: int = 20

    @property
    def period_days(self) -> int:
        return PERIOD_DAYS[self.period]

    @property
    def holdout(self) -> int:
        if self.holdout_periods is not None:
            return self.holdout_periods
        return -(-DEFAULT_HOLDOUT_DAYS // self.period_days)


SCHEMA = {
    "period": {"type": "string", "choices": list(PERIOD_DAYS)},
    "calibration_end": {"type": "string"},
    "holdout_periods": {"type": "integer", "min": 1},
    "horizons_days": {"type": "list", "items": {"type": "integer", "min": 1}, "non_empty": True},
    "clv_horizon_days": {"type": "integer", "min": 1},
    "annual_discount_rate": {"type": "number", "min": 0},
    "min_repeat_customers": {"type": "integer", "min": 2},
}


def value_settings(section: dict[str, Any], where: str) -> ValueSettings:
    calibration_end = section.get("calibration_end")
    if calibration_end is not None:
        try:
            calibration_end = datetime.date.fromisoformat(calibration_end)
        except ValueError:
            raise ConfigError(
                f"{where}: key 'value.calibration_end' = {calibration_end!r} is not a date; "
                'expected YYYY-MM-DD, such as "2011-09-09"'
            ) from None
        if "holdout_periods" in section:
            raise ConfigError(
                f"{where}: keys 'value.calibration_end' and 'value.holdout_periods' both say "
                "where calibration ends; give one"
            )
    defaults = ValueSettings()
    return ValueSettings(
        period=section.get("period", defaults.period),
        calibration_end=calibration_end,
        holdout_periods=section.get("holdout_periods"),
        horizons_days=tuple(section.get("horizons_days", defaults.horizons_days)),
        clv_horizon_days=section.get("clv_horizon_days", defaults.clv_horizon_days),
        annual_discount_rate=float(
            section.get("annual_discount_rate", defaults.annual_discount_rate)
        ),
        min_repeat_customers=section.get("min_repeat_customers", defaults.min_repeat_customers),
    )
