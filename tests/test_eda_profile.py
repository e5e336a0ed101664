"""The EDA mart agrees with an independent pandas/numpy computation on the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import SAMPLE, ProjectCopy

FEATURES = {
    "Age": "age",
    "Annual Income (k$)": "annual_income_k",
    "Spending Score (1-100)": "spending_score",
}


@pytest.fixture
def built(built_sample: ProjectCopy) -> ProjectCopy:
    return built_sample


def profile(project: ProjectCopy, section: str) -> dict[tuple[str, str], float]:
    rows = project.query(
        "select subject, statistic, value from marts.eda_profile where section = ?", [section]
    )
    return {(subject, statistic): value for subject, statistic, value in rows}


def test_numeric_summary_matches_pandas_describe(built: ProjectCopy) -> None:
    frame = pd.read_csv(SAMPLE)
    described = frame[list(FEATURES)].describe()
    ours = profile(built, "numeric")
    assert len(ours) == 8 * len(FEATURES)
    for header, feature in FEATURES.items():
        for statistic in described.index:
            assert ours[(feature, statistic)] == pytest.approx(described.loc[statistic, header])


def test_correlations_match_numpy(built: ProjectCopy) -> None:
    frame = pd.read_csv(SAMPLE).rename(columns=FEATURES)
    ours = profile(built, "correlation")
    for pair in [
        ("age", "annual_income_k"),
        ("age", "spending_score"),
        ("annual_income_k", "spending_score"),
    ]:
        expected = np.corrcoef(frame[pair[0]], frame[pair[1]])[0, 1]
        assert ours[(f"{pair[0]} ~ {pair[1]}", "pearson")] == pytest.approx(expected)


def test_gender_counts_and_shares(built: ProjectCopy) -> None:
    counts = pd.read_csv(SAMPLE)["Gender"].value_counts()
    ours = profile(built, "gender")
    for gender, count in counts.items():
        assert ours[(gender, "count")] == count
        assert ours[(gender, "share")] == pytest.approx(count / counts.sum())


def test_rejected_rows_are_grouped_by_kind_of_reason(empty_project: ProjectCopy) -> None:
    header = "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)"
    rng = np.random.default_rng(1)
    rows = [
        f"{i},Female,{rng.integers(18, 70)},{rng.integers(15, 140)},{rng.integers(1, 100)}"
        for i in range(1, 61)
    ]
    rows += ["100,Female,abc,50,50", "101,Female,xyz,50,50", "102,Female,30,50,700"]
    empty_project.write_csv("a.csv", header + "\n" + "\n".join(rows) + "\n")
    done = empty_project.run("run", "-q")
    assert done.returncode == 0, done.stderr
    ours = profile(empty_project, "rejected")
    # Two different bad ages are one kind of reason; the values themselves are left out.
    assert sorted(ours.values()) == [1.0, 2.0]
    age_kind = next(subject for (subject, _), n in ours.items() if n == 2.0)
    assert age_kind.startswith("age ") and "whole number" in age_kind
    assert "abc" not in age_kind and "xyz" not in age_kind
    score_kind = next(subject for (subject, _), n in ours.items() if n == 1.0)
    assert score_kind.startswith("spending_score ") and "700" not in score_kind
