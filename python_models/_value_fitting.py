"""Maximum-likelihood fits of BG/NBD and Gamma-Gamma on per-customer summaries.

Each model's log-likelihood comes with its analytic gradient, so L-BFGS-B needs one evaluation
per step, over the parameters' logarithms (all are positive). Terms that depend on a customer's
purchase count alone are computed once per distinct count. Standard errors come from the
observed information: the Hessian by central differences of the analytic gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import optimize, special

from python_models._value_models import BG_NBD, GAMMA_GAMMA, PARAMETERS, Fit

# Log-parameters stay within e^-20 .. e^20: on a flat ridge (no sign of drop-out, say) the
# optimiser would otherwise walk on until the terms overflow.
LOG_BOUND = 20.0
# A fit has converged when the largest gradient of the mean log-likelihood (per log-parameter)
# is this small, whatever the optimiser's own stopping rule said.
GRADIENT_TOLERANCE = 1e-6

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


class _Counts:
    """Distinct purchase counts: a term that depends on a customer's count alone is computed
    once per count."""

    def __init__(self, x: np.ndarray) -> None:
        self.values, self.index = np.unique(x, return_inverse=True)

    def of(self, term: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        return term(self.values)[self.index]

    def gammaln(self, shift: float) -> np.ndarray:
        return self.of(lambda x: special.gammaln(x + shift))

    def digamma(self, shift: float) -> np.ndarray:
        return self.of(lambda x: special.digamma(x + shift))

    def digamma_scaled(self, scale: float) -> np.ndarray:
        return self.of(lambda x: special.digamma(scale * x))


def bg_nbd_objective(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray) -> Objective:
    """Log-likelihood (the paper's equation 6, in logs) and gradient in the natural parameters,
    weighted by how many customers share each summary."""
    counts, repeat = _Counts(x), x > 0

    def evaluate(params: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = params
        log_age, log_last = np.log(alpha + T), np.log(alpha + t_x)
        survived = -(r + x) * log_age
        with np.errstate(divide="ignore", invalid="ignore"):
            dropped = np.where(repeat, np.log(a) - np.log(b + x - 1) - (r + x) * log_last, -np.inf)
        total = np.logaddexp(survived, dropped)
        w_drop = np.exp(dropped - total)
        w_live = 1.0 - w_drop
        value = (
            counts.gammaln(r)
            - special.gammaln(r)
            + r * np.log(alpha)
            + special.gammaln(a + b)
            + counts.gammaln(b)
            - special.gammaln(b)
            - counts.gammaln(a + b)
            + total
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse_b = np.where(repeat, 1.0 / (b + x - 1), 0.0)
        shared = special.digamma(a + b) - counts.digamma(a + b)
        gradient = np.array(
            [
                w
                @ (
                    counts.digamma(r)
                    - special.digamma(r)
                    + np.log(alpha)
                    - w_live * log_age
                    - w_drop * log_last
                ),
                w @ (r / alpha - (r + x) * (w_live / (alpha + T) + w_drop / (alpha + t_x))),
                w @ (shared + w_drop / a),
                w @ (shared + counts.digamma(b) - special.digamma(b) - w_drop * inverse_b),
            ]
        )
        return float(w @ value), gradient

    return evaluate


def gamma_gamma_objective(x: np.ndarray, z: np.ndarray, w: np.ndarray) -> Objective:
    """Log-likelihood of each customer's mean repeat value z over x purchases, and gradient."""
    counts, log_x, log_z = _Counts(x), np.log(x), np.log(z)

    def evaluate(params: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, gamma = params
        px = p * x
        log_spend = np.log(gamma + x * z)
        value = (
            counts.of(lambda n: special.gammaln(p * n + q) - special.gammaln(p * n))
            - special.gammaln(q)
            + q * np.log(gamma)
            + (px - 1) * log_z
            + px * log_x
            - (px + q) * log_spend
        )
        both = counts.of(lambda n: special.digamma(p * n + q))
        gradient = np.array(
            [
                w @ (x * (both - counts.digamma_scaled(p) + log_z + log_x - log_spend)),
                w @ (both - special.digamma(q) + np.log(gamma) - log_spend),
                w @ (q / gamma - (px + q) / (gamma + x * z)),
            ]
        )
        return float(w @ value), gradient

    return evaluate


def _collapsed(*columns: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Distinct rows and how many customers share each: the likelihood is a weighted sum."""
    counts = pd.DataFrame(dict(enumerate(columns))).value_counts(sort=False, dropna=False)
    rows = counts.index
    distinct = tuple(rows.get_level_values(i).to_numpy(float) for i in range(len(columns)))
    return distinct, counts.to_numpy(float)


def _maximize(objective: Objective, customers: float, start: np.ndarray, model: str) -> Fit:
    def negative_mean(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        value, gradient = objective(params)
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return 1e300, np.zeros_like(log_params)
        return -value / customers, -gradient * params / customers

    result = optimize.minimize(
        negative_mean,
        np.log(start),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-LOG_BOUND, LOG_BOUND)] * len(start),
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000},
    )
    estimate = np.exp(result.x)
    value, gradient = objective(estimate)
    steepest = float(np.max(np.abs(gradient * estimate))) / customers
    names = PARAMETERS[model]
    converged = bool(np.isfinite(value) and steepest < GRADIENT_TOLERANCE)
    message = str(result.message)
    if not converged:
        message += f" (largest gradient {steepest:.2g} after {result.nit} iterations)"
    return Fit(
        model=model,
        parameters=dict(zip(names, map(float, estimate), strict=True)),
        std_errors=dict(zip(names, map(float, _standard_errors(objective, estimate)), strict=True)),
        log_likelihood=float(value),
        converged=converged,
        iterations=int(result.nit),
        message=message,
    )


def _standard_errors(objective: Objective, estimate: np.ndarray) -> np.ndarray:
    """Square roots of the diagonal of the inverse observed information."""
    k = len(estimate)
    hessian = np.empty((k, k))
    for j in range(k):
        step = np.zeros(k)
        step[j] = 1e-5 * estimate[j]
        upper, lower = objective(estimate + step)[1], objective(estimate - step)[1]
        hessian[:, j] = (upper - lower) / (2 * step[j])
    hessian = (hessian + hessian.T) / 2
    try:
        covariance = np.linalg.inv(-hessian)
    except np.linalg.LinAlgError:
        return np.full(k, np.nan)
    variances = np.diag(covariance)
    return np.where(variances > 0, np.sqrt(np.abs(variances)), np.nan)


def fit_bg_nbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> Fit:
    (xs, txs, Ts), weights = _collapsed(x, t_x, T)
    start = np.array([1.0, max(float(np.mean(T)), 1e-3), 1.0, 1.0])
    objective = bg_nbd_objective(xs, txs, Ts, weights)
    return _maximize(objective, float(weights.sum()), start, BG_NBD)


def fit_gamma_gamma(x: np.ndarray, z: np.ndarray) -> Fit:
    (xs, zs), weights = _collapsed(x, z)
    start = np.array([1.0, 1.0, max(float(np.mean(z)), 1e-3)])
    objective = gamma_gamma_objective(xs, zs, weights)
    return _maximize(objective, float(weights.sum()), start, GAMMA_GAMMA)
