"""Segmentation: figures equal scikit-learn's, SQL scoring equals Python, ids stay stable."""

from __future__ import annotations

import json
import random

import duckdb
import numpy as np
import pandas as pd
import pytest
from kneed import KneeLocator
from scipy.stats import t as student_t
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_samples,
    silhouette_score,
)

from python_models._segmentation import fit_sample

from conftest import SAMPLE, ProjectCopy

SEED = 42
FEATURES = ["age", "annual_income_k", "spending_score"]
HEADER = "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)"


def scaled_matrix(project: ProjectCopy) -> tuple[np.ndarray, np.ndarray]:
    """The matrix the pipeline clusters, recomputed here from staging with numpy."""
    staged = project.frame("select * from staging.stg_customers order by customer_id")
    values = staged[FEATURES].to_numpy(dtype=np.float64)
    return staged["customer_id"].to_numpy(), (values - values.mean(axis=0)) / values.std(axis=0)


def test_model_selection_figures_equal_scikit_learn(built_sample: ProjectCopy) -> None:
    _, matrix = scaled_matrix(built_sample)
    ours = built_sample.frame("select * from ml.segment_model_selection order by k")
    assert ours["k"].tolist() == list(range(2, 11))
    for row in ours.itertuples():
        fit = KMeans(n_clusters=row.k, n_init=10, random_state=SEED).fit(matrix)
        assert row.inertia == pytest.approx(fit.inertia_, rel=1e-9)
        assert row.silhouette == pytest.approx(silhouette_score(matrix, fit.labels_), rel=1e-9)
        assert row.calinski_harabasz == pytest.approx(
            calinski_harabasz_score(matrix, fit.labels_), rel=1e-9
        )
        assert row.davies_bouldin == pytest.approx(
            davies_bouldin_score(matrix, fit.labels_), rel=1e-9
        )
        # Bootstrap stability, recomputed from its definition: ARI between the reference labels
        # and the labels of fits on resamples drawn with the run's seed, 10 at a time while the
        # mean lies within the settling bound of min_stability (0.8), up to 50: a t quantile at
        # 0.05 / (2 x 5 looks), so a k at the threshold settles with at most 5% probability.
        rng = np.random.default_rng(SEED)
        scores: list[float] = []
        while len(scores) < 50:
            for _ in range(10):
                rows = rng.integers(0, len(matrix), size=len(matrix))
                refit = KMeans(
                    n_clusters=row.k, n_init=10, random_state=SEED + len(scores) + 1
                ).fit(matrix[rows])
                scores.append(adjusted_rand_score(fit.labels_, refit.predict(matrix)))
            error = np.std(scores, ddof=1) / np.sqrt(len(scores))
            bound = student_t.ppf(1 - 0.05 / 10, len(scores) - 1)
            if abs(np.mean(scores) - 0.8) > bound * error:
                break
        assert row.stability_resamples == len(scores)
        assert row.stability_ari_mean == pytest.approx(np.mean(scores), rel=1e-9)
        assert row.stability_ari_std == pytest.approx(np.std(scores, ddof=1), rel=1e-9)
        assert row.stability_mc_se == pytest.approx(error, rel=1e-9)
        assert row.stability_settled == (abs(np.mean(scores) - 0.8) > bound * error)
        if not row.stability_settled:
            treated = "stable" if np.mean(scores) >= 0.8 else "not stable"
            said = f"k = {row.k} at {np.mean(scores):.3f}, treated as {treated}"
            assert said in row.selection_rule


@pytest.mark.parametrize(
    "shape",
    ["normal", "skewed (beta)", "two values"],
)
def test_a_k_at_the_threshold_is_called_settled_at_most_5_percent_of_the_time(shape: str) -> None:
    """The sequential rule looks up to 5 times; at each look it may call pass/fail settled. A
    k whose true stability is exactly min_stability must be called settled (either way) in at
    most 5% of runs over all looks; a k far from it must be settled nearly always."""
    from python_models.segment_model_selection import Resampling, draw_until_settled

    rng = np.random.default_rng(29)
    draws = {
        "normal": lambda mean: rng.normal(mean, 0.1),
        "skewed (beta)": lambda mean: rng.beta(30 * mean, 30 * (1 - mean)),
        "two values": lambda mean: mean + (0.2 if rng.random() < 0.5 else -0.2),
    }[shape]
    resampling = Resampling(batch=10, cap=50, threshold=0.8)
    runs = 3000

    def settled_share(mean: float) -> float:
        settled = 0
        for _ in range(runs):
            scores = draw_until_settled(lambda _: float(draws(mean)), resampling)
            settled += resampling.settled(scores)
        return settled / runs

    at_threshold = settled_share(0.8)
    assert at_threshold <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / runs), at_threshold
    assert settled_share(0.6) >= 0.9


def test_elbow_and_chosen_k_follow_the_rule(built_sample: ProjectCopy) -> None:
    ours = built_sample.frame("select * from ml.segment_model_selection order by k")
    knee = KneeLocator(
        ours["k"].tolist(), ours["inertia"].tolist(), curve="convex", direction="decreasing"
    ).knee
    assert ours.loc[ours["is_elbow"], "k"].tolist() == ([knee] if knee is not None else [])
    stable = ours[ours["stability_ari_mean"] >= 0.8]
    assert len(stable) > 0
    expected = stable.sort_values("silhouette", ascending=False)["k"].iloc[0]
    assert ours.loc[ours["is_chosen"], "k"].tolist() == [expected]
    assert ours["selection_rule"].nunique() == 1
    assert "stability" in ours["selection_rule"].iloc[0]


def test_every_customer_once_with_nearest_centroid_and_sklearn_silhouette(
    built_sample: ProjectCopy,
) -> None:
    ids, matrix = scaled_matrix(built_sample)
    segments = built_sample.frame("select * from ml.customer_segments order by customer_id")
    assert segments["customer_id"].tolist() == ids.tolist()
    centroids = built_sample.frame(
        "select * from ml.segment_centroids order by segment_id, feature_position"
    )
    segment_ids = centroids["segment_id"].unique()
    centers = centroids["centroid_scaled"].to_numpy().reshape(len(segment_ids), len(FEATURES))

    distances = np.linalg.norm(matrix[:, None, :] - centers[None, :, :], axis=2)
    order = np.argsort(distances, axis=1)
    assert segments["segment_id"].tolist() == segment_ids[order[:, 0]].tolist()
    assert segments["runner_up_segment_id"].tolist() == segment_ids[order[:, 1]].tolist()
    rows = np.arange(len(ids))
    np.testing.assert_allclose(segments["distance_to_centroid"], distances[rows, order[:, 0]])
    np.testing.assert_allclose(
        segments["margin"], distances[rows, order[:, 1]] - distances[rows, order[:, 0]]
    )
    np.testing.assert_allclose(
        segments["silhouette"], silhouette_samples(matrix, segments["segment_id"])
    )
    assert set(segments["silhouette_method"]) == {"exact"}

    # The same partition scikit-learn's own k-means finds on this matrix with this seed.
    k = len(segment_ids)
    reference = KMeans(n_clusters=k, n_init=10, random_state=SEED).fit(matrix)
    assert adjusted_rand_score(reference.labels_, segments["segment_id"]) == pytest.approx(1.0)


def _python_assignment(project: ProjectCopy, points: np.ndarray) -> np.ndarray:
    """Nearest centroid in numpy from the published centroids and scaling."""
    scaling = project.frame("select * from intermediate.int_feature_scaling order by position")
    centroids = project.frame(
        "select * from ml.segment_centroids order by segment_id, feature_position"
    )
    ids = centroids["segment_id"].unique()
    centers = centroids["centroid_scaled"].to_numpy().reshape(len(ids), len(FEATURES))
    scaled = (points - scaling["center"].to_numpy()) / scaling["scale"].to_numpy()
    squared = np.zeros((len(points), len(ids)))
    for f in range(len(FEATURES)):
        difference = scaled[:, f, None] - centers[None, :, f]
        squared = squared + difference * difference
    return ids[np.argmin(squared, axis=1)]


def _sql_assignment(project: ProjectCopy, points: np.ndarray) -> np.ndarray:
    return project.apply_macro("ml.assign_segment", FEATURES, points)


def test_sql_scorer_agrees_with_python_on_every_customer(built_sample: ProjectCopy) -> None:
    rows = built_sample.query(
        "select count(*), count(*) filter ("
        "  where ml.assign_segment(age, annual_income_k, spending_score) = segment_id"
        ") from marts.dim_customers"
    )
    assert rows == [(200, 200)]


def test_sql_scorer_agrees_with_python_on_random_and_boundary_points(
    built_sample: ProjectCopy,
) -> None:
    rng = np.random.default_rng(11)
    random_points = np.column_stack(
        [rng.uniform(10, 80, 5000), rng.uniform(0, 150, 5000), rng.uniform(0, 100, 5000)]
    )
    # Midpoints between every pair of centroids lie on (or within rounding of) a boundary.
    centroids = built_sample.frame(
        "select * from ml.segment_centroids order by segment_id, feature_position"
    )
    ids = centroids["segment_id"].unique()
    original = centroids["centroid_original"].to_numpy().reshape(len(ids), len(FEATURES))
    midpoints = np.array(
        [(original[i] + original[j]) / 2 for i in range(len(ids)) for j in range(i + 1, len(ids))]
    )
    points = np.vstack([random_points, midpoints, original])
    python = _python_assignment(built_sample, points)
    sql = _sql_assignment(built_sample, points)
    assert (python == sql).all(), np.flatnonzero(python != sql)
    assert len(set(sql)) == len(ids)  # the random points reach every segment


def test_scorer_transpiles_to_other_engines(built_sample: ProjectCopy) -> None:
    import sqlglot

    (definition,) = built_sample.query(
        "select macro_definition from duckdb_functions() where function_name = 'assign_segment'"
    )[0]
    body = sqlglot.parse_one(definition, dialect="duckdb")
    for dialect in ("spark", "postgres"):
        assert "CASE WHEN" in body.sql(dialect)


def test_names_are_unique_and_readable(built_sample: ProjectCopy) -> None:
    segments = built_sample.frame("select * from marts.dim_segments order by segment_id")
    assert segments["segment_name"].is_unique
    for row in segments.itertuples():
        if row.spending_score_index > 130:
            assert "High spending" in row.segment_name
        if row.annual_income_k_index < 70:
            assert "Low income" in row.segment_name
    assert segments["share"].sum() == pytest.approx(1.0)
    assert segments["customers"].sum() == 200


def test_profiles_match_pandas(built_sample: ProjectCopy) -> None:
    customers = built_sample.frame("select * from marts.dim_customers")
    segments = built_sample.frame("select * from marts.dim_segments").set_index("segment_id")
    grouped = customers.groupby("segment_id")
    np.testing.assert_allclose(segments["age_mean"], grouped["age"].mean())
    np.testing.assert_allclose(
        segments["annual_income_k_median"], grouped["annual_income_k"].median()
    )
    np.testing.assert_allclose(
        segments["spending_score_q3"], grouped["spending_score"].quantile(0.75)
    )
    attributes = built_sample.frame(
        "select * from marts.dim_segment_attributes where attribute = 'gender'"
    )
    female = attributes[attributes["value"] == "Female"].set_index("segment_id")["share"]
    np.testing.assert_allclose(
        female.reindex(segments.index, fill_value=0.0),
        grouped["gender"].apply(lambda g: (g == "Female").mean()),
    )
    population = customers["gender"].value_counts(normalize=True)
    np.testing.assert_allclose(
        attributes["population_share"], population.loc[attributes["value"]].to_numpy()
    )
    np.testing.assert_allclose(
        segments["age_index"], 100 * grouped["age"].mean() / customers["age"].mean()
    )


def _tables(project: ProjectCopy) -> dict[str, pd.DataFrame]:
    return {
        "selection": project.frame("select * from ml.segment_model_selection order by k"),
        "centroids": project.frame(
            "select * from ml.segment_centroids order by segment_id, feature"
        ),
        "segments": project.frame("select * from ml.customer_segments order by customer_id"),
        "profiles": project.frame("select * from marts.dim_segments order by segment_id"),
    }


def test_shuffled_input_gives_identical_tables(
    built_sample: ProjectCopy, empty_project: ProjectCopy, sample_rows: list[list[str]]
) -> None:
    rows = list(sample_rows)
    random.Random(5).shuffle(rows)
    empty_project.write_csv("a.csv", HEADER + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    done = empty_project.run("run", "-q")
    assert done.returncode == 0, done.stderr
    expected, actual = _tables(built_sample), _tables(empty_project)
    for name in expected:
        pd.testing.assert_frame_equal(actual[name], expected[name], check_exact=True)


def test_segment_ids_survive_a_refresh_with_perturbed_data(
    empty_project: ProjectCopy, sample_rows: list[list[str]]
) -> None:
    # k is fixed so that the test is about ids, not about whether the chosen k moves.
    empty_project.config.write_text(
        empty_project.config.read_text()
        + '\n[models.segment_model_selection]\nselection = "fixed"\nfixed_k = 6\n'
    )
    empty_project.write_csv(
        "a.csv", HEADER + "\n" + "\n".join(",".join(r) for r in sample_rows) + "\n"
    )
    assert empty_project.run("run", "-q").returncode == 0
    before = empty_project.frame("select * from ml.segment_centroids")
    old_ids = empty_project.frame("select customer_id, segment_id from ml.customer_segments")

    rng = random.Random(9)
    perturbed = []
    for row in sample_rows[5:]:  # five customers leave
        age, income, score = int(row[2]), int(row[3]), int(row[4])
        perturbed.append(
            [
                row[0],
                row[1],
                str(age + rng.choice([-1, 0, 1])),
                str(income),
                str(min(99, max(1, score + rng.choice([-1, 0, 1])))),
            ]
        )
    empty_project.write_csv(
        "a.csv", HEADER + "\n" + "\n".join(",".join(r) for r in perturbed) + "\n"
    )
    done = empty_project.run("run", "-q")
    assert done.returncode == 0, done.stderr
    after = empty_project.frame("select * from ml.segment_centroids")

    wide_before = before.pivot(index="segment_id", columns="feature", values="centroid_original")
    wide_after = after.pivot(index="segment_id", columns="feature", values="centroid_original")
    assert sorted(wide_after.index) == sorted(wide_before.index)
    for segment_id, centroid in wide_after.iterrows():
        nearest = (wide_before - centroid).pow(2).sum(axis=1).idxmin()
        assert nearest == segment_id

    migrations = empty_project.frame("select * from ml.segment_migrations")
    left = migrations[migrations["to_segment_id"].isna()]["customers"].sum()
    assert left == 5
    stayed = migrations[~migrations["moved"]]["customers"].sum()
    new_ids = empty_project.frame("select customer_id, segment_id from ml.customer_segments")
    same = old_ids.merge(new_ids, on="customer_id")
    assert stayed == (same["segment_id_x"] == same["segment_id_y"]).sum()
    assert stayed >= 0.9 * len(new_ids)

    history = empty_project.frame("select * from ml.segment_history")
    assert history["run_id"].nunique() == 2


def test_fixed_k_new_segment_gets_a_new_id_and_names_can_be_overridden(
    project: ProjectCopy,
) -> None:
    assert project.run("run", "-q").returncode == 0
    first = project.frame("select segment_id from marts.dim_segments")["segment_id"].tolist()
    k = len(first)
    project.config.write_text(
        project.config.read_text()
        + f'\n[models.segment_model_selection]\nselection = "fixed"\nfixed_k = {k + 1}\n'
        + f'\n[models.segment_centroids]\nnames = {{ {first[0]} = "Our first segment" }}\n'
    )
    done = project.run("run", "-q")
    assert done.returncode == 0, done.stderr
    second = project.frame("select * from marts.dim_segments")
    assert len(second) == k + 1
    new = sorted(set(second["segment_id"]) - set(first))
    assert len(new) >= 1 and min(new) > max(first)  # never a recycled id
    renamed = second.loc[second["segment_id"] == first[0], "segment_name"]
    assert renamed.tolist() == ["Our first segment"]
    rule = project.frame("select distinct selection_rule from ml.segment_model_selection")
    assert rule["selection_rule"].iloc[0].startswith(f"fixed: k = {k + 1}")


def test_large_data_path_fits_on_a_sample_and_scores_everyone_in_sql(
    project: ProjectCopy,
) -> None:
    project.config.write_text(
        project.config.read_text()
        + "\n[models.segment_model_selection]\nfit_sample_size = 120\nsilhouette_sample_size = 80\n"
        + "\n[models.customer_segments]\nsilhouette_exact_max_rows = 100\n"
    )
    done = project.run("run", "-q")
    assert done.returncode == 0, done.stderr
    selection = project.frame("select * from ml.segment_model_selection")
    assert set(selection["fit_rows"]) == {120} and set(selection["silhouette_rows"]) == {80}
    # Scored by one generated SELECT in DuckDB: still everyone once, with the figures numpy
    # gives from the published centroids.
    ids, matrix = scaled_matrix(project)
    segments = project.frame("select * from ml.customer_segments order by customer_id")
    assert segments["customer_id"].tolist() == ids.tolist()
    assert set(segments["silhouette_method"]) == {"centroid"}
    # Stored by id without a sort of its own: the query keeps int_customer_features' order.
    stored = project.frame("select customer_id from ml.customer_segments")
    assert stored["customer_id"].tolist() == ids.tolist()
    centroids = project.frame(
        "select * from ml.segment_centroids order by segment_id, feature_position"
    )
    segment_ids = centroids["segment_id"].unique()
    centers = centroids["centroid_scaled"].to_numpy().reshape(len(segment_ids), len(FEATURES))
    distances = np.sort(np.linalg.norm(matrix[:, None, :] - centers[None, :, :], axis=2), axis=1)
    own, second = distances[:, 0], distances[:, 1]
    np.testing.assert_allclose(segments["distance_to_centroid"], own)
    np.testing.assert_allclose(segments["silhouette"], (second - own) / np.maximum(own, second))
    np.testing.assert_allclose(segments["margin"], second - own)
    ranked = np.argsort(
        np.linalg.norm(matrix[:, None, :] - centers[None, :, :], axis=2), axis=1, kind="stable"
    )
    assert segments["segment_id"].tolist() == segment_ids[ranked[:, 0]].tolist()
    assert segments["runner_up_segment_id"].tolist() == segment_ids[ranked[:, 1]].tolist()
    names = dict(zip(centroids["segment_id"], centroids["segment_name"], strict=True))
    assert segments["segment_name"].tolist() == [names[i] for i in segments["segment_id"]]
    assert segments["runner_up_segment_name"].tolist() == [
        names[i] for i in segments["runner_up_segment_id"]
    ]


def test_model_config_typo_names_the_key(project: ProjectCopy) -> None:
    project.config.write_text(
        project.config.read_text() + "\n[models.segment_model_selection]\nk_maximum = 8\n"
    )
    done = project.run("run")
    assert done.returncode == 2
    assert "unknown key 'models.segment_model_selection.k_maximum' (did you mean 'k_max'?)" in (
        done.stderr
    )


def test_model_config_bad_value_names_the_key(project: ProjectCopy) -> None:
    project.config.write_text(
        project.config.read_text() + '\n[models.segment_model_selection]\nselection = "best"\n'
    )
    done = project.run("run")
    assert done.returncode == 2
    assert "models.segment_model_selection.selection' must be 'auto' or 'fixed'" in done.stderr
    assert not project.warehouse.exists()


def test_broken_segment_table_fails_its_expectations(project: ProjectCopy) -> None:
    assert project.run("run", "-q").returncode == 0
    before = project.digest()
    model = project.root / "sql/marts/dim_customers.sql"
    # Break the join: customers no longer find their segment.
    model.write_text(
        model.read_text().replace(
            "on customers.customer_id = assignments.customer_id",
            "on customers.customer_id = assignments.customer_id + 1",
        )
    )
    done = project.run("run")
    assert done.returncode == 1
    assert "FAIL marts.dim_customers segment_id: expect_column_values_to_not_be_null" in done.stderr
    assert project.digest() == before
    latest = json.loads((project.root / "warehouse/run_results/latest.json").read_text())
    assert latest["counts"]["expectations_failed"] >= 1


def test_too_few_distinct_customers_is_a_clear_input_error(empty_project: ProjectCopy) -> None:
    rows = [f"{i},Female,30,50,50" for i in range(1, 41)] + ["41,Male,31,50,50"]
    empty_project.write_csv("a.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    done = empty_project.run("run")
    assert done.returncode == 2
    assert "only 2 distinct combination(s) of age, annual_income_k, spending_score" in done.stderr
    assert not empty_project.warehouse.exists()


def test_a_one_customer_segment_makes_its_k_ineligible_and_crashes_nothing(
    project: ProjectCopy,
) -> None:
    """An in-range outlier (income 999) would be a segment of its own at every k."""
    with SAMPLE.open(encoding="utf-8") as source:
        text = source.read().rstrip("\n")
    (project.raw / SAMPLE.name).write_text(text + "\n201,Male,30,999,50\n", encoding="utf-8")
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    selection = project.frame("select * from ml.segment_model_selection order by k")
    segments = project.frame("select segment_id from ml.customer_segments")
    sizes = segments["segment_id"].value_counts()
    chosen = selection[selection["is_chosen"]].iloc[0]
    assert int(sizes.min()) == int(chosen["smallest_segment"])
    assert (selection["eligible"] == (selection["smallest_segment"] >= 5)).all()
    for row in selection[~selection["eligible"]].itertuples():
        assert f"smallest segment has {row.smallest_segment} customer(s)" in row.ineligible_reason
    assert selection["ineligible_reason"][selection["eligible"]].isna().all()
    if not selection["eligible"].any():
        assert "not eligible" in chosen["selection_rule"] and "so all k" in chosen["selection_rule"]
    else:
        assert bool(chosen["eligible"])
    # Even a k forced onto a one-customer segment builds every model.
    ineligible = int(selection.loc[~selection["eligible"], "k"].iloc[0])
    project.config.write_text(
        project.config.read_text()
        + f'\n[models.segment_model_selection]\nselection = "fixed"\nfixed_k = {ineligible}\n'
    )
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    forced = project.frame("select segment_id from ml.customer_segments")["segment_id"]
    assert forced.value_counts().min() < 5
    assert len(project.frame("select * from ml.feature_importance")) > 0


@pytest.mark.parametrize("sample_size", [50, 1_000], ids=["sampled", "all customers"])
def test_the_fit_sample_is_customers_in_id_order_with_their_own_features(sample_size: int) -> None:
    rng = np.random.default_rng(3)
    ids = rng.permutation(np.arange(10_000, 10_300))  # stored out of order
    source = pd.DataFrame({"customer_id": ids})
    for position, feature in enumerate(FEATURES):
        source[f"{feature}_scaled"] = rng.normal(size=len(ids)) + position
    con = duckdb.connect()
    con.register("features", source)
    sample = fit_sample(con.table("features"), FEATURES, sample_size, SEED)
    assert sample.customers == 300
    picked = sample.customer_ids
    assert len(picked) == min(sample_size, 300) and len(set(picked)) == len(picked)
    assert (np.diff(picked) > 0).all()
    expected = source.set_index("customer_id").loc[picked]
    np.testing.assert_array_equal(sample.matrix, expected.to_numpy())
    # Row-major, as the sample always was: scikit-learn's sums over a column-major copy differ
    # in the last bit, and the published figures with them.
    assert sample.matrix.flags["C_CONTIGUOUS"]
