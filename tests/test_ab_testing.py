"""A/B testing: figures checked against scipy and statsmodels, and the properties that must hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.api import OLS, add_constant
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    proportions_ztest,
)

from python_models import _ab_stats as ab
from python_models._experiments import parse
from python_models.ab_segment_results import analyse

from conftest import ProjectCopy


def experiment(**overrides):
    return parse("test", {"simulate": True, **overrides})


def simulated_frame(
    exp_metric: str, n: int, effect: float, correlation: float, seed: int, share: float = 0.5
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    keys = np.arange(n)
    arms = ab.assign(f"exp-{seed}", keys, share)
    truth = ab.Truth(
        exp_metric, 0.3 if exp_metric == "conversion" else 50.0, 20.0, effect, correlation
    )
    outcome, pre = ab.simulate(truth, (arms == "treatment").astype(float), rng)
    return pd.DataFrame({"arm": arms, "outcome": outcome, "pre_period_value": pre})


def test_welch_p_value_and_interval_match_scipy() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 3, 80), rng.normal(11, 5, 120)
    diff, _, low, high, p_value = ab.welch_interval(a, b, 0.05)
    reference = stats.ttest_ind(b, a, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert diff == pytest.approx(b.mean() - a.mean())
    assert (low, high) == pytest.approx((interval.low, interval.high), rel=1e-10)


def test_two_proportion_test_matches_statsmodels_and_goes_exact_when_small() -> None:
    rng = np.random.default_rng(2)
    a, b = (rng.random(400) < 0.2).astype(float), (rng.random(420) < 0.26).astype(float)
    _, _, low, high, p_value, test = ab.proportion_test(a, b, 0.05)
    assert test == "two_proportion_z"
    expected_p = proportions_ztest([b.sum(), a.sum()], [len(b), len(a)])[1]
    assert p_value == pytest.approx(expected_p, rel=1e-12)
    expected_ci = confint_proportions_2indep(
        b.sum(), len(b), a.sum(), len(a), method="newcomb", compare="diff"
    )
    assert (low, high) == pytest.approx(expected_ci, rel=1e-10)

    small_a, small_b = np.array([1, 0, 0, 0, 0, 0.0]), np.array([1, 1, 1, 0, 0, 0.0])
    *_, p_small, test_small = ab.proportion_test(small_a, small_b, 0.05)
    assert test_small == "fisher_exact"
    assert p_small == pytest.approx(stats.fisher_exact([[3, 3], [1, 5]]).pvalue)


# Arm sizes with every kind of table: equal arms (a symmetric law, so ties between tables),
# one user, lopsided arms, and arms big enough for the z-test.
ARM_SIZES = [(13, 10), (25, 14), (7, 7), (1, 1), (2, 40), (50, 50), (174, 713), (1000, 20)]


@pytest.mark.parametrize(("size_a", "size_b"), ARM_SIZES)
def test_batched_p_values_are_scipys_and_statsmodels_table_by_table(
    size_a: int, size_b: int
) -> None:
    """The simulated power's p-values, computed for all tables at once, are the libraries'."""
    successes_a, successes_b = (
        grid.ravel() for grid in np.meshgrid(np.arange(size_a + 1), np.arange(size_b + 1))
    )
    if len(successes_a) > 2_000:  # a seeded sample of the big grids: each test costs a ms
        kept = np.random.default_rng(size_a).choice(len(successes_a), 2_000, replace=False)
        successes_a, successes_b = successes_a[kept], successes_b[kept]
    batched = ab.two_by_two_p_values(successes_a, size_a, successes_b, size_b)
    tests_used = set()
    for a, b, p_value in zip(successes_a, successes_b, batched, strict=True):
        cells = [[b, size_b - b], [a, size_a - a]]
        if min(min(row) for row in cells) < ab.EXACT_BELOW:
            expected, tests_used = stats.fisher_exact(cells).pvalue, tests_used | {"fisher"}
        elif a + b in (0, size_a + size_b):
            expected = 1.0
        else:
            expected = proportions_ztest([b, a], [size_b, size_a])[1]
            tests_used |= {"z"}
        assert p_value == pytest.approx(expected, rel=1e-12, abs=1e-300), (a, b)
        for alpha in (0.05, 0.05 / 6, 0.001):
            assert (p_value < alpha) == (expected < alpha), (a, b, alpha)
    assert "fisher" in tests_used


@pytest.mark.parametrize("metric", ["conversion", "amount"])
def test_aa_tests_reject_at_about_alpha(metric: str) -> None:
    runs, alpha = 400, 0.05
    rejections = 0
    for seed in range(runs):
        frame = simulated_frame(metric, 400, effect=0.0, correlation=0.5, seed=seed)
        row = analyse(frame, experiment(metric=metric, alpha=alpha))
        rejections += row["p_value"] < alpha
    # The false-positive rate is alpha: a binomial test cannot tell the two apart.
    assert stats.binomtest(rejections, runs, alpha).pvalue > 0.001, rejections


def test_a_known_effect_is_found_with_enough_users() -> None:
    frame = simulated_frame("amount", 20_000, effect=3.0, correlation=0.5, seed=4)
    row = analyse(frame, experiment(metric="amount", expected_effect=3.0))
    assert row["p_value"] < 0.001
    assert row["lift_ci_low"] <= 3.0 <= row["lift_ci_high"]
    assert row["achieved_power"] > 0.99


def test_a_55_45_split_trips_the_srm_flag_and_invalidates() -> None:
    rng = np.random.default_rng(5)
    arms = np.array(["treatment"] * 1100 + ["control"] * 900)
    frame = pd.DataFrame(
        {"arm": arms, "outcome": rng.normal(50, 10, 2000), "pre_period_value": np.nan}
    )
    row = analyse(frame, experiment(metric="amount", treatment_share=0.5))
    assert row["srm_p_value"] == pytest.approx(stats.chisquare([900, 1100]).pvalue)
    assert row["srm_flag"]
    decision, reason = ab.decide({**row, "planned_effect": 3.0}, row["p_value"], 0.05)
    assert decision == "invalid" and "sample-ratio mismatch" in reason
    balanced = simulated_frame("amount", 2000, 0.0, 0.5, seed=6)
    assert not analyse(balanced, experiment(metric="amount"))["srm_flag"]


def test_cuped_shrinks_variance_when_the_covariate_is_correlated() -> None:
    correlated = analyse(
        simulated_frame("amount", 4000, 2.0, correlation=0.8, seed=7), experiment(metric="amount")
    )
    assert correlated["variance_reduction"] == pytest.approx(0.8**2, abs=0.05)
    width = correlated["lift_ci_high"] - correlated["lift_ci_low"]
    cuped_width = correlated["cuped_ci_high"] - correlated["cuped_ci_low"]
    assert cuped_width < 0.7 * width
    uncorrelated = analyse(
        simulated_frame("amount", 4000, 2.0, correlation=0.0, seed=8), experiment(metric="amount")
    )
    assert abs(uncorrelated["variance_reduction"]) < 0.01


def test_cuped_removes_the_pooled_regression_on_the_pre_period_value() -> None:
    # CUPED's theta is the slope of the outcome on the covariate over both arms (Deng et al.
    # 2013): checked against statsmodels' least squares, and the adjusted outcomes against it.
    rng = np.random.default_rng(11)
    x_c, x_t = rng.normal(40, 9, 3000), rng.normal(40, 9, 2000)
    y_c = 5 + 0.7 * x_c + rng.normal(0, 4, 3000)
    y_t = 7 + 0.7 * x_t + rng.normal(0, 4, 2000)
    adjusted_c, adjusted_t, reduction = ab.cuped(y_c, y_t, x_c, x_t)
    x, y = np.concatenate([x_c, x_t]), np.concatenate([y_c, y_t])
    fit = OLS(y, add_constant(x)).fit()
    theta = fit.params[1]
    np.testing.assert_allclose(adjusted_c, y_c - theta * (x_c - x.mean()), rtol=1e-12)
    np.testing.assert_allclose(adjusted_t, y_t - theta * (x_t - x.mean()), rtol=1e-12)
    # What the adjustment removes is the regression's share of the variance: its R-squared.
    assert reduction == pytest.approx(fit.rsquared, rel=1e-9)


def test_cochran_q_matches_statsmodels() -> None:
    estimates = np.array([0.1, 0.3, -0.05, 0.2])
    errors = np.array([0.05, 0.08, 0.06, 0.1])
    q, p_value = ab.cochran_q(estimates, errors)
    reference = combine_effects(estimates, errors**2)
    assert q == pytest.approx(reference.q)
    assert p_value == pytest.approx(stats.chi2.sf(reference.q, 3))


def test_assignment_is_stable_balanced_and_independent_across_experiments() -> None:
    keys = np.arange(1, 50_001)
    first = ab.assign("spring", keys, 0.5)
    assert (first == ab.assign("spring", keys, 0.5)).all()
    assert (first[:100] == ab.assign("spring", keys[:100], 0.5)).all()  # per customer
    treated = int((first == "treatment").sum())
    assert stats.binomtest(treated, len(keys), 0.5).pvalue > 0.001
    uneven = ab.assign("autumn", keys, 0.2)
    assert stats.binomtest(int((uneven == "treatment").sum()), len(keys), 0.2).pvalue > 0.001
    table = pd.crosstab(first, ab.assign("winter", keys, 0.5))
    assert stats.chi2_contingency(table).pvalue > 0.001


def _plan(effect: float, alpha: float = 0.05, test: str = "welch_t") -> ab.PowerPlan:
    return ab.PowerPlan(test, alpha, f"alpha {alpha:g}", effect, 0.8, seed=11)


def test_power_figures_agree_with_each_other() -> None:
    figures = ab.power_figures("amount", 500, 500, 50.0, 20.0, _plan(3.0))
    half = figures["users_needed"] // 2
    assert isinstance(figures["users_needed"], int)
    bigger = ab.power_figures("amount", half, half, 50.0, 20.0, _plan(3.0))
    assert figures["achieved_power"] < 0.8 <= bigger["achieved_power"]
    at_mde = ab.power_figures("amount", 500, 500, 50.0, 20.0, _plan(figures["mde"]))
    assert at_mde["achieved_power"] == pytest.approx(0.8, abs=1e-6)


def test_users_needed_is_whole_users_in_the_experiments_split() -> None:
    figures = ab.power_figures("amount", 300, 700, 50.0, 20.0, _plan(3.0))
    needed = figures["users_needed"]
    assert isinstance(needed, int)
    # The smallest whole arms in a 30/70 split whose closed-form power reaches the target.
    control = int(np.ceil(needed * 0.3))
    reached = TTestIndPower().power(3.0 / 20.0, control, 0.05, ratio=0.7 / 0.3)
    assert reached >= 0.8 - 1e-3


def _simulated_rejections(n: int, rate_a: float, rate_b: float, alpha: float, seed: int) -> float:
    """The share of simulated experiments that proportion_test's own choice of test rejects."""
    rng = np.random.default_rng(seed)
    rejected = 0
    for _ in range(2000):
        a = (rng.random(n) < rate_a).astype(float)
        b = (rng.random(n) < rate_b).astype(float)
        rejected += ab.proportion_test(a, b, alpha)[4] < alpha
    return rejected / 2000


def test_stated_power_is_the_power_of_the_test_used_on_small_segments() -> None:
    """25 per arm, 0.1 -> 0.4: Fisher's exact test is used, and its power is what is stated."""
    plan = _plan(0.3, test=ab.FISHER)
    stated = ab.power_figures("conversion", 25, 25, 0.1, 0.3, plan)
    simulated = _simulated_rejections(25, 0.1, 0.4, 0.05, seed=21)
    assert stated["achieved_power"] == pytest.approx(simulated, abs=0.04)
    assert "Fisher's exact" in stated["power_method"] and "simulated" in stated["power_method"]
    z_power = NormalIndPower().power(abs(proportion_effectsize(0.4, 0.1)), 25, 0.05)
    assert z_power - stated["achieved_power"] > 0.05  # the z-test's figure would overstate it


def test_segment_power_is_at_the_alpha_holm_judges_them_at() -> None:
    frame = simulated_frame("amount", 1200, effect=3.0, correlation=0.5, seed=9)
    row = analyse(frame, experiment(metric="amount", expected_effect=3.0), family=6)
    assert row["power_alpha"] == pytest.approx(0.05 / 6)
    n_c, n_t = row["users_control"], row["users_treatment"]
    sd = frame.loc[frame["arm"] == "control", "outcome"].std(ddof=1)
    expected = TTestIndPower().power(3.0 / sd, n_c, 0.05 / 6, ratio=n_t / n_c)
    assert row["achieved_power"] == pytest.approx(expected)
    assert "Holm" in row["power_method"]


def test_relative_lift_interval_covers_the_true_lift_at_its_nominal_rate() -> None:
    """A true +16% lift on amounts, 4,000 simulated experiments: 95% intervals cover it 95%
    of the time, within three binomial standard errors."""
    rng = np.random.default_rng(16)
    runs, n, covered = 4000, 400, 0
    for _ in range(runs):
        control = rng.normal(50.0, 20.0, n)
        treatment = rng.normal(58.0, 20.0, n)
        _, low, high = ab.relative_interval(
            treatment.mean(),
            treatment.std(ddof=1) / np.sqrt(n),
            control.mean(),
            control.std(ddof=1) / np.sqrt(n),
            0.05,
        )
        covered += low <= 0.16 <= high
    tolerance = 3 * np.sqrt(0.95 * 0.05 / runs)
    assert abs(covered / runs - 0.95) < tolerance, covered / runs


def test_at_the_planned_effect_dont_ship_is_rare() -> None:
    """Pre-registered rule: don't ship only when the interval rules the planned effect out, which
    at the planned effect happens in at most alpha/2 of runs (plus binomial noise)."""
    runs, dont_ship, inconclusive = 600, 0, 0
    for seed in range(runs):
        frame = simulated_frame("amount", 300, effect=2.0, correlation=0.0, seed=1000 + seed)
        row = analyse(frame, experiment(metric="amount", expected_effect=2.0))
        decision, _ = ab.decide({**row, "planned_effect": 2.0}, row["p_value"], 0.05)
        dont_ship += decision == "don't ship"
        inconclusive += decision == "inconclusive"
    assert stats.binomtest(dont_ship, runs, 0.025, alternative="greater").pvalue > 0.001
    assert inconclusive > runs / 2  # 300 users are not enough to decide at this effect


@pytest.mark.parametrize(
    ("size_a", "size_b", "baseline"), [(25, 14, 0.03), (13, 10, 0.03), (2000, 2000, 0.2)]
)
def test_a_planned_effect_that_is_true_is_rarely_ruled_out(
    size_a: int, size_b: int, baseline: float
) -> None:
    """'Don't ship: the planned effect is ruled out' when the effect is real must happen at most
    at the rule's nominal rate (alpha/2 of the interval it is judged at), in small cells too,
    where Wald's interval collapsed to [0, 0] and said so 15-30% of the time."""
    planned, judged_at, runs = 0.05, 0.05 / 6, 200_000
    rng = np.random.default_rng(size_a)
    control = rng.binomial(size_a, baseline, runs)
    treated = rng.binomial(size_b, baseline + planned, runs)
    _, upper = ab.newcombe_interval(control, size_a, treated, size_b, judged_at)
    wrongly_ruled_out = int((upper < planned).sum())
    nominal = judged_at / 2
    assert stats.binomtest(wrongly_ruled_out, runs, nominal, alternative="greater").pvalue > 0.001


@pytest.mark.parametrize(
    ("size_a", "size_b", "baseline"),
    [(25, 14, 0.2), (13, 10, 0.2), (100, 100, 0.03), (2000, 2000, 0.2)],
)
def test_the_relative_lift_interval_covers_in_small_cells(
    size_a: int, size_b: int, baseline: float
) -> None:
    """95% of intervals hold the true relative lift, and neither side misses much more than
    its 2.5%, at the cell sizes where the delta method covered 0.88-0.91."""
    runs, effect = 40_000, 0.05
    rng = np.random.default_rng(size_a + size_b)
    control = rng.binomial(size_a, baseline, runs)
    treated = rng.binomial(size_b, baseline + effect, runs)
    _, low, high = ab.relative_proportion_interval(control, size_a, treated, size_b, 0.05)
    defined = control > 0  # no ratio without a control conversion
    truth = (baseline + effect) / baseline - 1
    low, high = low[defined], high[defined]
    assert ((low <= truth) & (truth <= high)).mean() >= 0.945
    assert (high < truth).mean() <= 0.035 and (truth < low).mean() <= 0.035


def test_the_relative_lift_is_the_ratio_of_rates() -> None:
    relative, low, high = ab.relative_proportion_interval(10, 100, 15, 120, 0.05)
    assert relative == pytest.approx((15 / 120) / (10 / 100) - 1, rel=1e-12)
    assert low < relative < high
    assert np.isnan(ab.relative_proportion_interval(0, 50, 4, 50, 0.05)).all()


def test_planning_figures_use_the_configured_baseline_and_say_so() -> None:
    """A segment whose 14 control users never converted: the users needed are planned at the
    configured 3%, not at the observed 0%, and the reason says which."""
    frame = pd.DataFrame(
        {
            "arm": ["control"] * 14 + ["treatment"] * 25,
            "outcome": [0.0] * 14 + [1.0] + [0.0] * 24,
            "pre_period_value": [0.0] * 39,
        }
    )
    configured = experiment(metric="conversion", baseline=0.03, expected_effect=0.05)
    row = analyse(frame, configured, family=6)
    h = proportion_effectsize(0.08, 0.03)
    per_arm = NormalIndPower().solve_power(h, None, 0.05 / 6, 0.8, ratio=25 / 14)
    assert row["users_needed"] == int(np.ceil(per_arm) + np.ceil(per_arm * 25 / 14))
    assert row["power_method"].endswith("planned at the configured baseline 0.03")
    _, reason = ab.decide({**row, "planned_effect": 0.05}, 0.9, 0.05)
    assert (
        f"about {row['users_needed']:,} users needed, planned at the configured baseline 0.03"
        in reason
    )
    observed = analyse(frame, experiment(metric="conversion", expected_effect=0.05), family=6)
    assert observed["power_method"].endswith("planned at the observed control rate 0")


def test_no_conversions_in_either_arm_rule_nothing_out() -> None:
    """0 of 25 and 0 of 14: the interval is not [0, 0], and a planned 5 points is not excluded."""
    _, _, low, high, p_value, test = ab.proportion_test(np.zeros(25), np.zeros(14), 0.05 / 6)
    expected = confint_proportions_2indep(0, 14, 0, 25, method="newcomb", alpha=0.05 / 6)
    assert (low, high) == pytest.approx(expected, abs=1e-12)
    assert low < 0 < 0.05 < high and p_value == 1.0 and test == "fisher_exact"


def test_a_null_effect_with_enough_users_rules_the_planned_effect_out() -> None:
    frame = simulated_frame("amount", 20_000, effect=0.0, correlation=0.0, seed=31)
    row = analyse(frame, experiment(metric="amount", expected_effect=3.0))
    decision, reason = ab.decide({**row, "planned_effect": 3.0}, row["p_value"], 0.05)
    assert row["decision_ci_high"] < 3.0
    assert decision == "don't ship" and "ruled out" in reason


def _results(project: ProjectCopy) -> pd.DataFrame:
    return project.frame("select * from ml.ab_segment_results")


def test_adjusted_p_values_match_statsmodels(built_sample: ProjectCopy) -> None:
    results = _results(built_sample)
    for _, rows in results[results["scope"] == "segment"].groupby("experiment"):
        np.testing.assert_allclose(
            rows["p_value_holm"], multipletests(rows["p_value"], method="holm")[1]
        )
        np.testing.assert_allclose(
            rows["p_value_bh"], multipletests(rows["p_value"], method="fdr_bh")[1]
        )


def test_simulated_truth_is_stored_next_to_the_estimates(built_sample: ProjectCopy) -> None:
    results = _results(built_sample)
    spend = results[(results["experiment"] == "loyalty_spend") & (results["scope"] == "segment")]
    # The shipped config gives segment 3 a true effect of 8 and every other segment 2.
    expected = np.where(spend["segment_id"] == 3, 8.0, 2.0)
    np.testing.assert_allclose(spend["true_effect"], expected)
    assert spend["users_total"].sum() == 20_000
    covered = (spend["lift_ci_low"] <= spend["true_effect"]) & (
        spend["true_effect"] <= spend["lift_ci_high"]
    )
    assert covered.mean() >= 0.5  # 95% intervals; at most a rare miss among six


HEADER = "experiment,customer_id,variant,outcome,pre_period_value,timestamp\n"


def test_real_logs_are_staged_with_bad_rows_counted(project: ProjectCopy) -> None:
    rng = np.random.default_rng(9)
    lines = []
    for customer in range(1, 161):
        arm = "A" if customer % 2 else "B"
        outcome, pre = rng.integers(0, 2), rng.integers(0, 2)
        lines.append(f"newsletter,{customer},{arm},{outcome},{pre},2026-05-01 10:00:00")
    bad = [
        "newsletter,9999,A,1,0,2026-05-01 10:00:00",  # not a customer
        "newsletter,170,C,1,0,2026-05-01 10:00:00",  # unknown variant
        "newsletter,171,A,abc,0,2026-05-01 10:00:00",  # outcome not a number
        "newsletter,172,A,1,0,yesterday",  # bad timestamp
        "newsletter,180,A,1,0,2026-05-01 10:00:00",  # exposed twice
        "newsletter,180,B,0,0,2026-05-02 10:00:00",
    ]
    logs = project.root / "warehouse" / "raw" / "experiments"
    logs.mkdir()
    (logs / "newsletter.csv").write_text(HEADER + "\n".join(lines + bad) + "\n")
    done = project.run("run")
    assert done.returncode == 0, done.stderr
    assert project.query(
        "select raw_rows, staged_rows, rejected_rows, is_balanced "
        "from staging.stg_experiment_logs_reconciliation"
    ) == [(166, 160, 6, True)]
    reasons = [
        r[0]
        for r in project.query(
            "select reason_text from staging.stg_experiment_logs_rejected order by line_number"
        )
    ]
    assert reasons[0] == "customer_id 9999 is not a staged customer"
    assert reasons[1] == "variant 'C' is not control or treatment"
    assert reasons[2] == "outcome 'abc' is not a number"
    assert reasons[3] == "exposed_at 'yesterday' is not a timestamp"
    assert all("exposed 2 times in experiment 'newsletter'" in r for r in reasons[4:])
    summary = project.query(
        "select source, metric, users from marts.ab_experiment_summary "
        "where experiment = 'newsletter'"
    )
    assert summary == [("log", "conversion", 160)]
    arms = dict(
        project.query(
            "select arm, count(*) from ml.ab_assignments "
            "where experiment = 'newsletter' group by arm"
        )
    )
    assert arms == {"control": 80, "treatment": 80}


def test_experiment_config_typo_names_the_key(project: ProjectCopy) -> None:
    project.edit_config("alpha = 0.05\npower = 0.8\nexpected_effect = 0.05", "alhpa = 0.05")
    done = project.run("run")
    assert done.returncode == 2
    assert "'vars.experiments.spring_voucher.alhpa' is not a known key (did you mean 'alpha'?)" in (
        done.stderr
    )


SEGMENT_SIZES = (160, 220, 280, 340, 400, 460)


@pytest.mark.parametrize("metric", ["conversion", "amount"])
def test_aa_segment_tests_reject_at_about_alpha_and_holm_holds_the_family(metric: str) -> None:
    """A/A calibration per segment: with no effect anywhere, each segment's test rejects at
    about alpha, and Holm across an experiment's segments rejects anything at most alpha."""
    experiments, alpha = 100, 0.05
    rejections = families_rejecting = 0
    for run in range(experiments):
        p_values = []
        for position, size in enumerate(SEGMENT_SIZES):
            seed = run * len(SEGMENT_SIZES) + position
            frame = simulated_frame(metric, size, effect=0.0, correlation=0.5, seed=10_000 + seed)
            row = analyse(frame, experiment(metric=metric, alpha=alpha), family=len(SEGMENT_SIZES))
            p_values.append(row["p_value"])
        rejections += sum(p < alpha for p in p_values)
        families_rejecting += multipletests(p_values, alpha=alpha, method="holm")[0].any()
    tests = experiments * len(SEGMENT_SIZES)
    assert stats.binomtest(rejections, tests, alpha).pvalue > 0.001, rejections / tests
    family_wise = stats.binomtest(families_rejecting, experiments, alpha, alternative="greater")
    assert family_wise.pvalue > 0.001, families_rejecting / experiments


def test_a_rate_at_its_limit_gives_no_power_figures_instead_of_failing() -> None:
    """Every control user converted (a campaign window everyone bought in): the planned effect
    cannot be added to a rate of 1, so power and users needed are not computed, and say why."""
    plan = ab.PowerPlan("two_proportion_z", 0.05, "alpha 0.05", 0.05, 0.8, 1, "the observed rate 1")
    figures = ab.power_figures(ab.CONVERSION, 500, 2000, 1.0, 0.0, plan)
    assert np.isnan(figures["achieved_power"]) and figures["users_needed"] is None
    assert figures["power_method"].startswith("not computed: a rate of 1 leaves no room")
