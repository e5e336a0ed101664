"""intermediate.int_feature_scaling, run as the pipeline compiles it over made-up profiles: each
scaling method's center and scale against numpy and math.fsum, the same bits whatever order or
however many threads DuckDB reads the customers with, and a constant feature that scales to
exactly zero."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from engine import api

from conftest import REPO

FEATURES = ("age", "annual_income_k", "spending_score")
MODEL = "intermediate.int_feature_scaling"


def _compiled(tmp_path: Path, transforms: str = "{}") -> str:
    config = tmp_path / "pipeline.toml"
    text = (REPO / "pipeline.toml").read_text()
    assert "transforms = {}" in text
    config.write_text(text.replace("transforms = {}", f"transforms = {transforms}"))
    return api.compile_model(REPO, config, MODEL)


def _profiles(n: int, seed: int) -> dict[str, np.ndarray]:
    """Segmented customers' features (skewed incomes, as real ones are) and a few unsegmented
    customers with wild values that must not count."""
    rng = np.random.default_rng(seed)
    unsegmented = rng.random(n) < 0.01
    return {
        "customer_id": np.arange(n, dtype=np.int64),
        "age": np.where(unsegmented, 1e9, rng.integers(18, 90, n)).astype(float),
        "annual_income_k": np.where(unsegmented, -1e9, rng.lognormal(4, 1, n)),
        "spending_score": np.where(unsegmented, 1e9, rng.uniform(1, 100, n)),
        "is_segmented": ~unsegmented,
    }


def _scaling(
    query: str,
    profiles: dict[str, np.ndarray],
    scalings: dict[str, str],
    threads: int = 2,
    order_seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Each feature's (center, scale) as the model computes them, rows read in a shuffled order."""
    order = np.random.default_rng(order_seed).permutation(len(profiles["customer_id"]))
    with duckdb.connect(config={"threads": threads}) as con:
        con.register("shuffled", pa.table({k: v[order] for k, v in profiles.items()}))
        con.execute("create schema intermediate")
        con.execute("create table intermediate.int_customer_profiles as select * from shuffled")
        con.execute("create schema config")
        con.execute(
            "create table config.features (feature varchar, position integer, scaling varchar, "
            "transform varchar, label varchar, unit varchar)"
        )
        for position, feature in enumerate(FEATURES, start=1):
            con.execute(
                "insert into config.features values (?, ?, ?, 'none', ?, '')",
                [feature, position, scalings[feature], feature],
            )
        rows = con.execute(f"select feature, center, scale from ({query})").fetchall()
    return {feature: (center, scale) for feature, center, scale in rows}


def _population_sd(values: np.ndarray) -> float:
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((values - mean) ** 2) / len(values))


def test_standard_scaling_is_the_mean_and_population_sd_of_the_segmented(tmp_path: Path) -> None:
    profiles = _profiles(300_000, seed=5)
    found = _scaling(_compiled(tmp_path), profiles, dict.fromkeys(FEATURES, "standard"))
    segmented = profiles["is_segmented"]
    for feature in FEATURES:
        values = profiles[feature][segmented]
        center, scale = found[feature]
        mean = math.fsum(values) / len(values)
        assert abs(center - mean) <= 4 * math.ulp(mean), (feature, center, mean)
        assert scale == pytest.approx(_population_sd(values), rel=1e-14), feature
        assert scale == pytest.approx(np.std(values), rel=1e-12), feature


def test_the_same_bits_in_any_order_and_on_one_thread_or_two(tmp_path: Path) -> None:
    query, profiles = _compiled(tmp_path), _profiles(300_000, seed=6)
    scalings = dict.fromkeys(FEATURES, "standard")
    runs = {
        tuple(_scaling(query, profiles, scalings, threads, order_seed).items())
        for threads in (1, 2)
        for order_seed in range(2)
    }
    assert len(runs) == 1, runs


def test_minmax_none_and_log1p(tmp_path: Path) -> None:
    query = _compiled(tmp_path, '{ annual_income_k = "log1p" }')
    profiles = _profiles(50_000, seed=7)
    scalings = {"age": "minmax", "annual_income_k": "standard", "spending_score": "none"}
    found = _scaling(query, profiles, scalings)
    segmented = profiles["is_segmented"]
    ages = profiles["age"][segmented]
    assert found["age"] == (ages.min(), ages.max() - ages.min())
    assert found["spending_score"] == (0.0, 1.0)
    incomes = np.log1p(profiles["annual_income_k"][segmented])
    center, scale = found["annual_income_k"]
    assert center == pytest.approx(math.fsum(incomes) / len(incomes), rel=1e-14)
    assert scale == pytest.approx(_population_sd(incomes), rel=1e-13)


@pytest.mark.parametrize("scaling", ["standard", "minmax"])
def test_a_constant_feature_scales_to_exactly_zero(tmp_path: Path, scaling: str) -> None:
    """0.1 summed 99,999 times and divided back is 0.09999999999999999; the center is 0.1."""
    profiles = _profiles(99_999, seed=8)
    profiles["spending_score"] = np.full(99_999, 0.1)
    profiles["is_segmented"] = np.ones(99_999, dtype=bool)
    found = _scaling(_compiled(tmp_path), profiles, dict.fromkeys(FEATURES, scaling))
    assert found["spending_score"] == (0.1, 1.0)
