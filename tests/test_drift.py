"""Drift since the last published refresh (issue 32): PSI over the previous refresh's quantile
bins and the two-sample KS statistic, checked against an independent computation on generated
customers with a known shift; a refresh of the same data shows none; a blocking check fails the
run and leaves the published warehouse as it was."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import ProjectCopy, copy_project

HEADER = "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)"
CUSTOMERS = 1_500


def _export(seed: int, income_shift: float = 0.0, female_share: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "CustomerID": np.arange(1, CUSTOMERS + 1),
            "Gender": np.where(rng.random(CUSTOMERS) < female_share, "Female", "Male"),
            "Age": rng.integers(18, 70, CUSTOMERS),
            "Annual Income (k$)": np.round(rng.gamma(4.0, 15.0, CUSTOMERS) + income_shift, 1),
            "Spending Score (1-100)": rng.integers(1, 101, CUSTOMERS),
        }
    )


def _land(project: ProjectCopy, export: pd.DataFrame) -> None:
    for old in project.raw.glob("*.csv"):
        old.unlink()
    project.write_csv("customers.csv", export.to_csv(index=False))


@pytest.fixture(scope="module")
def before() -> pd.DataFrame:
    return _export(seed=7)


@pytest.fixture(scope="module")
def after(before: pd.DataFrame) -> pd.DataFrame:
    """Incomes 20k$ higher, a fifth more women; age and spending score exactly as before."""
    shifted = _export(seed=8, income_shift=20.0, female_share=0.7)
    unchanged = ["Age", "Spending Score (1-100)"]
    shifted[unchanged] = before[unchanged]
    return shifted


@pytest.fixture(scope="module")
def drifted(tmp_path_factory, before: pd.DataFrame, after: pd.DataFrame) -> ProjectCopy:
    project = copy_project(tmp_path_factory.mktemp("drift") / "project")
    _land(project, before)
    assert project.run("run", "-q", "--no-report").returncode == 0
    first = project.frame("select * from ml.drift")
    assert set(first.loc[first["check_kind"] != "segment", "level"]) == {"no earlier refresh"}
    _land(project, after)
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    return project


def independent_psi(
    before: np.ndarray, now: np.ndarray, bins: int = 10, floor: float = 1e-4
) -> float:
    edges = np.unique(np.quantile(before, np.linspace(0, 1, bins + 1)[1:-1]))
    limits = np.concatenate([[-np.inf], edges, [np.inf]])
    # np.histogram's bins are [a, b), the last [a, b]: with an infinite end, the same as ours.
    share_before = np.maximum(np.histogram(before, limits)[0] / len(before), floor)
    share_now = np.maximum(np.histogram(now, limits)[0] / len(now), floor)
    return float(np.sum((share_now - share_before) * np.log(share_now / share_before)))


def independent_ks(before: np.ndarray, now: np.ndarray) -> float:
    """The largest gap between the two empirical distribution functions."""
    points = np.union1d(before, now)
    cdf_before = np.searchsorted(np.sort(before), points, side="right") / len(before)
    cdf_now = np.searchsorted(np.sort(now), points, side="right") / len(now)
    return float(np.max(np.abs(cdf_before - cdf_now)))


def test_feature_drift_equals_an_independent_computation(
    drifted: ProjectCopy, before: pd.DataFrame, after: pd.DataFrame
) -> None:
    from scipy import stats

    drift = drifted.frame("select * from ml.drift").set_index("subject")
    income = "Annual Income (k$)"
    expected_psi = independent_psi(before[income].to_numpy(float), after[income].to_numpy(float))
    row = drift.loc["annual_income_k"]
    assert row["psi"] == pytest.approx(expected_psi, rel=1e-9)
    assert row["ks_statistic"] == pytest.approx(
        independent_ks(before[income].to_numpy(float), after[income].to_numpy(float)), abs=1e-12
    )
    scipy_ks = stats.ks_2samp(before[income], after[income])
    assert row["ks_p_value"] == pytest.approx(scipy_ks.pvalue, rel=1e-6)
    assert row["level"] == "alert" and expected_psi > 0.25
    assert "PSI" in row["warning_alert"] and pd.isna(row["blocking_alert"])  # warn by default
    for unchanged in ("age", "spending_score"):
        assert drift.loc[unchanged, "psi"] == 0 and drift.loc[unchanged, "ks_statistic"] == 0
        assert drift.loc[unchanged, "level"] == "stable"


def test_attribute_drift_is_psi_over_its_values(
    drifted: ProjectCopy, before: pd.DataFrame, after: pd.DataFrame
) -> None:
    share_before = before["Gender"].value_counts(normalize=True)
    share_now = after["Gender"].value_counts(normalize=True).reindex(share_before.index)
    expected = float(((share_now - share_before) * np.log(share_now / share_before)).sum())
    ((psi, bins),) = drifted.query("select psi, bins from ml.drift where subject = 'gender'")
    assert psi == pytest.approx(expected, rel=1e-9) and bins == 2
    shares = drifted.frame(
        "select value, share_before, share_now from ml.drift_distributions where subject = 'gender'"
    ).set_index("value")
    assert shares.loc["Female", "share_now"] == pytest.approx((after["Gender"] == "Female").mean())


def test_segment_shares_before_and_now_are_the_published_memberships(drifted: ProjectCopy) -> None:
    segments = drifted.frame(
        "select subject, share_before, share_now, moved_share from ml.drift "
        "where check_kind = 'segment'"
    )
    now = drifted.frame("select segment_id, count(*) as n from ml.customer_segments group by 1")
    expected = (now.set_index("segment_id")["n"] / now["n"].sum()).rename(index=str)
    assert segments.set_index("subject")["share_now"].to_dict() == pytest.approx(expected.to_dict())
    history = drifted.frame("select run_id, count(*) as n from ml.drift_history group by 1")
    assert len(history) == 2  # both refreshes, so a chart over time is one query


def test_a_refresh_of_the_same_data_shows_no_drift(drifted: ProjectCopy) -> None:
    assert drifted.run("run", "-q", "--no-report", "--full-refresh").returncode == 0
    drift = drifted.frame("select * from ml.drift where check_kind <> 'segment'")
    assert (drift["psi"] == 0).all() and (drift["level"] == "stable").all()
    assert (drift.loc[drift["check_kind"] == "feature", "ks_statistic"] == 0).all()
    segments = drifted.frame("select * from ml.drift where check_kind = 'segment'")
    assert (segments["moved_share"] == 0).all() and (segments["centroid_shift"] == 0).all()


def test_a_blocking_drift_check_fails_the_run_and_publishes_nothing(
    tmp_path, before: pd.DataFrame, after: pd.DataFrame
) -> None:
    project = copy_project(tmp_path / "project")
    project.edit_config(
        "[features.labels]", '[drift.actions]\nannual_income_k = "block"\n\n[features.labels]'
    )
    _land(project, before)
    assert project.run("run", "-q", "--no-report").returncode == 0
    published = project.digest()
    _land(project, after)
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 1, done.stderr
    said = done.stdout + done.stderr
    assert "ml.drift blocking_alert" in said and "Annual income (k$)" in said and "PSI" in said
    assert project.digest() == published


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('[drift.actions]\nincome = "block"', "key 'drift.actions.income' names no feature"),
        ("[drift]\nwatch = 0.3\nalert = 0.2", "key 'drift.alert' = 0.2 must be above"),
        ('[drift]\naction = "stop"', "drift.action"),
    ],
)
def test_a_drift_config_mistake_names_its_key(
    project: ProjectCopy, section: str, message: str
) -> None:
    project.edit_config("[features.labels]", f"{section}\n\n[features.labels]")
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("sizes", "distinct"),
    [((12_000, 15_000), 60), ((20_001, 10_001), 5_000), ((11_000, 30_000), None), ((500, 40), 30)],
)
def test_ks_from_counts_per_value_equals_scipy_on_the_values(
    sizes: tuple[int, int], distinct: int | None
) -> None:
    # Above scipy's exact limit (10,000 a side) the counted path computes the statistic and
    # Smirnov's p-value itself; scipy on the values themselves is the reference.
    from scipy import stats

    from python_models._drift_measures import ks_two_sample

    rng = np.random.default_rng(sum(sizes))
    samples = []
    for size, shift in zip(sizes, (0.0, 0.03), strict=True):
        values = rng.normal(shift, 1.0, size)
        samples.append(np.round(values * distinct / 6) if distinct else values)
    counted = [pd.Series(s).value_counts().sort_index() for s in samples]
    statistic, p_value = ks_two_sample(*counted)
    reference = stats.ks_2samp(*samples)
    assert statistic == pytest.approx(float(reference.statistic), rel=1e-12, abs=1e-15)
    assert p_value == pytest.approx(float(reference.pvalue), rel=1e-9, abs=1e-300)
    assert 0 < p_value < 1  # a p-value, not a clipped end: the comparison means something


def test_ks_of_equal_samples_is_zero_not_minus_zero() -> None:
    from python_models._drift_measures import ks_two_sample

    same = pd.Series([6_000, 7_000], index=[1.0, 2.0])
    statistic, p_value = ks_two_sample(same, same)
    assert (statistic, p_value) == (0.0, 1.0)
    assert np.copysign(1.0, statistic) == 1.0  # the published figure reads 0, not -0


@pytest.mark.parametrize(
    ("size", "distinct", "bins"), [(1, 1, 10), (7, 3, 10), (5_000, 40, 10), (20_001, 900, 7)]
)
def test_bins_from_counts_per_value_are_numpys_on_the_values(
    size: int, distinct: int, bins: int
) -> None:
    # The edges are np.quantile's (its default, linear method) on every value, bit for bit,
    # and the counts np.histogram's over them (ties at an edge go to the upper bin).
    from python_models._drift_measures import bin_counts, quantile_edges

    rng = np.random.default_rng(size)
    before = np.round(rng.gamma(3.0, 10.0, size), 1) % (distinct / 10)
    now = np.round(rng.gamma(3.5, 10.0, size + 3), 1) % (distinct / 10)
    counted = [pd.Series(s).value_counts().sort_index() for s in (before, now)]
    edges = quantile_edges(counted[0].index.to_numpy(), counted[0].to_numpy(), bins)
    expected = np.unique(np.quantile(before, np.arange(1, bins) / bins))
    np.testing.assert_array_equal(edges, expected)
    limits = np.concatenate([[-np.inf], expected, [np.inf]])
    for values, counts in zip((before, now), counted, strict=True):
        found = bin_counts(counts.index.to_numpy(), counts.to_numpy(), edges)
        np.testing.assert_array_equal(found, np.histogram(values, limits)[0])


def test_edges_between_distinct_doubles_are_numpys_to_the_last_bit() -> None:
    # numpy interpolates from the upper value when the weight is 0.5 or more; a plain
    # low + (high - low) * weight differs from it in the last bit now and then.
    from python_models._drift_measures import quantile_edges

    rng = np.random.default_rng(3)
    for _ in range(300):
        values = np.sort(rng.gamma(3.0, 10.0, int(rng.integers(2, 400))))
        edges = quantile_edges(values, np.ones(len(values), dtype=np.int64), 10)
        np.testing.assert_array_equal(edges, np.unique(np.quantile(values, np.arange(1, 10) / 10)))


def test_a_feature_missing_everywhere_before_makes_one_open_bin() -> None:
    from python_models._drift_measures import bin_counts, quantile_edges

    edges = quantile_edges(np.empty(0), np.empty(0, dtype=np.int64), 10)
    assert len(edges) == 0
    assert bin_counts(np.array([1.0, 2.0]), np.array([3, 4]), edges).tolist() == [7]
