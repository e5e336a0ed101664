"""A customer export with other columns, configured by config alone (issue 17).

No gender, an id called ``client_no``, a text ``region`` with accepted values, a free-text
``city``, integer ``years`` and ``tenure_months``, and a skewed ``visits_per_month`` standardized
after log1p. Every expected figure is computed here from the CSV with pandas, numpy and
scikit-learn.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

from conftest import ProjectCopy, copy_project

SEED = 42
FEATURES = ["years", "tenure_months", "visits_per_month"]
REGIONS = ["North", "South", "East", "West"]
CUSTOMERS_BLOCK = """[sources.customers]
files = ["customers/*.csv"]
required = ["customer_id", "region"]

[sources.customers.columns]
customer_id = ["client_no"]
region = ["Region"]
city = ["City"]
years = ["Years"]
tenure_months = ["Tenure (months)"]
visits_per_month = ["Visits per month"]
signup = ["Signup date"]

[sources.customers.kinds]
years = "integer"
tenure_months = "integer"
signup = "date"

[rules.ranges]
years = { min = 18, max = 90 }
tenure_months = { min = 0, max = 120 }
visits_per_month = { min = 0, max = 60 }

[rules.accepted.region]
values = ["North", "South", "East", "West"]
aliases = { N = "North", S = "South" }

[features]
columns = ["years", "tenure_months", "visits_per_month"]
transforms = { visits_per_month = "log1p" }

"""
# Rows that must be rejected, by client number: (the row's changes, the reason expected).
DIRTY = {
    9001: ({"Years": "31.5"}, "years '31.5' is not a whole number"),
    9002: ({"Years": "1e1"}, "years '1e1' is not a whole number"),
    9003: ({"Years": "1_00"}, "years '1_00' is not a whole number"),
    9004: (
        {"Tenure (months)": "500"},
        "tenure_months 500 is outside rules.ranges.tenure_months [0, 120]",
    ),
    9005: ({"Region": "Mars"}, "region 'Mars' is not in rules.accepted.region"),
    9006: ({"Visits per month": "abc"}, "visits_per_month 'abc' is not a number"),
    9007: ({"Region": ""}, "region is missing"),
    9008: (
        {"Visits per month": "75.5"},
        "visits_per_month 75.5 is outside rules.ranges.visits_per_month [0, 60]",
    ),
    9009: ({"Signup date": "2021-13-01"}, "signup '2021-13-01' is not a date"),
}


def _with_config_block(project: ProjectCopy, block: str) -> None:
    """The shipped config with its customer columns, rules and features replaced by ``block``."""
    text = project.config.read_text()
    start = text.index("[sources.customers]")
    end = text.index("# Experiment logs")
    project.config.write_text(text[:start] + block + text[end:])


def _clean_export(rng: np.random.Generator, n: int) -> pd.DataFrame:
    centers = np.array([[25, 6, 2.0], [45, 60, 12.0], [65, 100, 0.5]])
    group = rng.integers(0, 3, n)
    return pd.DataFrame(
        {
            "client_no": np.arange(1, n + 1).astype(str),
            "Region": rng.choice(REGIONS, n),
            "City": rng.choice(["Lyon", "Porto", "Graz"], n),
            "Years": np.clip(rng.normal(centers[group, 0], 4), 18, 90).round().astype(int),
            "Tenure (months)": np.clip(rng.normal(centers[group, 1], 8), 0, 120)
            .round()
            .astype(int),
            "Visits per month": np.clip(rng.lognormal(np.log(centers[group, 2]), 0.3), 0, 60)
            .round(2)
            .astype(str),
            "Signup date": (
                np.datetime64("2020-01-01") + rng.integers(0, 1500, n).astype("timedelta64[D]")
            ).astype(str),
        }
    ).astype(str)


def _dirty_rows(clean: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for number, (changes, _) in DIRTY.items():
        row = clean.iloc[0].to_dict() | {"client_no": str(number)} | changes
        rows.append(row)
    # Spellings the aliases accept, and a missing city (an attribute no rule requires).
    rows.append(clean.iloc[1].to_dict() | {"client_no": "9101", "Region": " n "})
    rows.append(clean.iloc[2].to_dict() | {"client_no": "9102", "City": ""})
    # Whole numbers exported as floats are whole numbers.
    rows.append(clean.iloc[3].to_dict() | {"client_no": "9103.0", "Years": "31.0"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def other_columns(tmp_path_factory: pytest.TempPathFactory) -> ProjectCopy:
    project = copy_project(tmp_path_factory.mktemp("other") / "project")
    _with_config_block(project, CUSTOMERS_BLOCK)
    for old in project.raw.glob("*.csv"):
        old.unlink()
    clean = _clean_export(np.random.default_rng(SEED), 600)
    export = pd.concat([clean, _dirty_rows(clean)], ignore_index=True)
    export.to_csv(project.raw / "clients.csv", index=False)
    done = project.run("run", "-q")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return project


def test_rows_breaking_a_declared_rule_are_rejected_with_the_column_named(
    other_columns: ProjectCopy,
) -> None:
    project = other_columns
    rejected = project.frame(
        "select customer_id_text, reason_text from staging.stg_customers_rejected"
    )
    found = dict(
        zip(rejected["customer_id_text"].astype(int), rejected["reason_text"], strict=True)
    )
    assert found == {number: reason for number, (_, reason) in DIRTY.items()}
    staged = project.frame("select * from staging.stg_customers order by customer_id")
    assert len(staged) == 600 + 3
    assert staged.set_index("customer_id").loc[9103, "years"] == 31
    assert staged.set_index("customer_id").loc[9101, "region"] == "North"
    assert pd.isna(staged.set_index("customer_id").loc[9102, "city"])
    assert project.query("select distinct typeof(signup) from staging.stg_customers") == [("DATE",)]
    assert "gender" not in staged.columns
    assert project.undescribed_columns() == []  # the declared columns are described too


def test_attributes_reach_the_marts(other_columns: ProjectCopy) -> None:
    project = other_columns
    customers = project.frame("select * from marts.dim_customers")
    assert {"region", "city", *FEATURES} <= set(customers.columns)
    expected = pd.crosstab(customers["segment_id"], customers["region"], normalize="index")
    shares = project.frame("select * from marts.dim_segment_attributes")
    assert set(shares["attribute"]) == {"region"}  # city is text, not a category
    for row in shares.itertuples():
        assert row.share == pytest.approx(expected.loc[row.segment_id, row.value], rel=1e-12)
    counts = customers["region"].value_counts()
    eda = project.frame(
        "select subject, value from marts.eda_profile where section = 'region' "
        "and statistic = 'count'"
    )
    assert dict(zip(eda["subject"], eda["value"].astype(int), strict=True)) == counts.to_dict()


def test_models_and_both_scorers_use_exactly_the_configured_features(
    other_columns: ProjectCopy,
) -> None:
    project = other_columns
    centroids = project.frame(
        "select * from ml.segment_centroids order by segment_id, feature_position"
    )
    assert centroids.groupby("segment_id")["feature"].apply(list).map(FEATURES.__eq__).all()
    parameters = project.frame(
        "select function_name, parameters from duckdb_functions() "
        "where function_name in ('assign_segment', 'surrogate_segment')"
    )
    assert len(parameters) == 2
    for listed in parameters["parameters"]:
        assert list(listed) == FEATURES
    importance = project.frame("select distinct feature from ml.feature_importance")
    assert set(importance["feature"]) == set(FEATURES)


def _scaled(staged: pd.DataFrame) -> np.ndarray:
    """log1p on visits, then z-scores with the population SD: computed here, not read."""
    values = staged[FEATURES].to_numpy(dtype=np.float64)
    values[:, 2] = np.log1p(values[:, 2])
    return (values - values.mean(axis=0)) / values.std(axis=0)


def test_the_log1p_feature_is_standardized_after_the_transform(
    other_columns: ProjectCopy,
) -> None:
    project = other_columns
    staged = project.frame("select * from staging.stg_customers order by customer_id")
    ours = project.frame("select * from intermediate.int_customer_features order by customer_id")[
        [f"{f}_scaled" for f in FEATURES]
    ].to_numpy()
    np.testing.assert_allclose(ours, _scaled(staged), rtol=1e-9, atol=1e-12)


def test_the_sql_scorers_agree_with_python_on_every_customer(
    other_columns: ProjectCopy,
) -> None:
    project = other_columns
    customers = project.frame("select * from marts.dim_customers order by customer_id")
    raw = customers[FEATURES].to_numpy(dtype=np.float64)
    centroids = project.frame(
        "select * from ml.segment_centroids order by segment_id, feature_position"
    )
    wide = centroids.pivot(index="segment_id", columns="feature", values="centroid_scaled")[
        FEATURES
    ]
    staged = project.frame("select * from staging.stg_customers order by customer_id")
    distances = ((_scaled(staged)[:, None, :] - wide.to_numpy()[None, :, :]) ** 2).sum(axis=2)
    nearest = wide.index.to_numpy()[distances.argmin(axis=1)]
    assert (project.apply_macro("ml.assign_segment", FEATURES, raw) == nearest).all()
    assert (customers["segment_id"].to_numpy() == nearest).all()
    depth = int(
        project.query("select depth from ml.surrogate_fidelity where is_chosen limit 1")[0][0]
    )
    tree = DecisionTreeClassifier(max_depth=depth, random_state=SEED)
    tree.fit(raw, customers["segment_id"].to_numpy())
    assert (project.apply_macro("ml.surrogate_segment", FEATURES, raw) == tree.predict(raw)).all()


def test_segment_names_fall_back_to_low_and_high_label_in_words(
    other_columns: ProjectCopy,
) -> None:
    """No labels configured: names read the column names in words, never the identifiers."""
    project = other_columns
    said = {
        "years": "Years",
        "tenure_months": "Tenure (months)",
        "visits_per_month": "Visits per month",
    }
    assert dict(project.query("select feature, label from config.features")) == said
    words = {f"{level} {said[f]}" for f in FEATURES for level in ("Low", "High")} | {"Average"}
    names = project.frame("select segment_name from marts.dim_segments")["segment_name"]
    for name in names:
        assert set(re.sub(r" \(segment \d+\)$", "", name).split(" · ")) <= words, name


def _numeric_export(rng: np.random.Generator, n: int, columns: int) -> pd.DataFrame:
    centers = rng.uniform(10, 90, size=(3, columns))
    group = rng.integers(0, 3, n)
    values = np.clip(rng.normal(centers[group], 5), 0, 100).round(1)
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(1, columns + 1)])
    frame.insert(0, "id", np.arange(1, n + 1))
    return frame


@pytest.mark.parametrize("count", [2, 8])
def test_a_feature_list_of_any_length_runs_end_to_end(tmp_path: Path, count: int) -> None:
    project = copy_project(tmp_path / "project")
    names = [f"f{i}" for i in range(1, 9)]
    block = (
        '[sources.customers]\nfiles = ["customers/*.csv"]\n\n[sources.customers.columns]\n'
        'customer_id = ["id"]\n'
        + "".join(f'{n} = ["{n}"]\n' for n in names)
        + "\n[rules.ranges]\n"
        + "".join(f"{n} = {{ min = 0, max = 100 }}\n" for n in names)
        + f"\n[features]\ncolumns = {names[:count]!r}\n\n".replace("'", '"')
    )
    _with_config_block(project, block)
    (project.raw / "Mall_Customers.csv").unlink()
    _numeric_export(np.random.default_rng(count), 300, 8).to_csv(project.raw / "c.csv", index=False)
    done = project.run("run", "-q")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    features = project.frame(
        "select feature from intermediate.int_feature_scaling order by position"
    )
    assert features["feature"].tolist() == names[:count]
    customers = project.frame("select * from marts.dim_customers order by customer_id")
    scored = project.apply_macro(
        "ml.assign_segment", names[:count], customers[names[:count]].to_numpy(dtype=np.float64)
    )
    assert (scored == customers["segment_id"].to_numpy()).all()
    segments = project.frame("select * from marts.dim_segments")
    assert {f"{n}_mean" for n in names[:count]} <= set(segments.columns)
    assert not {f"{n}_mean" for n in names[count:]} & set(segments.columns)
    assert (project.root / "warehouse" / "report.html").exists()


FEATURES_LINE = 'columns = ["age", "annual_income_k", "spending_score"]'
SCORE_RANGE = "spending_score = { min = 1, max = 100 }"


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        (
            [(FEATURES_LINE, 'columns = ["age", "annual_income_k", "gender"]')],
            r"key 'features.columns' lists \['gender'\]; features must be numeric",
        ),
        (
            [(SCORE_RANGE, SCORE_RANGE + "\ntenure = { min = 0, max = 60 }")],
            r"key 'rules.ranges.tenure': no source maps a column 'tenure'",
        ),
        (
            [
                (SCORE_RANGE, SCORE_RANGE + "\ntenure = { min = 0, max = 60 }"),
                (FEATURES_LINE, 'columns = ["age", "annual_income_k", "tenure"]'),
            ],
            r"key 'features.columns' lists 'tenure', which no source maps",
        ),
        (
            [('age = "integer"', 'age = "integer"\ngender = "number"')],
            r"key 'sources.customers.kinds.gender' = 'number', but 'rules.accepted.gender'",
        ),
        (
            [("transforms = {}", 'transforms = { age = "log2" }')],
            r"key 'features.transforms.age' must be one of \['none', 'log1p'\]",
        ),
        (
            [(FEATURES_LINE, 'columns = ["age"]')],
            r"key 'features.columns' lists \['age'\]; segmenting needs at least 2 features",
        ),
    ],
    ids=["no range", "range nobody maps", "feature nobody maps", "kind", "transform", "one"],
)
def test_a_column_declaration_error_stops_before_any_model_runs(
    project: ProjectCopy, edits: list[tuple[str, str]], message: str
) -> None:
    for old, new in edits:
        project.edit_config(old, new)
    done = project.run("run")
    assert done.returncode == 2, done.stdout + done.stderr
    assert re.search(message, done.stderr), done.stderr
    assert " OK " not in done.stdout
    assert not project.warehouse.exists()


def test_compile_prints_the_staging_sql_with_every_declared_column(project: ProjectCopy) -> None:
    done = project.run("compile", "stg_customers_checked")
    assert done.returncode == 0, done.stderr
    for column in ("gender", "age", "annual_income_k", "spending_score"):
        assert f'AS "{column}_text"' in done.stdout
    assert "each(" not in done.stdout.lower() and "value_reasons" not in done.stdout.lower()
    assert "'age ' || \"age\" || ' is outside rules.ranges.age [15, 100]'" in done.stdout
    python_model = project.run("compile", "segment_centroids")
    assert python_model.returncode == 2
    assert "only SQL models compile" in python_model.stderr


def test_a_category_without_accepted_values_takes_any_value(project: ProjectCopy) -> None:
    """The README allows kind = "category" with no rules.accepted: its values are counted per
    segment, and no suite checks them against a list that does not exist."""
    accepted = '[rules.accepted.gender]\nvalues = ["Male", "Female"]\n'
    project.edit_config(accepted + 'aliases = { M = "Male", F = "Female" }\n', "")
    project.edit_config(
        'spending_score = "integer"', 'spending_score = "integer"\ngender = "category"'
    )
    done = project.run("run", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    shares = project.query(
        "select segment_id, sum(share) from marts.dim_segment_attributes "
        "where attribute = 'gender' group by 1 order by 1"
    )
    assert shares and all(abs(total - 1) < 1e-12 for _, total in shares)
    latest = json.loads((project.root / "warehouse" / "run_results" / "latest.json").read_text())
    assert latest["status"] == "success"
