"""Explaining segments: the surrogate's fidelity, its rules in SQL, and feature importance."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import make_scorer, precision_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.tree import DecisionTreeClassifier

from conftest import ProjectCopy

SEED = 42
FEATURES = ["age", "annual_income_k", "spending_score"]


def labelled(project: ProjectCopy) -> tuple[np.ndarray, np.ndarray]:
    """Features in original units and the published segment of every customer, by id."""
    customers = project.frame("select * from marts.dim_customers order by customer_id")
    return customers[FEATURES].to_numpy(dtype=np.float64), customers["segment_id"].to_numpy()


def test_depth_is_the_first_that_reaches_the_target(built_sample: ProjectCopy) -> None:
    x, y = labelled(built_sample)
    ours = built_sample.frame(
        "select * from ml.surrogate_fidelity where scope = 'all' order by depth"
    )
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
    expected_depth = None
    for depth in range(1, 7):
        tree = DecisionTreeClassifier(max_depth=depth, random_state=SEED)
        held_out = cross_val_predict(tree, x, y, cv=folds)
        fidelity = np.mean(held_out == y)
        row = ours[ours["depth"] == depth]
        assert len(row) == 1
        assert row["cv_fidelity"].iloc[0] == pytest.approx(fidelity)
        train = np.mean(tree.fit(x, y).predict(x) == y)
        assert row["train_fidelity"].iloc[0] == pytest.approx(train)
        if fidelity >= 0.9:
            expected_depth = depth
            break
    assert expected_depth is not None
    assert ours["depth"].max() == expected_depth  # the search stopped there
    assert ours.loc[ours["is_chosen"], "depth"].tolist() == [expected_depth]


def test_per_segment_fidelity_is_held_out_recall(built_sample: ProjectCopy) -> None:
    x, y = labelled(built_sample)
    per_segment = built_sample.frame("select * from ml.surrogate_fidelity where scope = 'segment'")
    depth = int(per_segment["depth"].iloc[0])
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
    held_out = cross_val_predict(
        DecisionTreeClassifier(max_depth=depth, random_state=SEED), x, y, cv=folds
    )
    for row in per_segment.itertuples():
        members = y == row.segment_id
        assert row.cv_fidelity == pytest.approx(np.mean(held_out[members] == row.segment_id))
        assert row.customers == members.sum()
        precision = precision_score(y, held_out, labels=[row.segment_id], average="micro")
        assert row.cv_precision == pytest.approx(precision)


def _depth_by_the_rule(x: np.ndarray, y: np.ndarray) -> int:
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
    for depth in range(1, 7):
        tree = DecisionTreeClassifier(max_depth=depth, random_state=SEED)
        if np.mean(cross_val_predict(tree, x, y, cv=folds) == y) >= 0.9:
            return depth
    return 6


def test_the_chosen_depths_fidelity_is_also_measured_on_folds_that_chose_nothing(
    built_sample: ProjectCopy,
) -> None:
    x, y = labelled(built_sample)
    outer = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
    hits = 0
    for train, test in outer.split(x, y):
        depth = _depth_by_the_rule(x[train], y[train])
        tree = DecisionTreeClassifier(max_depth=depth, random_state=SEED).fit(x[train], y[train])
        hits += int(np.sum(tree.predict(x[test]) == y[test]))
    chosen = built_sample.frame(
        "select * from ml.surrogate_fidelity where scope = 'all' and is_chosen"
    ).iloc[0]
    assert chosen["nested_cv_fidelity"] == pytest.approx(hits / len(y))
    others = built_sample.frame("select nested_cv_fidelity from ml.surrogate_fidelity")
    assert others["nested_cv_fidelity"].notna().sum() == 1


def _surrogate(project: ProjectCopy) -> DecisionTreeClassifier:
    x, y = labelled(project)
    depth = project.frame("select depth from ml.surrogate_fidelity where is_chosen limit 1")
    return DecisionTreeClassifier(max_depth=int(depth["depth"].iloc[0]), random_state=SEED).fit(
        x, y
    )


def _sql_rules(project: ProjectCopy, points: np.ndarray) -> np.ndarray:
    return project.apply_macro("ml.surrogate_segment", FEATURES, points)


def test_sql_rules_agree_with_the_tree_everywhere(built_sample: ProjectCopy) -> None:
    tree = _surrogate(built_sample)
    x, _ = labelled(built_sample)
    rng = np.random.default_rng(3)
    random_points = np.column_stack(
        [rng.uniform(10, 80, 4000), rng.uniform(0, 150, 4000), rng.uniform(0, 100, 4000)]
    )
    # Points exactly at every threshold of the tree, on the feature it splits.
    internal = tree.tree_.children_left != tree.tree_.children_right
    boundary = []
    for feature, threshold in zip(
        tree.tree_.feature[internal], tree.tree_.threshold[internal], strict=True
    ):
        for base in random_points[:50]:
            point = base.copy()
            point[feature] = threshold
            boundary.append(point)
            point = base.copy()
            point[feature] = np.nextafter(np.float32(threshold), np.float32(np.inf))
            boundary.append(point)
    points = np.vstack([x, random_points, np.array(boundary)])
    expected = tree.predict(points)
    actual = _sql_rules(built_sample, points)
    assert (expected == actual).all(), np.flatnonzero(expected != actual)


def test_sql_rules_transpile_to_other_engines(built_sample: ProjectCopy) -> None:
    (definition,) = built_sample.query(
        "select macro_definition from duckdb_functions() where function_name = 'surrogate_segment'"
    )[0]
    body = sqlglot.parse_one(definition, dialect="duckdb")
    for dialect in ("spark", "postgres"):
        transpiled = body.sql(dialect)
        assert "CASE WHEN" in transpiled
        sqlglot.parse_one(transpiled, dialect=dialect)  # and reads back in that dialect


def test_rules_partition_the_customers_and_cover_their_segments(built_sample: ProjectCopy) -> None:
    rules = built_sample.frame("select * from ml.surrogate_rules")
    assert rules["support"].sum() == 200
    x, y = labelled(built_sample)
    predicted = _surrogate(built_sample).predict(x)
    fidelity = built_sample.frame(
        "select * from ml.surrogate_fidelity where scope = 'segment'"
    ).set_index("segment_id")
    for segment, leaves in rules.groupby("segment_id"):
        # The coverage of a segment's leaves adds up to the share of it the tree gets right.
        recall = np.mean(predicted[y == segment] == segment)
        assert leaves["segment_coverage"].sum() == pytest.approx(recall)
        assert fidelity.loc[segment, "train_fidelity"] == pytest.approx(recall)
    for row in rules.itertuples():
        # Merged: at most one lower and one upper bound per feature.
        bounds = [(c["feature"], c["operator"]) for c in row.conditions]
        assert len(bounds) == len(set(bounds))


REFITS = 5


def _refits(x: np.ndarray, y: np.ndarray) -> list[dict]:
    """The forest on each of the 5 train/test splits (seeds 42..46), scored as published."""
    out = []
    for index in range(REFITS):
        seed = SEED + index
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=0.3, stratify=y, random_state=seed
        )
        forest = RandomForestClassifier(n_estimators=100, oob_score=True, random_state=seed).fit(
            x_train, y_train
        )
        permuted = permutation_importance(forest, x_test, y_test, n_repeats=5, random_state=seed)
        per_segment = {}
        for segment in np.unique(y)[:2]:
            # One versus rest: the forest's accuracy at telling this segment from the rest ...
            def one_vs_rest(truth, predicted, segment=segment):
                return np.mean((truth == segment) == (predicted == segment))

            per_segment[segment] = permutation_importance(
                forest,
                x_test,
                y_test,
                scoring=make_scorer(one_vs_rest),
                n_repeats=5,
                random_state=seed,
            ).importances_mean
        out.append(
            {
                "impurity": forest.feature_importances_,
                "permutation": permuted.importances_mean,
                "oob": forest.oob_score_,
                "segments": per_segment,
            }
        )
    return out


def _customers_in_shuffled_tables(customers: int) -> duckdb.DuckDBPyConnection:
    """Features and segments of ``customers`` customers, each table stored in its own order."""
    rng = np.random.default_rng(5)
    ids = rng.choice(10 * customers, size=customers, replace=False)
    features = pd.DataFrame(
        {"customer_id": ids, **{f: rng.normal(size=customers) for f in FEATURES}}
    )
    segments = pd.DataFrame({"customer_id": ids, "segment_id": rng.integers(0, 4, customers)})
    con = duckdb.connect()
    for shuffle, (name, table) in enumerate({"f": features, "s": segments}.items()):
        con.register("rows", table.sample(frac=1, random_state=shuffle))
        con.execute(f"create table {name} as select * from rows")
    return con


def test_the_surrogates_sample_is_the_seeded_positions_of_the_customers_by_id() -> None:
    """training_data's picks, against the rule computed here: join, order by id, take the
    seeded sample of positions."""
    from python_models._surrogate import training_data

    con = _customers_in_shuffled_tables(3000)
    scaling = pd.DataFrame({"feature": FEATURES, "position": [1, 2, 3]})
    data = training_data(con.table("f"), scaling, con.table("s"), 500, SEED)

    joined = con.sql("select * from f join s using (customer_id) order by customer_id").df()
    picked = np.sort(np.random.default_rng(SEED).choice(3000, size=500, replace=False))
    assert data.features == FEATURES
    np.testing.assert_array_equal(data.matrix, joined[FEATURES].to_numpy()[picked])
    np.testing.assert_array_equal(data.labels, joined["segment_id"].to_numpy()[picked])


def test_picked_rows_are_fetched_by_unique_key_in_key_order() -> None:
    """The samples read only the rows they pick, by id: a repeated id is refused, never read as
    one of its rows."""
    import pyarrow as pa

    from engine.model_api import InputError
    from python_models._relations import rows_with_keys

    con = duckdb.connect()
    con.execute(
        "create table t as select * from (values (3, 'c'), (1, 'a'), (2, 'b'), (2, 'd')) v(id, x)"
    )
    picked = rows_with_keys(con.table("t"), ["id", "x"], "id", pa.chunked_array([[1, 3]]))
    assert picked.to_pylist() == [{"id": 1, "x": "a"}, {"id": 3, "x": "c"}]
    with pytest.raises(InputError, match="id is not unique"):
        rows_with_keys(con.table("t"), ["x"], "id", pa.chunked_array([[2, 3]]))


@pytest.mark.parametrize(
    "change",
    [
        "delete from s where customer_id = (select max(customer_id) from s)",
        "update s set customer_id = -1 where customer_id = (select min(customer_id) from s)",
    ],
)
def test_segments_of_other_customers_than_the_features_are_refused(change: str) -> None:
    from engine.model_api import InputError
    from python_models._surrogate import training_data

    con = _customers_in_shuffled_tables(300)
    con.execute(change)
    scaling = pd.DataFrame({"feature": FEATURES, "position": [1, 2, 3]})
    with pytest.raises(InputError, match="hold different customers"):
        training_data(con.table("f"), scaling, con.table("s"), 100, SEED)


@pytest.mark.parametrize("columns", [1, 5])
def test_batched_predicts_of_all_permutations_give_scikit_learns_importances(
    columns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batched permutations (python_models/_permutations.py) are permutation_importance's
    own, for the accuracy and a custom scorer together, with any number of columns, also when
    the copies are predicted a few at a time (here three)."""
    from python_models import _permutations as batched

    monkeypatch.setattr(batched, "PREDICT_VALUES", 3 * 100 * columns)

    rng = np.random.default_rng(columns)
    x = rng.normal(size=(300, columns))
    y = (x[:, 0] + rng.normal(scale=0.5, size=300) > 0).astype(int) + (x[:, -1] > 1)
    forest = RandomForestClassifier(n_estimators=20, random_state=3).fit(x[:200], y[:200])
    x_test, y_test = x[200:], y[200:]

    def twos(truth: np.ndarray, predicted: np.ndarray) -> float:
        return float(np.mean((truth == 2) == (predicted == 2)))

    expected = permutation_importance(
        forest,
        x_test,
        y_test,
        scoring={"all": "accuracy", "twos": make_scorer(twos)},
        n_repeats=4,
        random_state=11,
    )
    copies = batched.column_permutations(x_test, 4, 11)
    predicted, *permuted = batched.predictions(forest, x_test, copies)
    assert len(permuted) == 4 * columns
    for name, score in {"all": batched.accuracy, "twos": twos}.items():
        ours = batched.mean_losses(score, y_test, predicted, permuted, 4)
        assert ours.tolist() == expected[name].importances_mean.tolist()
    assert np.abs(expected["all"].importances_mean).max() > 0  # the forest uses the columns


def test_importance_matches_scikit_learn_over_the_refits(built_sample: ProjectCopy) -> None:
    x, y = labelled(built_sample)
    ours = built_sample.frame("select * from ml.feature_importance")
    fits = _refits(x, y)

    def rows(segment: int | None, method: str) -> pd.DataFrame:
        scope = ours["segment_id"].isna() if segment is None else ours["segment_id"] == segment
        picked = ours[scope & (ours["method"] == method)]
        return picked.set_index("feature").loc[FEATURES]

    for method in ("impurity", "permutation"):
        draws = np.array([f[method] for f in fits])
        np.testing.assert_allclose(rows(None, method)["importance"], draws.mean(axis=0))
        np.testing.assert_allclose(rows(None, method)["importance_std"], draws.std(axis=0, ddof=1))
        firsts = [int((draws.argmax(axis=1) == f).sum()) for f in range(len(FEATURES))]
        assert rows(None, method)["first_in_refits"].tolist() == firsts
    assert rows(None, "impurity")["oob_score"].iloc[0] == pytest.approx(
        np.mean([f["oob"] for f in fits])
    )
    for segment in np.unique(y)[:2]:
        draws = np.array([f["segments"][segment] for f in fits])
        np.testing.assert_allclose(rows(segment, "permutation")["importance"], draws.mean(axis=0))
    # Impurity importance is the all-segment forest's only: per segment it would be another
    # forest's, and comparing two models' rankings says nothing about either.
    assert set(ours.loc[ours["segment_id"].notna(), "method"]) == {"permutation"}
    # The lead of the top permutation feature, judged on the paired per-refit differences.
    draws = np.array([f["permutation"] for f in fits])
    order = np.argsort(-draws.mean(axis=0), kind="stable")
    differences = draws[:, order[0]] - draws[:, order[1]]
    low = differences.mean() - 2.776 * differences.std(ddof=1) / np.sqrt(REFITS)
    note = ours["top_feature_note"].iloc[0]
    holds = "holds across" if low > 0 else "does not hold across"
    assert f"first in {firsts[order[0]]} of 5 refits" in note and holds in note
    shares = ours.groupby([ours["segment_id"].astype("string").fillna("all"), "method"])[
        "importance_share"
    ].sum()
    np.testing.assert_allclose(shares, 1.0)


def test_two_leads_are_a_disagreement_only_when_both_hold_across_refits() -> None:
    from python_models.feature_importance import _top_feature_note

    features = ["a", "b", "c"]
    close = {
        # impurity: a first in every refit; permutation: b and a trade places.
        "impurity": np.array([[0.5, 0.3, 0.2]] * 4 + [[0.52, 0.3, 0.18]]),
        "permutation": np.array([[0.30, 0.31, 0.1], [0.32, 0.30, 0.1], [0.29, 0.33, 0.1]] * 2)[:5],
    }
    agree, note = _top_feature_note(close, features)
    assert agree and "not both leads holding" in note
    far = {
        "impurity": np.array([[0.6, 0.3, 0.1], [0.62, 0.28, 0.1], [0.58, 0.32, 0.1]] * 2)[:5],
        "permutation": np.array([[0.1, 0.4, 0.0], [0.12, 0.41, 0.0], [0.09, 0.39, 0.01]] * 2)[:5],
    }
    agree, note = _top_feature_note(far, features)
    assert not agree and "the methods disagree" in note
    assert "impurity ranks a first (5 of 5 refits)" in note


def test_correlated_features_are_named_with_their_grouped_importance(
    built_example: ProjectCopy,
) -> None:
    """Online Retail's frequency and monetary are rank-correlated: the note must say, by their
    labels, that permutation importance splits their credit, with the correlation computed
    here."""
    from scipy.stats import spearmanr

    customers = built_example.frame(
        "select frequency, monetary, recency_days from marts.dim_customers where is_segmented"
    )
    rho = spearmanr(customers["frequency"], customers["monetary"]).statistic
    assert rho >= 0.7
    (note,) = {
        r[0]
        for r in built_example.query(
            "select top_feature_note from ml.feature_importance where scope = 'all'"
        )
    }
    labels = dict(built_example.query("select feature, label from config.features"))
    assert (
        f"{labels['frequency']} and {labels['monetary']} are correlated (Spearman rho "
        f"{rho:.2f}): permutation importance splits their credit" in note
    )
    assert f"{labels['recency_days']} and" not in note  # the others are not that correlated
    assert "monetary" not in note  # people read labels, not column names


@pytest.mark.parametrize("warehouse", ["built_sample", "built_example"])
def test_a_names_words_hold_for_most_of_its_members(
    warehouse: str, request: pytest.FixtureRequest
) -> None:
    """Every word of a segment's name holds for at least name_min_share (3/4) of its customers:
    above the median customer for the high word, below it for the low one. The shares are
    recomputed here from the customers' own values in marts.dim_customers."""
    built: ProjectCopy = request.getfixturevalue(warehouse)
    published = built.frame("select * from ml.segment_centroids")
    features = published["feature"].unique().tolist()
    customers = built.frame(
        f"select segment_id, {', '.join(features)} from marts.dim_customers where is_segmented"
    )
    median = customers[features].median()
    for row in published.itertuples():
        members = customers.loc[customers["segment_id"] == row.segment_id, row.feature]
        above = (members > median[row.feature]).mean()
        below = (members < median[row.feature]).mean()
        assert row.population_median == pytest.approx(median[row.feature], rel=1e-12)
        assert (row.share_above_median, row.share_below_median) == pytest.approx((above, below))
        if isinstance(row.name_word, str):
            assert max(above, below) >= 0.75, (row.segment_name, row.name_word)
            assert row.name_word in row.segment_name.split(" · ")
        else:
            assert max(above, below) < 0.75
    for name, rows in published.groupby("segment_name"):
        words = [w for w in rows.sort_values("feature_position")["name_word"] if isinstance(w, str)]
        assert name == (" · ".join(words) or "Average")


def test_rule_thresholds_read_as_people_write_numbers() -> None:
    """Split thresholds are midpoints (735.895); the rule text rounds them to two decimals with
    thousands separators, money with its symbol in front, other units after."""
    from python_models.surrogate_rules import _rule_text

    labels = {"monetary": ("Net value", " £"), "recency_days": ("Days since", " days")}
    conditions = [("monetary", ">", 735.895), ("recency_days", "<=", 1234.5)]
    assert _rule_text(conditions, labels) == "Net value > £735.89 and Days since ≤ 1,234.5 days"
    between = [("monetary", ">", 69.5), ("monetary", "<=", 12000.0)]
    assert _rule_text(between, labels) == "£69.50 < Net value ≤ £12,000"


def test_without_labels_a_rule_reads_the_features_label_and_unit() -> None:
    """A feature the model's feature_labels leave out reads as features.labels / features.units
    say, and those default to the column name in words and the unit it ends in."""
    import pandas as pd

    from engine.project.units import readable_label, unit_in_label
    from python_models.surrogate_rules import _rule_text, feature_readings

    labels = {c: readable_label(c) for c in ("visit_gap_days", "basket_usd", "spending_score")}
    scaling = pd.DataFrame(
        {
            "feature": list(labels),
            "label": list(labels.values()),
            "unit": [unit_in_label(label) for label in labels.values()],
        }
    )
    assert list(labels.values()) == ["Visit gap (days)", "Basket ($)", "Spending score"]
    readings = feature_readings(scaling, {"spending_score": ["Score", "/100"]})
    conditions = [("visit_gap_days", ">", 30.25), ("basket_usd", "<=", 1999.999)]
    assert (
        _rule_text(conditions, readings) == "Visit gap (days) > 30.25 days and Basket ($) ≤ $2,000"
    )
    assert _rule_text([("spending_score", "<=", 40.5)], readings) == "Score ≤ 40.5/100"
