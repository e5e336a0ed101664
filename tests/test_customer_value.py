"""Customer value (issue 31): BG/NBD and Gamma-Gamma on the CDNOW sample of the paper, checked
against the authors' own summaries and published estimates, against an independent
high-precision implementation written here (mpmath), and against simulations from known
parameters; and the answers for data the models cannot fit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import mpmath
import numpy as np
import pandas as pd
import pytest
import sqlglot
from test_transactions import VARIANT_SOURCE as SOURCE

from python_models import _value_fitting as fitting
from python_models import _value_models as vm

from conftest import REPO, ProjectCopy, copy_project

CDNOW = REPO / "examples" / "cdnow"
# The authors' own calibration summaries, shipped beside the example.
AUTHORS = CDNOW / "reference"
# The authors' summaries are written to 2 decimals (half up).
WRITTEN = 0.005 + 1e-9
mpmath.mp.dps = 40


@pytest.fixture(scope="module")
def cdnow(built_cdnow: ProjectCopy) -> ProjectCopy:
    return built_cdnow


def _inputs(cdnow: ProjectCopy) -> pd.DataFrame:
    frame = cdnow.frame("select * from intermediate.int_customer_value_inputs")
    return frame.assign(ID=frame["customer_id"].astype("int64")).set_index("ID")


def test_the_sql_summaries_equal_the_authors_files_for_every_customer(cdnow) -> None:
    ours = _inputs(cdnow)
    theirs = pd.read_csv(AUTHORS / "cdnow_customers_summary_with_transactions.csv", index_col="ID")
    plain = pd.read_csv(AUTHORS / "cdnow_customers_summary.csv", index_col="ID")
    assert len(theirs) == len(plain) == 2357
    assert sorted(ours.index) == sorted(theirs.index)
    ours = ours.loc[theirs.index]
    assert (ours["in_calibration"]).all()
    assert (ours["calibration_repeat_purchases"] == theirs["x"]).all()
    assert (ours["calibration_repeat_purchases"] == plain["frequency"]).all()
    for mine, written in (
        ("calibration_recency_period", theirs["t_x"]),
        ("calibration_age_period", theirs["T"]),
        ("calibration_recency_period", plain["recency"]),
        ("calibration_age_period", plain["T"]),
    ):
        assert (ours[mine] - written).abs().max() <= WRITTEN, mine
    repeat = theirs["x"] > 0
    assert repeat.sum() == 946
    value = ours.loc[repeat, "calibration_mean_repeat_value"]
    assert (value - theirs.loc[repeat, "zbar"]).abs().max() <= WRITTEN
    assert ours.loc[~repeat, "calibration_mean_repeat_value"].isna().all()
    assert (theirs.loc[~repeat, "zbar"] == 0).all()


def _fits(cdnow: ProjectCopy, stage: str) -> pd.DataFrame:
    return cdnow.frame(f"select * from ml.value_model_fits where stage = '{stage}'")


def test_the_fits_reproduce_the_published_estimates(cdnow) -> None:
    fits = _fits(cdnow, "calibration")
    assert set(fits["status"]) == {"fitted"}
    estimate = dict(zip(fits["parameter"], fits["estimate"], strict=True))
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert {k: round(estimate[k], 3) for k in published} == published
    bg = fits[fits["model"] == "bg_nbd"]
    assert round(bg["log_likelihood"].iloc[0], 1) == -9582.4
    published = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    assert {k: round(estimate[k], 2) for k in published} == published
    gamma = fits[fits["model"] == "gamma_gamma"]
    assert gamma["customers"].iloc[0] == 946
    # The independence assumption is checked and published (small on CDNOW, as the note says).
    assert abs(gamma["frequency_value_correlation"].iloc[0]) < 0.2


# --- an independent implementation: the paper's formulas in 40-digit arithmetic -------------


def _mp_alive(r, alpha, a, b, x, t_x, T) -> mpmath.mpf:
    if x == 0:
        return mpmath.mpf(1)
    ratio = mpmath.power((alpha + T) / (alpha + t_x), r + x)
    return 1 / (1 + mpmath.mpf(a) / (b + x - 1) * ratio)


def _mp_expected(r, alpha, a, b, t, x, t_x, T) -> mpmath.mpf:
    """The paper's equation 10 as written (no Euler transformation)."""
    r, alpha, a, b, t, t_x, T = (mpmath.mpf(float(v)) for v in (r, alpha, a, b, t, t_x, T))
    z = t / (alpha + T + t)
    hyp = mpmath.hyp2f1(r + x, b + x, a + b + x - 1, z)
    first = (a + b + x - 1) / (a - 1)
    second = 1 - mpmath.power((alpha + T) / (alpha + T + t), r + x) * hyp
    if x == 0:
        return first * second
    return first * second / (1 + a / (b + x - 1) * mpmath.power((alpha + T) / (alpha + t_x), r + x))


def _relative(got: float, want: mpmath.mpf) -> float:
    return float(abs(mpmath.mpf(float(got)) - want) / max(abs(want), mpmath.mpf("1e-300")))


def test_predictions_equal_an_independent_implementation(cdnow) -> None:
    fits = _fits(cdnow, "full")
    params = dict(zip(fits["parameter"], fits["estimate"], strict=True))
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    p, q, gamma = (params[k] for k in ("p", "q", "gamma"))
    got = cdnow.frame("select * from marts.customer_value order by customer_id").set_index(
        "customer_id"
    )
    assert len(got) == 2357
    worst = {"alive": 0.0, "expected": 0.0, "value": 0.0}
    for row in got.itertuples():
        x, t_x, T = int(row.repeat_purchases), row.recency_period, row.age_period
        worst["alive"] = max(
            worst["alive"], _relative(row.probability_alive, _mp_alive(r, alpha, a, b, x, t_x, T))
        )
        for days in (30, 90, 365):
            want = _mp_expected(r, alpha, a, b, days / 7, x, t_x, T)
            worst["expected"] = max(
                worst["expected"], _relative(getattr(row, f"expected_purchases_{days}d"), want)
            )
        # Gamma-Gamma's conditional mean as the note writes it: a weighted average of the
        # population mean and the customer's own.
        zbar = row.mean_repeat_value if x > 0 else 0.0
        weight = (q - 1) / (p * x + q - 1)
        want_value = weight * p * gamma / (q - 1) + (1 - weight) * zbar
        worst["value"] = max(
            worst["value"], abs(row.expected_purchase_value - want_value) / want_value
        )
    assert worst["alive"] < 1e-9 and worst["expected"] < 1e-9 and worst["value"] < 1e-9, worst


def test_lifetime_value_is_the_discounted_sum_of_monthly_purchases(cdnow) -> None:
    fits = _fits(cdnow, "full")
    params = dict(zip(fits["parameter"], fits["estimate"], strict=True))
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    got = cdnow.frame("select * from marts.customer_value order by customer_id")
    for row in got.iloc[::25].itertuples():
        x, t_x, T = int(row.repeat_purchases), row.recency_period, row.age_period
        total, before = mpmath.mpf(0), mpmath.mpf(0)
        for end in [*range(30, 365, 30), 365]:
            cumulative = _mp_expected(r, alpha, a, b, end / 7, x, t_x, T)
            total += (cumulative - before) / mpmath.power(mpmath.mpf("1.1"), end / 365.0)
            before = cumulative
        want = total * mpmath.mpf(float(row.expected_purchase_value))
        assert _relative(row.customer_lifetime_value, want) < 1e-9


def test_the_holdout_is_compared_with_the_baseline(cdnow) -> None:
    holdout = cdnow.frame("select * from ml.value_holdout_customers")
    calibration = _fits(cdnow, "calibration")
    params = dict(zip(calibration["parameter"], calibration["estimate"], strict=True))
    inputs = _inputs(cdnow).set_index("customer_id")
    raw = CDNOW / "raw" / "transactions" / "cdnow_sample_transactions.csv"
    lines = pd.read_csv(raw, dtype={"order_date": str})
    lines["day"] = pd.to_datetime(lines["order_date"], format="%Y%m%d")
    later = lines[lines["day"] > "1997-09-30"].drop_duplicates(["customer_id", "day"])
    made = later.groupby("customer_id").size()
    assert len(holdout) == 2357
    for row in holdout.iloc[::50].itertuples():
        summary = inputs.loc[row.customer_id]
        want = _mp_expected(
            params["r"],
            params["alpha"],
            params["a"],
            params["b"],
            39,
            int(summary["calibration_repeat_purchases"]),
            summary["calibration_recency_period"],
            summary["calibration_age_period"],
        )
        assert _relative(row.predicted_purchases, want) < 1e-9
        assert row.actual_purchases == made.get(int(row.customer_id), 0)
    tracking = cdnow.frame("select * from marts.value_holdout_tracking order by period")
    assert len(tracking) == 39 and tracking["actual_cumulative_purchases"].iloc[-1] == len(later)
    assert tracking["actual_cumulative_purchases"].is_monotonic_increasing
    accuracy = cdnow.frame("select * from marts.value_holdout_accuracy order by position")
    mae = (holdout["predicted_purchases"] - holdout["actual_purchases"]).abs().mean()
    assert accuracy["model"].iloc[0] == pytest.approx(mae, rel=1e-12)
    # On CDNOW the model beats the naive baseline on every measure.
    assert accuracy["model_is_better"].all()
    by_frequency = cdnow.frame("select * from marts.value_holdout_by_frequency")
    assert by_frequency["customers"].sum() == 2357
    assert by_frequency.loc[by_frequency["calibration_purchases"] == 0, "customers"].item() == 1411


def test_the_macro_agrees_with_python_on_every_customer(cdnow) -> None:
    rows = cdnow.query(
        "select probability_alive, ml.probability_alive(repeat_purchases, recency_period, "
        "age_period) from marts.customer_value"
    )
    assert len(rows) == 2357
    assert max(abs(a - b) / a for a, b in rows) < 1e-12


def test_the_macro_gives_duckdbs_answer_on_spark(cdnow, spark: Any, tmp_path: Path) -> None:
    from engine.adapters.spark.sql import to_spark

    con = duckdb.connect(str(cdnow.warehouse), read_only=True)
    (definition,) = con.execute(
        "select macro_definition from duckdb_functions() "
        "where schema_name = 'ml' and function_name = 'probability_alive'"
    ).fetchone()
    path = tmp_path / "summaries.parquet"
    con.execute(
        "copy (select customer_id, repeat_purchases, recency_period, age_period, "
        f"probability_alive from marts.customer_value) to '{path}' (format parquet)"
    )
    con.close()
    from python_models._sql_scoring import create_macro

    macro = create_macro(
        "ml", "probability_alive", ["x", "t_x", "T"], sqlglot.parse_one(definition, "duckdb")
    )
    spark.sql("create database if not exists ml")
    spark.sql(to_spark(macro, {}))
    spark.sql(f"create or replace temporary view summaries as select * from parquet.`{path}`")
    query = sqlglot.parse_one(
        "select customer_id, probability_alive, "
        "ml.probability_alive(repeat_purchases, recency_period, age_period) as in_spark "
        "from summaries",
        "duckdb",
    )
    rows = spark.sql(to_spark(query, {})).collect()
    assert len(rows) == 2357
    assert max(abs(r["probability_alive"] - r["in_spark"]) for r in rows) < 1e-12


# --- simulation from known parameters ---------------------------------------------------------


def _simulate_bg_nbd(
    r: float, alpha: float, a: float, b: float, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """Customers born over the first 26 weeks, observed to week 52: purchases at rate lambda,
    and after each repeat purchase a drop-out with probability p."""
    rates = rng.gamma(r, 1 / alpha, n)
    drops = rng.beta(a, b, n)
    T = 52 - rng.uniform(0, 26, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        time = 0.0
        while True:
            time += rng.exponential(1 / rates[i])
            if time > T[i]:
                break
            x[i] += 1
            t_x[i] = time
            if rng.random() < drops[i]:
                break
    return x, t_x, T


def test_a_simulation_recovers_the_bg_nbd_parameters() -> None:
    true = {"r": 0.6, "alpha": 5.0, "a": 0.9, "b": 3.0}
    x, t_x, T = _simulate_bg_nbd(*true.values(), n=8000, rng=np.random.default_rng(11))
    fit = fitting.fit_bg_nbd(x, t_x, T)
    assert fit.converged
    for name, value in true.items():
        error = abs(fit.parameters[name] - value) / fit.std_errors[name]
        assert error < 3, (name, fit.parameters[name], value, fit.std_errors[name])


def test_a_simulation_recovers_the_gamma_gamma_parameters() -> None:
    true = {"p": 5.0, "q": 4.0, "gamma": 20.0}
    rng = np.random.default_rng(12)
    x = rng.integers(1, 12, 4000)
    scales = rng.gamma(true["q"], 1 / true["gamma"], len(x))  # each customer's nu
    z = np.array([rng.gamma(true["p"], 1 / nu, k).mean() for nu, k in zip(scales, x, strict=True)])
    fit = fitting.fit_gamma_gamma(x.astype(float), z)
    assert fit.converged
    for name, value in true.items():
        assert abs(fit.parameters[name] - value) < 3 * fit.std_errors[name], name


def test_the_gradients_are_the_log_likelihoods_derivatives() -> None:
    """The analytic gradients the fits use, against central differences of the likelihood."""
    rng = np.random.default_rng(5)
    x, t_x, T = _simulate_bg_nbd(0.6, 5.0, 0.9, 3.0, n=500, rng=rng)
    z = rng.gamma(4.0, 10.0, 500)
    cases = [
        (fitting.bg_nbd_objective(x, t_x, T, np.ones(500)), np.array([0.7, 4.0, 1.2, 2.5])),
        (
            fitting.gamma_gamma_objective(np.maximum(x, 1), z, np.ones(500)),
            np.array([5.0, 3.0, 12.0]),
        ),
    ]
    for objective, params in cases:
        _, gradient = objective(params)
        for i in range(len(params)):
            step = np.zeros(len(params))
            step[i] = 1e-6 * params[i]
            numeric = (objective(params + step)[0] - objective(params - step)[0]) / (2 * step[i])
            assert numeric == pytest.approx(gradient[i], rel=1e-5, abs=1e-6)


def test_the_euler_form_holds_where_the_direct_one_overflows() -> None:
    """A heavy buyer (x = 400 purchase days): the paper's form overflows in doubles; ours
    agrees with it in 40 digits."""
    params = {"r": 0.5, "alpha": 2.0, "a": 0.6, "b": 2.0}
    x, t_x, T = np.array([400.0]), np.array([700.0]), np.array([720.0])
    got = vm.expected_purchases(params, 365.0, x, t_x, T)[0]
    want = _mp_expected(*params.values(), 365.0, 400, 700.0, 720.0)
    assert np.isfinite(got) and _relative(got, want) < 1e-9


# --- data the models cannot fit ---------------------------------------------------------------


def test_without_order_lines_the_fits_say_why(built_sample: ProjectCopy) -> None:
    fits = built_sample.frame("select * from ml.value_model_fits order by stage, model")
    assert set(fits["status"]) == {"not fitted"}
    assert fits["reason"].str.contains("no customer made a purchase").all()
    assert built_sample.query("select count(*) from marts.customer_value") == [(0,)]
    assert built_sample.query(
        "select count(*) from marts.dim_customers where probability_alive is not null"
    ) == [(0,)]


def test_too_few_repeat_buyers_is_a_status_not_a_crash(tmp_path: Path) -> None:
    copy = copy_project(tmp_path / "project")
    rng = np.random.default_rng(3)
    rows = ["Client,Day,Amount"]
    for customer in range(1, 61):
        days = 2 if customer <= 5 else 1  # 5 repeat buyers
        for day in rng.choice(300, days, replace=False):
            date = pd.Timestamp("2023-01-01") + pd.Timedelta(days=int(day))
            rows.append(f"{customer},{date:%Y%m%d},{rng.uniform(5, 50):.2f}")
    orders = copy.root / "warehouse" / "raw" / "orders"
    orders.mkdir(parents=True)
    (orders / "lines.csv").write_text("\n".join(rows) + "\n")
    horizons = "\n[value]\nhorizons_days = [7, 60]\n"
    copy.edit_config("[features]", SOURCE + horizons + "\n[features]")
    done = copy.run("run", "-q")
    assert done.returncode == 0, done.stderr
    assert copy.undescribed_columns() == []
    columns = [
        c
        for (c,) in copy.query(
            "select column_name from duckdb_columns() where table_name = 'customer_value'"
        )
    ]
    assert [c for c in columns if c.startswith("expected_purchases")] == [
        "expected_purchases_7d",
        "expected_purchases_60d",
    ]
    fits = copy.frame("select * from ml.value_model_fits where stage = 'full'")
    assert set(fits["status"]) == {"not fitted"}
    assert fits["reason"].str.contains("value.min_repeat_customers").all()
    predictions = copy.frame("select * from marts.customer_value")
    assert len(predictions) == 60 and predictions["customer_lifetime_value"].isna().all()
    assert predictions["value_status"].str.contains("5 customers with a repeat purchase").all()
    report = (copy.root / "warehouse" / "report.html").read_text(encoding="utf-8")
    assert "No customer value this refresh: bg_nbd: 5 customers with a repeat purchase" in report


def test_the_report_says_whether_the_models_earn_their_place(cdnow) -> None:
    report = (cdnow.root / "warehouse" / "report.html").read_text(encoding="utf-8")
    section = report[report.index("<h2>Customer value</h2>") :]
    assert "Fitted on purchases up to 1997-09-30 and checked on the 39 weeks after it" in section
    assert "The models beat the naive baseline on every measure." in section
    assert 'alt="holdout tracking"' in section and 'alt="probability alive"' in section
    assert "Caution" not in section  # CDNOW's frequency and value correlate at about 0.1


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('period = "month"', "value.period"),
        ('calibration_end = "2023-13-01"', "value.calibration_end"),
        ('calibration_end = "2023-06-01"\nholdout_periods = 4', "give one"),
        ("holdout_periods = 0", "value.holdout_periods"),
        ("annual_discount_rate = -0.1", "value.annual_discount_rate"),
        ("horizon_days = 30", "value.horizon_days"),
    ],
)
def test_value_config_mistakes_name_their_key(
    project: ProjectCopy, setting: str, message: str
) -> None:
    project.edit_config("[features]", SOURCE + f"\n[value]\n{setting}\n\n[features]")
    done = project.run("run", "-q")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


def test_value_settings_need_order_lines(project: ProjectCopy) -> None:
    project.edit_config("[features]", '[value]\nperiod = "day"\n\n[features]')
    done = project.run("run", "-q")
    assert done.returncode == 2
    assert "'value.period' takes effect only with a 'sources.transactions' section" in done.stderr


def test_every_value_column_is_described(cdnow) -> None:
    assert cdnow.undescribed_columns() == []
    comments = dict(
        cdnow.query(
            "select column_name, comment from duckdb_columns() "
            "where schema_name = 'marts' and table_name = 'customer_value'"
        )
    )
    assert comments["expected_purchases_90d"] == (
        "Purchases (purchase days) BG/NBD expects in the next 90 days (value.horizons_days)"
    )


def _inputs_frame(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, z: np.ndarray) -> pd.DataFrame:
    """Per-customer summaries as int_customer_value_inputs has them, calibration = full."""
    n = len(x)
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "repeat_purchases": x,
            "recency_period": t_x,
            "age_period": T,
            "mean_repeat_value": np.where(x > 0, z, np.nan),
            "in_calibration": True,
            "calibration_repeat_purchases": x,
            "calibration_recency_period": t_x,
            "calibration_age_period": T,
            "calibration_mean_repeat_value": np.where(x > 0, z, np.nan),
            "holdout_length_period": 10.0,
            "calibration_end": pd.Timestamp("2024-01-01"),
            "observation_end": pd.Timestamp("2024-03-11"),
        }
    )


SETTINGS = pd.DataFrame(
    {
        "period_days": [7],
        "horizons_days": [[30]],
        "clv_horizon_days": [365],
        "annual_discount_rate": [0.1],
        "min_repeat_customers": [20],
    }
)


def test_repeat_purchases_worth_nothing_are_left_out_of_gamma_gamma_and_said() -> None:
    from python_models import value_model_fits

    rng = np.random.default_rng(8)
    x, t_x, T = _simulate_bg_nbd(0.6, 5.0, 0.9, 3.0, n=2000, rng=rng)
    z = rng.gamma(4.0, 10.0, 2000)
    z[np.flatnonzero(x > 0)[:7]] = 0.0  # free repeat purchases
    fits = value_model_fits.model(_inputs_frame(x, t_x, T, z), SETTINGS, map).to_pandas()
    gamma = fits[(fits["model"] == "gamma_gamma") & (fits["stage"] == "full")]
    assert set(gamma["status"]) == {"fitted"}
    assert gamma["customers"].iloc[0] == int((x > 0).sum()) - 7
    assert (
        "7 customers whose repeat purchases are worth nothing or less left out"
        in (gamma["reason"].iloc[0])
    )


def test_a_fit_that_did_not_converge_leaves_predictions_null_with_the_reason() -> None:
    from python_models import customer_value_predictions, value_model_fits

    rng = np.random.default_rng(9)
    x, t_x, T = _simulate_bg_nbd(0.6, 5.0, 0.9, 3.0, n=500, rng=rng)
    z = rng.gamma(4.0, 10.0, 500)
    inputs = _inputs_frame(x, t_x, T, z)
    fits = value_model_fits.model(inputs, SETTINGS, map).to_pandas()
    stuck = fits["model"] == "bg_nbd"
    fits.loc[stuck, "status"] = "did not converge"
    fits.loc[stuck, "reason"] = "the optimiser stopped: ABNORMAL"
    result = customer_value_predictions.model(inputs, fits, SETTINGS)
    table = result.table.to_pandas()
    assert table["probability_alive"].isna().all()
    assert table["customer_lifetime_value"].isna().all()
    assert set(table["value_status"]) == {"bg_nbd: the optimiser stopped: ABNORMAL"}
    assert "CAST(NULL AS DOUBLE)" in result.functions[0].sql("duckdb")


def test_only_the_stages_with_a_fit_go_to_the_workers() -> None:
    """A stage that is not fitted would fork the fit workers for nothing (at 10M customers
    without order lines, two processes of 0.6 GiB each, idle to the end of the build)."""
    from python_models import value_model_fits

    handed: list[list[str]] = []

    def recording_parallel(function: Callable, items: Iterable) -> Iterator:
        items = list(items)
        handed.append([stage for stage, _, _ in items])
        return map(function, items)

    rng = np.random.default_rng(10)
    x, t_x, T = _simulate_bg_nbd(0.6, 5.0, 0.9, 3.0, n=500, rng=rng)
    nothing_held_out = _inputs_frame(x, t_x, T, rng.gamma(4.0, 10.0, 500))
    nothing_held_out["holdout_length_period"] = 0.0
    fits = value_model_fits.model(nothing_held_out, SETTINGS, recording_parallel).to_pandas()
    no_orders = value_model_fits.model(nothing_held_out.head(0), SETTINGS, recording_parallel)
    assert handed == [["full"], []]
    assert list(dict.fromkeys(fits["stage"])) == ["calibration", "full"]
    assert set(fits.loc[fits["stage"] == "full", "status"]) == {"fitted"}
    calibration = fits[fits["stage"] == "calibration"]
    assert set(calibration["status"]) == {"not fitted"} and len(calibration) == 2
    assert calibration["reason"].str.contains("nothing is held out").all()
    assert set(no_orders.column("status").to_pylist()) == {"not fitted"}
    assert no_orders.num_rows == 4
