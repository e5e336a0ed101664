"""A campaign on an audience, read back (issue 32): its target is the treatment and its holdout
the control, frozen at the first refresh that built it; its outcomes are the order lines after
its start date. Generated order lines with a known effect for the treated customers are
recovered within the interval, and every outcome equals one computed here from the lines."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from test_transactions import VARIANT_SOURCE as SOURCE

from conftest import ProjectCopy, copy_project

CUSTOMERS = 3_000
START = datetime.date(2023, 9, 1)
# Order lines of Client, Day (YYYYMMDD) and Amount, observed to 2023-12-31.
CAMPAIGN = (
    SOURCE
    + """
[audiences.everyone]
condition = "customer_id > 0"
holdout_share = 0.5

[vars.experiments.mailing]
audience = "everyone"
start_date = "2023-09-01"
metric = "conversion"
expected_effect = 0.1
"""
)
BASE_RATE, EFFECT = 0.30, 0.10


def _customers(rng: np.random.Generator) -> str:
    frame = pd.DataFrame(
        {
            "CustomerID": np.arange(1, CUSTOMERS + 1),
            "Gender": rng.choice(["Female", "Male"], CUSTOMERS),
            "Age": rng.integers(18, 70, CUSTOMERS),
            "Annual Income (k$)": np.round(rng.gamma(4.0, 15.0, CUSTOMERS), 1),
            "Spending Score (1-100)": rng.integers(1, 101, CUSTOMERS),
        }
    )
    return frame.to_csv(index=False)


def _lines(rng: np.random.Generator, buyers: np.ndarray, first: str, days: int) -> pd.DataFrame:
    day = pd.Timestamp(first) + pd.to_timedelta(rng.integers(0, days, len(buyers)), unit="D")
    return pd.DataFrame(
        {
            "Client": buyers,
            "Day": day.strftime("%Y%m%d"),
            "Amount": rng.uniform(5, 80, len(buyers)).round(2),
        }
    )


def _land_lines(project: ProjectCopy, name: str, lines: pd.DataFrame) -> None:
    folder = project.root / "warehouse" / "raw" / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    lines.to_csv(folder / name, index=False)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> tuple[ProjectCopy, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    project = copy_project(tmp_path_factory.mktemp("campaign") / "project")
    for old in project.raw.glob("*.csv"):
        old.unlink()
    project.write_csv("customers.csv", _customers(rng))
    project.edit_config("[features.labels]", CAMPAIGN + "\n[features.labels]")
    ids = np.arange(1, CUSTOMERS + 1)
    before = _lines(rng, rng.choice(ids, 2 * CUSTOMERS), "2023-01-01", 240)  # to 2023-08-28
    _land_lines(project, "before.csv", before)
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    arms = project.frame(
        "select customer_key, arm from ml.ab_assignments where experiment = 'mailing'"
    )
    treated = arms.set_index("customer_key")["arm"].eq("treatment").reindex(ids).to_numpy()
    converts = rng.random(CUSTOMERS) < BASE_RATE + EFFECT * treated
    after = _lines(rng, ids[converts], START.strftime("%Y-%m-%d"), 120)
    _land_lines(project, "after.csv", after)
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    return project, arms, before, after


def test_the_exposure_is_the_audience_split_frozen_at_the_first_refresh(campaign) -> None:
    project, arms_then, _, _ = campaign
    arms_now = project.frame(
        "select customer_key, arm from ml.ab_assignments where experiment = 'mailing'"
    )
    pd.testing.assert_frame_equal(arms_now, arms_then)
    groups = project.frame(
        "select customer_id, audience_group from marts.audience_members where audience = 'everyone'"
    ).set_index("customer_id")["audience_group"]
    expected = groups.map({"target": "treatment", "holdout": "control"})
    assert arms_now.set_index("customer_key")["arm"].to_dict() == expected.to_dict()


def test_every_outcome_is_read_from_the_order_lines(campaign) -> None:
    project, _, before, after = campaign
    outcomes = project.frame(
        "select customer_key, outcome, pre_period_value from ml.ab_outcomes "
        "where experiment = 'mailing'"
    ).set_index("customer_key")
    bought_after = set(after["Client"])
    assert outcomes["outcome"].to_dict() == {k: float(k in bought_after) for k in outcomes.index}
    # The covariate: as many days just before the start as the outcome window holds.
    window = (pd.Timestamp(after["Day"].max()) - pd.Timestamp(START)).days + 1
    dates = pd.to_datetime(before["Day"], format="%Y%m%d")
    low = pd.Timestamp(START) - pd.Timedelta(days=window)
    bought_before = set(before.loc[(dates >= low) & (dates < pd.Timestamp(START)), "Client"])
    assert outcomes["pre_period_value"].to_dict() == {
        k: float(k in bought_before) for k in outcomes.index
    }


def test_the_known_effect_is_recovered_within_the_interval(campaign) -> None:
    project, arms, _, after = campaign
    row = project.frame(
        "select * from ml.ab_segment_results where experiment = 'mailing' and scope = 'all'"
    ).iloc[0]
    treated = arms.set_index("customer_key")["arm"].eq("treatment")
    bought = treated.index.isin(after["Client"])
    assert row["mean_treatment"] == pytest.approx(bought[treated.to_numpy()].mean())
    assert row["mean_control"] == pytest.approx(bought[~treated.to_numpy()].mean())
    assert row["lift_ci_low"] <= EFFECT <= row["lift_ci_high"]
    assert row["source"] == "audience" and row["decision"] == "ship"
    assert row["srm_p_value"] > 0.001  # the split is the audience's half held out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('audience = "everyone"', 'audience = "nobody"'),
            "key 'vars.experiments.mailing.audience' = 'nobody' names no audience",
        ),
        (("holdout_share = 0.5", "holdout_share = 0.0"), "the audience holds nobody out"),
        (
            ('start_date = "2023-09-01"\n', ""),
            "key 'vars.experiments.mailing.start_date' is required with an audience",
        ),
        (
            ('start_date = "2023-09-01"', 'start_date = "2023-09-01"\ntreatment_share = 0.3'),
            "key 'vars.experiments.mailing.treatment_share' does not apply",
        ),
    ],
)
def test_a_campaign_mistake_names_its_key(
    project: ProjectCopy, change: tuple[str, str], message: str
) -> None:
    project.edit_config("[features.labels]", CAMPAIGN + "\n[features.labels]")
    project.edit_config(*change)
    rng = np.random.default_rng(3)
    _land_lines(project, "lines.csv", _lines(rng, np.arange(1, 201), "2023-01-01", 300))
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_the_read_back_interval_covers_the_true_lift_at_its_nominal_rate() -> None:
    """Many campaigns drawn from a known truth, read back from purchase rows as the model reads
    them: the 95% interval of the lift holds the true lift about 95% of the time."""
    import duckdb

    from python_models._experiments import parse
    from python_models.ab_outcomes import _read_back
    from python_models.ab_segment_results import analyse

    experiment = parse("c", {"audience": "a", "start_date": "2023-09-01", "metric": "conversion"})
    rng = np.random.default_rng(2024)
    users, covered, repetitions = 600, 0, 300
    keys = np.arange(1, users + 1)
    with duckdb.connect() as con:
        for _ in range(repetitions):
            treated = rng.random(users) < 0.5
            buyers = keys[rng.random(users) < BASE_RATE + EFFECT * treated]
            days = pd.Timestamp(START) + pd.to_timedelta(rng.integers(0, 60, len(buyers)), "D")
            purchases = pd.DataFrame(
                {"customer_id": buyers, "purchase_date": days.date, "purchase_value": 10.0}
            )
            assigned = pa.table(
                {"customer_key": keys, "arm": np.where(treated, "treatment", "control")}
            )
            outcomes = _read_back(assigned, con.from_df(purchases), experiment)
            row = analyse(outcomes.to_pandas(), experiment)
            covered += row["lift_ci_low"] <= EFFECT <= row["lift_ci_high"]
    assert 0.91 <= covered / repetitions <= 0.985
