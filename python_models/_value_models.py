"""The customer value models, by maximum likelihood: BG/NBD for purchase counts and whether a
customer is still active (Fader, Hardie & Lee 2005), Gamma-Gamma for the value of a purchase
(Fader & Hardie 2013).

Everything works on per-customer summaries, vectorised over customers: ``x`` repeat purchases,
``t_x`` periods from the first purchase to the last, ``T`` periods from the first purchase to
the end of observation, and ``z`` the mean value of the repeat purchases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

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


def bg_nbd_log_likelihood(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Each customer's log-likelihood (the paper's equation 6, in logs)."""
    r, alpha, a, b = params
    common = (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + special.gammaln(a + b)
        + special.gammaln(b + x)
        - special.gammaln(b)
        - special.gammaln(a + b + x)
    )
    survived = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    dropped = np.full_like(survived, -np.inf)
    xr, tr = x[repeat], t_x[repeat]
    dropped[repeat] = np.log(a) - np.log(b + xr - 1) - (r + xr) * np.log(alpha + tr)
    return common + np.logaddexp(survived, dropped)


def gamma_gamma_log_likelihood(params: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Each customer's log-likelihood of their mean repeat value z over x purchases."""
    p, q, gamma = params
    px = p * x
    return (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(z)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * z)
    )


def _collapsed(*columns: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Distinct rows and how many customers share each: the likelihood is a weighted sum."""
    rows, counts = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    return tuple(rows[:, i] for i in range(rows.shape[1])), counts.astype(float)


def _maximize(
    log_likelihood: Callable[[np.ndarray], np.ndarray],
    weights: np.ndarray,
    start: np.ndarray,
    model: str,
) -> Fit:
    """Maximum likelihood over the parameters' logarithms (all are positive)."""
    total = weights.sum()

    def objective(log_params: np.ndarray) -> float:
        value = -np.dot(weights, log_likelihood(np.exp(log_params))) / total
        return float(value) if np.isfinite(value) else 1e300

    result = optimize.minimize(
        objective,
        np.log(start),
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 5000},
    )
    polished = optimize.minimize(
        objective,
        result.x,
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 4000},
    )
    best = polished if polished.fun <= result.fun else result
    estimate = np.exp(best.x)
    log_likelihood_value = -best.fun * total
    names = PARAMETERS[model]
    errors = _standard_errors(lambda p: float(np.dot(weights, log_likelihood(p))), estimate)
    finite = np.isfinite(log_likelihood_value) and np.all(np.isfinite(estimate))
    converged = bool(polished.success and finite and np.all(np.isfinite(errors)))
    return Fit(
        model=model,
        parameters=dict(zip(names, map(float, estimate), strict=True)),
        std_errors=dict(zip(names, map(float, errors), strict=True)),
        log_likelihood=float(log_likelihood_value),
        converged=converged,
        iterations=int(result.nit + polished.nit),
        message=str(polished.message if not polished.success else result.message),
    )


def _standard_errors(log_likelihood: Callable[[np.ndarray], float], estimate: np.ndarray):
    """From the observed information: the inverse of minus the log-likelihood's Hessian,
    by central differences with steps relative to each parameter."""
    k = len(estimate)
    steps = 1e-4 * estimate
    hessian = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            total = 0.0
            for si, sj, sign in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
                shifted = estimate.copy()
                shifted[i] += si * steps[i]
                shifted[j] += sj * steps[j]
                total += sign * log_likelihood(shifted)
            hessian[i, j] = hessian[j, i] = total / (4 * steps[i] * steps[j])
    try:
        covariance = np.linalg.inv(-hessian)
    except np.linalg.LinAlgError:
        return np.full(k, np.nan)
    variances = np.diag(covariance)
    return np.where(variances > 0, np.sqrt(np.abs(variances)), np.nan)


def fit_bg_nbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> Fit:
    (xs, txs, Ts), weights = _collapsed(x, t_x, T)
    start = np.array([1.0, max(float(np.mean(T)), 1e-3), 1.0, 1.0])
    return _maximize(lambda p: bg_nbd_log_likelihood(p, xs, txs, Ts), weights, start, BG_NBD)


def fit_gamma_gamma(x: np.ndarray, z: np.ndarray) -> Fit:
    (xs, zs), weights = _collapsed(x, z)
    start = np.array([1.0, 1.0, max(float(np.mean(z)), 1e-3)])
    return _maximize(lambda p: gamma_gamma_log_likelihood(p, xs, zs), weights, start, GAMMA_GAMMA)


def probability_alive(
    params: dict[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(still active | x, t_x, T): 1 without a repeat purchase (BG/NBD's customers drop out
    only right after a purchase). The same expression as the SQL macro, term for term."""
    r, alpha, a, b = (params[k] for k in PARAMETERS[BG_NBD])
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        odds = a / (b + x - 1) * np.power((alpha + T) / (alpha + t_x), r + x)
        return np.where(x > 0, 1.0 / (1.0 + odds), 1.0)


def expected_purchases(
    params: dict[str, float], t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[purchases in the next t periods | x, t_x, T] (the paper's equation 10).

    Its hypergeometric term 2F1(r+x, b+x; a+b+x-1; z) times (1-z)^(r+x) is written by Euler's
    transformation as (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z): the same value without the
    overflow a heavy buyer's x brings.
    """
    r, alpha, a, b = (params[k] for k in PARAMETERS[BG_NBD])
    if t == 0:
        return np.zeros_like(np.asarray(x, dtype=float))
    remaining = (alpha + T) / (alpha + T + t)  # 1 - z
    z = t / (alpha + T + t)
    hypergeometric = special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    bought = (a + b + x - 1) / (a - 1) * (1 - np.power(remaining, a - 1) * hypergeometric)
    return bought * probability_alive(params, x, t_x, T)


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
    total = np.zeros_like(np.asarray(x, dtype=float))
    before = np.zeros_like(total)
    ends = [*list(range(DISCOUNT_STEP_DAYS, horizon_days, DISCOUNT_STEP_DAYS)), horizon_days]
    for end in ends:
        cumulative = expected_purchases(bg_nbd, end / period_days, x, t_x, T)
        total += (cumulative - before) / (1 + annual_rate) ** (end / 365.0)
        before = cumulative
    return total * mean_value
