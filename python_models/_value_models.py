"""The customer value models' predictions: BG/NBD for purchase counts and whether a customer is
still active (Fader, Hardie & Lee 2005), Gamma-Gamma for the value of a purchase (Fader & Hardie
2013). Their fitting is in _value_fitting.py.

Everything works on per-customer summaries, vectorised over customers: ``x`` repeat purchases,
``t_x`` periods from the first purchase to the last, ``T`` periods from the first purchase to
the end of observation, and ``z`` the mean value of the repeat purchases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

BG_NBD = "bg_nbd"
GAMMA_GAMMA = "gamma_gamma"
PARAMETERS = {BG_NBD: ("r", "alpha", "a", "b"), GAMMA_GAMMA: ("p", "q", "gamma")}
# Steps of this many days when future purchases are discounted (as a month).
DISCOUNT_STEP_DAYS = 30


@dataclass(frozen=True)
class Fit:
    model: str
    parameters: dict[str, float]
    std_errors: dict[str, float]
    log_likelihood: float
    converged: bool
    iterations: int
    message: str


def fitted_parameters(fits: pd.DataFrame, stage: str) -> dict[str, dict[str, float]]:
    """The parameters of each model fitted at ``stage`` (ml.value_model_fits), by model."""
    fitted = fits[(fits["stage"] == stage) & (fits["status"] == "fitted")]
    return {
        str(name): dict(zip(rows["parameter"], rows["estimate"], strict=True))
        for name, rows in fitted.groupby("model")
    }


def probability_alive(
    params: dict[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(still active | x, t_x, T): 1 without a repeat purchase (BG/NBD's customers drop out
    only right after a purchase). The same expression as the SQL macro, term for term."""
    r, alpha, a, b = (params[k] for k in PARAMETERS[BG_NBD])
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        odds = a / (b + x - 1) * np.power((alpha + T) / (alpha + t_x), r + x)
        return np.where(x > 0, 1.0 / (1.0 + odds), 1.0)


def _bought(params: dict[str, float], t: float, x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """E[purchases in the next t periods | x, T, still active]: the paper's equation 10 before
    its division by the odds of being active.

    Its hypergeometric term 2F1(r+x, b+x; a+b+x-1; z) times (1-z)^(r+x) is written by Euler's
    transformation as (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z): the same value without the
    overflow a heavy buyer's x brings.
    """
    r, alpha, a, b = (params[k] for k in PARAMETERS[BG_NBD])
    if t == 0:
        return np.zeros_like(T)
    remaining = (alpha + T) / (alpha + T + t)  # 1 - z
    z = t / (alpha + T + t)
    hypergeometric = special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    return (a + b + x - 1) / (a - 1) * (1 - np.power(remaining, a - 1) * hypergeometric)


@dataclass(frozen=True)
class Pairs:
    """Customers by their distinct (x, T): what BG/NBD's purchase forecast depends on besides
    the probability of being active (a few thousand pairs where customers are millions)."""

    codes: np.ndarray  # each customer's pair
    x: np.ndarray
    T: np.ndarray


def pairs_of(x: np.ndarray, T: np.ndarray) -> Pairs:
    x_codes, x_values = pd.factorize(x)
    T_codes, T_values = pd.factorize(T)
    codes, distinct = pd.factorize(x_codes.astype(np.int64) * len(T_values) + T_codes)
    return Pairs(
        codes,
        np.asarray(x_values[distinct // len(T_values)], dtype=float),
        np.asarray(T_values[distinct % len(T_values)], dtype=float),
    )


def expected_purchases(
    params: dict[str, float], t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[purchases in the next t periods | x, t_x, T] (the paper's equation 10)."""
    pairs = pairs_of(x, T)
    bought = _bought(params, t, pairs.x, pairs.T)[pairs.codes]
    return bought * probability_alive(params, x, t_x, T)


def expected_total_purchases(
    params: dict[str, float], horizons: list[float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """The purchases all the customers together are expected to make in the next t periods,
    for each t of ``horizons``."""
    pairs = pairs_of(x, T)
    alive = np.bincount(pairs.codes, weights=probability_alive(params, x, t_x, T))
    return np.array([_bought(params, t, pairs.x, pairs.T) @ alive for t in horizons])


def expected_mean_value(params: dict[str, float], x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """E[mean purchase value | x, z]: a weighted average of the population mean and the
    customer's own mean; the population mean p*gamma/(q-1) without a repeat purchase."""
    p, q, gamma = (params[k] for k in PARAMETERS[GAMMA_GAMMA])
    own = np.where(x > 0, np.nan_to_num(z), 0.0)
    return p * (gamma + x * own) / (p * x + q - 1)


def discounted_value(
    bg_nbd: dict[str, float],
    mean_value: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    horizon_days: int,
    period_days: int,
    annual_rate: float,
) -> np.ndarray:
    """Customer lifetime value over the horizon: the purchases expected in each step of
    DISCOUNT_STEP_DAYS, times the expected mean value, discounted to today at the annual rate."""
    ends = np.array([*range(DISCOUNT_STEP_DAYS, horizon_days, DISCOUNT_STEP_DAYS), horizon_days])
    pairs = pairs_of(x, T)
    bought = np.array([_bought(bg_nbd, end / period_days, pairs.x, pairs.T) for end in ends])
    in_step = np.diff(bought, axis=0, prepend=0.0)
    discounted = ((1 + annual_rate) ** (-ends / 365.0)) @ in_step
    return discounted[pairs.codes] * probability_alive(bg_nbd, x, t_x, T) * mean_value
