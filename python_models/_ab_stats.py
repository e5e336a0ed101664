"""The statistics of a segment-aware A/B test, as plain functions of arrays.

Every test is the library's: Welch's t-test (scipy) for amounts, the two-proportion z-test
(statsmodels) for conversions with Fisher's exact test (scipy) when a cell is small, Holm and
Benjamini-Hochberg (statsmodels), chi-square for sample-ratio mismatch (scipy), power from
statsmodels. What is computed here is only the glue: CUPED's adjustment, Cochran's Q, the
relative lift's delta-method interval, and the simulated power of Fisher's exact test, which has
no closed form. For that simulation the two tests' p-values are computed for thousands of
tables at once (``two_by_two_p_values``), from scipy's hypergeometric and normal distributions;
the tests check them against scipy's and statsmodels' own tests, table by table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import ndtr
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest

CONVERSION, AMOUNT = "conversion", "amount"
SRM_THRESHOLD = 0.001
EXACT_BELOW = 5  # Fisher's exact test when any cell of the 2x2 table is below this
FISHER, TWO_PROPORTION_Z = "fisher_exact", "two_proportion_z"
POWER_DRAWS = 4_000  # simulated experiments for the power of Fisher's exact test
FISHER_TIE_TOLERANCE = 1e-14  # scipy's: tables this close in probability count as as extreme
UINT64 = np.uint64


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a fast, well-distributed 64-bit hash, vectorized."""
    with np.errstate(over="ignore"):
        z = values.astype(UINT64)
        z = (z ^ (z >> UINT64(30))) * UINT64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> UINT64(27))) * UINT64(0x94D049BB133111EB)
        return z ^ (z >> UINT64(31))


def bucket(experiment: str, customer_keys: np.ndarray) -> np.ndarray:
    """A uniform number in [0, 1) per customer that depends only on experiment and customer.

    As experimentation platforms do: a customer's arm never changes between refreshes, and two
    experiments (different names) split the same customers independently.
    """
    salt = int.from_bytes(hashlib.sha256(experiment.encode()).digest()[:8], "little")
    keys = np.asarray(customer_keys, dtype=np.int64).astype(UINT64)
    with np.errstate(over="ignore"):
        mixed = _mix(_mix(keys ^ UINT64(salt)) + UINT64(salt))
    return (mixed >> UINT64(11)).astype(np.float64) / float(1 << 53)


ARMS = ("control", "treatment")


def treated(experiment: str, customer_keys: np.ndarray, treatment_share: float) -> np.ndarray:
    """Whether each customer is in the treatment arm."""
    return bucket(experiment, customer_keys) < treatment_share


def assign(experiment: str, customer_keys: np.ndarray, treatment_share: float) -> np.ndarray:
    """Each customer's arm, by name."""
    return np.where(treated(experiment, customer_keys, treatment_share), ARMS[1], ARMS[0])


@dataclass(frozen=True)
class Truth:
    metric: str
    baseline: float
    baseline_sd: float  # amounts only
    effect: float  # absolute: rate points for conversions, currency for amounts
    correlation: float  # between the pre-period value and the outcome


def simulate(
    truth: Truth, treated: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes and correlated pre-period values with the configured truth, exactly.

    Amounts: normal. Conversions: a Gaussian copula, so the rate in each arm is exactly the
    configured one and the pre-period conversion is correlated with the outcome.
    """
    n = len(treated)
    z = rng.standard_normal(n)
    noise = rng.standard_normal(n)
    latent = truth.correlation * z + np.sqrt(1 - truth.correlation**2) * noise
    if truth.metric == AMOUNT:
        pre = truth.baseline + truth.baseline_sd * z
        outcome = truth.baseline + truth.effect * treated + truth.baseline_sd * latent
        return outcome, pre
    rate = np.clip(truth.baseline + truth.effect * treated, 0.0, 1.0)
    # ndtr is the standard normal CDF that stats.norm.cdf calls after checking its arguments:
    # the same bits in a fifth of the time (10M customers: 1.4 s of norm.cdf).
    outcome = (ndtr(latent) < rate).astype(np.float64)
    pre = (ndtr(z) < truth.baseline).astype(np.float64)
    return outcome, pre


def srm_pvalue(n_control: int, n_treatment: int, treatment_share: float) -> float:
    total = n_control + n_treatment
    if total == 0:
        return 1.0
    expected = [total * (1 - treatment_share), total * treatment_share]
    return float(stats.chisquare([n_control, n_treatment], f_exp=expected).pvalue)


def cuped(
    y_control: np.ndarray, y_treatment: np.ndarray, x_control: np.ndarray, x_treatment: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """CUPED-adjusted outcomes (Deng et al. 2013) and the variance reduction achieved."""
    y = np.concatenate([y_control, y_treatment])
    x = np.concatenate([x_control, x_treatment])
    centred_x = x - x.mean()
    spread = centred_x @ centred_x
    # cov(y, x) / var(x), the least-squares slope, without np.cov's stacked copy of both arrays
    # (an experiment may hold every customer).
    theta = (y - y.mean()) @ centred_x / spread if spread > 0 else 0.0
    adjusted = y - theta * centred_x
    variance_y = np.var(y, ddof=1)
    reduction = 1 - np.var(adjusted, ddof=1) / variance_y if variance_y > 0 else 0.0
    return adjusted[: len(y_control)], adjusted[len(y_control) :], float(reduction)


def welch_interval(
    a: np.ndarray, b: np.ndarray, alpha: float
) -> tuple[float, float, float, float, float]:
    """Difference of means b - a, its standard error, CI and Welch's p-value."""
    diff = float(b.mean() - a.mean())
    var_a, var_b = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = float(np.sqrt(var_a + var_b))
    if se == 0:
        return diff, 0.0, diff, diff, 1.0 if diff == 0 else 0.0
    dof = (var_a + var_b) ** 2 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))
    half = float(stats.t.ppf(1 - alpha / 2, dof) * se)
    p_value = float(stats.ttest_ind(b, a, equal_var=False).pvalue)
    return diff, se, diff - half, diff + half, p_value


def _two_by_two_p(
    successes_a: int, size_a: int, successes_b: int, size_b: int
) -> tuple[float, str]:
    """The p-value of the test proportion_test uses for this table, and the test's name."""
    cells = [successes_b, size_b - successes_b, successes_a, size_a - successes_a]
    if min(cells) < EXACT_BELOW:
        table = [[cells[0], cells[1]], [cells[2], cells[3]]]
        return float(stats.fisher_exact(table).pvalue), FISHER
    if successes_a + successes_b in (0, size_a + size_b):
        return 1.0, TWO_PROPORTION_Z
    z_test = proportions_ztest([successes_b, successes_a], [size_b, size_a])
    return float(z_test[1]), TWO_PROPORTION_Z


def wilson_interval(successes: Any, size: Any, z: float) -> tuple[Any, Any]:
    """Wilson's score interval for a proportion (arrays work too)."""
    rate = successes / size
    shrink = 1 + z * z / size
    centre = (rate + z * z / (2 * size)) / shrink
    half = z * np.sqrt(rate * (1 - rate) / size + z * z / (4 * size * size)) / shrink
    return centre - half, centre + half


def newcombe_interval(
    successes_a: Any, size_a: Any, successes_b: Any, size_b: Any, alpha: float
) -> tuple[Any, Any]:
    """Newcombe's hybrid score interval for the difference of proportions b - a (his method
    10), built from each arm's Wilson interval. Unlike Wald's it never collapses (0 of n in both
    arms still leaves a width) and keeps its coverage at small cells, where Fisher's test is
    used; arrays work too, for simulation."""
    z = float(stats.norm.ppf(1 - alpha / 2))
    rate_a, rate_b = successes_a / size_a, successes_b / size_b
    low_a, high_a = wilson_interval(successes_a, size_a, z)
    low_b, high_b = wilson_interval(successes_b, size_b, z)
    diff = rate_b - rate_a
    low = diff - np.sqrt((rate_b - low_b) ** 2 + (high_a - rate_a) ** 2)
    high = diff + np.sqrt((high_b - rate_b) ** 2 + (rate_a - low_a) ** 2)
    return low, high


def relative_proportion_interval(
    successes_a: Any, size_a: Any, successes_b: Any, size_b: Any, alpha: float
) -> tuple[Any, Any, Any]:
    """Relative lift of proportions b / a - 1 with the MOVER-R interval of Donner and Zou
    (2012), built from each arm's Wilson interval: the delta method's under-covers where a cell
    is small (0.91 at 25/14 users). NaN where arm a has no success (no ratio)."""
    z = float(stats.norm.ppf(1 - alpha / 2))
    successes_a, successes_b = np.asarray(successes_a, float), np.asarray(successes_b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_a, rate_b = successes_a / size_a, successes_b / size_b
        low_a, high_a = wilson_interval(successes_a, size_a, z)
        low_b, high_b = wilson_interval(successes_b, size_b, z)
        product = rate_a * rate_b
        under = product**2 - low_b * high_a * (2 * rate_a - high_a) * (2 * rate_b - low_b)
        over = product**2 - high_b * low_a * (2 * rate_a - low_a) * (2 * rate_b - high_b)
        low = (product - np.sqrt(np.maximum(under, 0))) / (high_a * (2 * rate_a - high_a))
        high = (product + np.sqrt(np.maximum(over, 0))) / (low_a * (2 * rate_a - low_a))
        ratio = rate_b / rate_a
    missing = successes_a == 0
    return tuple(np.where(missing, np.nan, v - 1) for v in (ratio, low, high))  # type: ignore[return-value]


def proportion_test(
    a: np.ndarray, b: np.ndarray, alpha: float
) -> tuple[float, float, float, float, float, str]:
    """Rate difference b - a, its standard error, Newcombe's score interval, and the p-value of
    the z-test (Fisher's exact test when a cell is small)."""
    rate_a, rate_b = a.mean(), b.mean()
    diff = float(rate_b - rate_a)
    se = float(np.sqrt(rate_a * (1 - rate_a) / len(a) + rate_b * (1 - rate_b) / len(b)))
    low, high = newcombe_interval(a.sum(), len(a), b.sum(), len(b), alpha)
    p_value, test = _two_by_two_p(int(a.sum()), len(a), int(b.sum()), len(b))
    return diff, se, float(low), float(high), p_value, test


def relative_interval(
    mean_treatment: float, se_treatment: float, mean_control: float, se_control: float, alpha: float
) -> tuple[float, float, float]:
    """Relative lift t/c - 1 with the delta method's interval.

    The two arms' means are independent, but the lift's numerator and its base share the
    control mean: Var(t/c) ~ Var(t)/c^2 + t^2 Var(c)/c^4.
    """
    if mean_control == 0:
        return float("nan"), float("nan"), float("nan")
    relative = mean_treatment / mean_control - 1
    se = np.sqrt(
        se_treatment**2 / mean_control**2 + mean_treatment**2 * se_control**2 / mean_control**4
    )
    half = float(stats.norm.ppf(1 - alpha / 2) * se)
    return float(relative), float(relative - half), float(relative + half)


def simulated_power(
    n_control: int,
    n_treatment: int,
    rate_control: float,
    rate_treatment: float,
    alpha: float,
    draws: int,
    seed: int,
) -> float:
    """Power of proportion_test's own test (exact where a cell is small), by simulation.

    Fisher's exact test has no closed-form power. The draws are binomial counts per arm; each
    distinct table is tested once.
    """
    rng = np.random.default_rng(seed)
    a = rng.binomial(n_control, rate_control, draws)
    b = rng.binomial(n_treatment, rate_treatment, draws)
    tables, counts = np.unique(np.stack([a, b], axis=1), axis=0, return_counts=True)
    p_values = two_by_two_p_values(tables[:, 0], n_control, tables[:, 1], n_treatment)
    return float(counts[p_values < alpha].sum() / draws)


def two_by_two_p_values(
    successes_a: np.ndarray, size_a: int, successes_b: np.ndarray, size_b: int
) -> np.ndarray:
    """``_two_by_two_p``'s p-value for each table of two arms of these sizes: one call, not
    one scipy or statsmodels test per table (a millisecond each, hundreds of tables per
    simulated power)."""
    cells = np.stack([successes_b, size_b - successes_b, successes_a, size_a - successes_a])
    exact = cells.min(axis=0) < EXACT_BELOW
    p_values = _pooled_z_p_values(successes_a, size_a, successes_b, size_b)
    p_values[exact] = _fisher_p_values(successes_a[exact], size_a, successes_b[exact], size_b)
    return p_values


def _pooled_z_p_values(
    successes_a: np.ndarray, size_a: int, successes_b: np.ndarray, size_b: int
) -> np.ndarray:
    """The two-proportion z-test's two-sided p-value with the pooled variance, as statsmodels'
    ``proportions_ztest`` computes it; 1 where neither or both arms all succeeded (no
    variance)."""
    pooled = (successes_a + successes_b) / (size_a + size_b)
    spread = np.sqrt(pooled * (1 - pooled) * (1 / size_b + 1 / size_a))
    degenerate = spread == 0
    z = (successes_b / size_b - successes_a / size_a) / np.where(degenerate, 1, spread)
    return np.where(degenerate, 1.0, 2 * stats.norm.sf(np.abs(z)))


def _fisher_p_values(
    successes_a: np.ndarray, size_a: int, successes_b: np.ndarray, size_b: int
) -> np.ndarray:
    """Fisher's exact test, two-sided as scipy defines it: given both margins, the probability
    of every table no more likely than the observed one (with scipy's relative tolerance for
    ties), summed over the hypergeometric law of arm b's successes."""
    totals = successes_a + successes_b
    p_values = np.empty(len(totals))
    for total in np.unique(totals):
        support = np.arange(max(0, total - size_a), min(size_b, total) + 1)
        law = stats.hypergeom.pmf(support, size_a + size_b, size_b, total)
        tables = totals == total
        observed = law[successes_b[tables] - support[0]]
        as_extreme = law[None, :] <= observed[:, None] * (1 + FISHER_TIE_TOLERANCE)
        p_values[tables] = np.minimum(as_extreme @ law, 1.0)
    return p_values


@dataclass(frozen=True)
class PowerPlan:
    """What the power figures are computed for: the test used and the alpha it is judged at."""

    test: str
    alpha: float
    alpha_note: str  # how that alpha came about, e.g. "alpha/6 (Holm's first step, 6 segments)"
    expected_effect: float
    power: float
    seed: int
    # Which control mean the figures plan for, in words: "the configured baseline 0.03".
    baseline_note: str = "the observed control"


def power_figures(
    metric: str,
    n_control: int,
    n_treatment: int,
    control_mean: float,
    control_sd: float,
    plan: PowerPlan,
) -> dict[str, Any]:
    """Achieved power for the planned effect, the MDE at this size, and the size needed, for
    the test used at the alpha it is judged at; ``power_method`` says which."""
    if n_control < 2 or n_treatment < 2:
        return {"achieved_power": float("nan"), "mde": float("nan"), "users_needed": None}
    ratio = n_treatment / n_control
    alpha = plan.alpha
    if metric == CONVERSION:
        base = min(max(control_mean, 1e-6), 1 - 1e-6)
        target = min(max(base + plan.expected_effect, 1e-6), 1 - 1e-6)
        effect_size = abs(proportion_effectsize(target, base))
        if effect_size == 0:  # every control user converted (or none could): no room to move
            return {
                "achieved_power": float("nan"),
                "power_alpha": alpha,
                "power_method": f"not computed: a rate of {control_mean:.3g} leaves no room for "
                f"the planned effect; planned at {plan.baseline_note}",
                "mde": float("nan"),
                "users_needed": None,
            }
        solver = NormalIndPower()
        achieved = _scalar(solver.power(effect_size, n_control, alpha, ratio=ratio))
        method = f"two-proportion z-test at {plan.alpha_note}, closed form"
        if plan.test == FISHER:
            achieved = simulated_power(
                n_control, n_treatment, base, target, alpha, POWER_DRAWS, plan.seed
            )
            method = (
                f"the test used (Fisher's exact where a cell is below {EXACT_BELOW}) at "
                f"{plan.alpha_note}, simulated with {POWER_DRAWS:,} draws"
            )
        mde_h = _scalar(solver.solve_power(None, n_control, alpha, plan.power, ratio=ratio))
        # Back from Cohen's h to a rate difference above the control rate.
        mde = float(np.sin(np.arcsin(np.sqrt(base)) + mde_h / 2) ** 2 - base)
        needed_control = solver.solve_power(effect_size, None, alpha, plan.power, ratio=ratio)
    else:
        sd = control_sd if control_sd > 0 else 1.0
        effect_size = abs(plan.expected_effect) / sd
        solver = TTestIndPower()
        achieved = _scalar(solver.power(effect_size, n_control, alpha, ratio=ratio))
        if not np.isfinite(achieved):
            # statsmodels' noncentral t returns NaN at large sizes; there t is normal anyway.
            achieved = _scalar(NormalIndPower().power(effect_size, n_control, alpha, ratio=ratio))
        method = f"Welch t-test at {plan.alpha_note}, closed form"
        mde = _scalar(solver.solve_power(None, n_control, alpha, plan.power, ratio=ratio)) * sd
        needed_control = solver.solve_power(effect_size, None, alpha, plan.power, ratio=ratio)
    per_arm = _scalar(needed_control)
    return {
        "achieved_power": float(achieved),
        "power_alpha": alpha,
        "power_method": f"{method}; planned at {plan.baseline_note}",
        "mde": float(mde),
        # Whole users in each arm, in the experiment's split.
        "users_needed": int(np.ceil(per_arm) + np.ceil(per_arm * ratio)),
    }


def _scalar(value: Any) -> float:
    """statsmodels' solvers return 0-d or 1-element arrays; take the number."""
    return float(np.asarray(value, dtype=np.float64).reshape(-1)[0])


def cochran_q(estimates: np.ndarray, standard_errors: np.ndarray) -> tuple[float, float]:
    """Cochran's Q for heterogeneity of effects across segments, and its chi-square p-value."""
    usable = standard_errors > 0
    if usable.sum() < 2:
        return float("nan"), float("nan")
    weights = 1 / standard_errors[usable] ** 2
    pooled = np.sum(weights * estimates[usable]) / weights.sum()
    q = float(np.sum(weights * (estimates[usable] - pooled) ** 2))
    return q, float(stats.chi2.sf(q, usable.sum() - 1))


def adjust(p_values: np.ndarray, method: str) -> np.ndarray:
    if len(p_values) == 0:
        return p_values
    return multipletests(p_values, method=method)[1]


def _planned_at(row: dict[str, Any]) -> str:
    """'at the configured baseline 0.03', from the row's power_method."""
    return "planned " + str(row.get("power_method", "")).rpartition("; planned ")[2]


def p_text(p_value: float) -> str:
    """A p-value as a reader takes it in: below 0.0001 it is just that."""
    return "p < 0.0001" if p_value < 1e-4 else f"p = {p_value:.3g}"


def decide(row: dict[str, Any], p_value: float, alpha: float) -> tuple[str, str]:
    """ship / don't ship / inconclusive / invalid, with the reason in words.

    Pre-registered: ship when the treatment is significantly better; don't ship when it is
    significantly worse, or when the interval at the alpha the row is judged at
    (``decision_ci_high``) lies wholly below the planned effect, which it then rules out;
    inconclusive otherwise. Power after the fact decides nothing.
    """
    if row["srm_p_value"] < SRM_THRESHOLD:
        return "invalid", (
            f"sample-ratio mismatch (p = {row['srm_p_value']:.2g}): the split is broken, "
            "so no estimate can be trusted"
        )
    if p_value < alpha and row["absolute_lift"] > 0:
        return "ship", f"treatment is better ({p_text(p_value)}, below alpha {alpha:g})"
    if p_value < alpha:
        return "don't ship", f"treatment is worse ({p_text(p_value)}, below alpha {alpha:g})"
    planned, upper = row["planned_effect"], row["decision_ci_high"]
    if upper < planned:
        return "don't ship", (
            f"no significant effect ({p_text(p_value)}), and the interval's upper bound "
            f"{upper:.3g} is below the planned effect {planned:g}: that effect is ruled out"
        )
    needed = row.get("users_needed")
    return "inconclusive", (
        f"not significant ({p_text(p_value)}) and the planned effect {planned:g} is not ruled "
        f"out (upper bound {upper:.3g}; {row['achieved_power']:.0%} power"
        + (f"; about {needed:,} users needed, {_planned_at(row)})" if needed else ")")
    )
