"""Model discovery and the DAG: dependencies inferred from SQL and parameter names."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ProjectError, UsageError
from engine.project.config import Config, load_config
from engine.project.discovery import Project, discover, select
from engine.project.seeds import SEED_BUILDERS

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def config() -> Config:
    return load_config(REPO / "pipeline.toml")


def make_project(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


BASE = {
    "sql/staging/stg_a.sql": "with src as (select * from raw.customers) select * from src",
    "sql/intermediate/int_b.sql": "select * from staging.stg_a join config.features on true",
    "python_models/ml_c.py": "def model(int_b, config, seed):\n    return int_b\n",
    "sql/marts/mart_d.sql": "select * from ml.ml_c, intermediate.int_b",
}


def test_dependencies_come_from_the_sql_and_the_parameters(tmp_path: Path, config: Config) -> None:
    project = discover(make_project(tmp_path, BASE), config)
    assert project.models["staging.stg_a"].inputs == ("raw.customers",)
    assert set(project.models["intermediate.int_b"].inputs) == {
        "staging.stg_a",
        "config.features",
    }
    assert project.models["ml.ml_c"].inputs == ("intermediate.int_b",)
    assert set(project.models["marts.mart_d"].inputs) == {"ml.ml_c", "intermediate.int_b"}
    order = list(project.order)
    for table, model in project.models.items():
        for parent in model.inputs:
            assert order.index(parent) < order.index(table)


def test_unqualified_table_names_resolve_by_unique_name(tmp_path: Path, config: Config) -> None:
    files = {**BASE, "sql/marts/mart_d.sql": "select * from ml_c"}
    project = discover(make_project(tmp_path, files), config)
    assert project.models["marts.mart_d"].inputs == ("ml.ml_c",)


def test_shipped_project_discovers_and_orders_by_layer(config: Config) -> None:
    project = discover(REPO, config)
    layers = [project.models[t].layer for t in project.order]
    seeds = len(SEED_BUILDERS)  # config tables first, one per seed, then the raw sources
    assert layers[: seeds + 1] == ["config"] * seeds + ["raw"]
    assert "staging.stg_customers" in project.models
    assert project.models["staging.stg_customers"].inputs == ("staging.stg_customers_checked",)


def test_cycle_is_an_error_naming_the_models(tmp_path: Path, config: Config) -> None:
    files = {
        "sql/staging/stg_x.sql": "select * from staging.stg_y",
        "sql/staging/stg_y.sql": "select * from staging.stg_x",
    }
    with pytest.raises(ProjectError, match=r"cycle: .*staging\.stg_[xy].*staging\.stg_[xy]"):
        discover(make_project(tmp_path, files), config)


def test_unknown_table_names_the_model_and_suggests(tmp_path: Path, config: Config) -> None:
    files = {**BASE, "sql/marts/mart_d.sql": "select * from intermediate.int_bb"}
    with pytest.raises(
        ProjectError, match=r"mart_d\.sql: reads unknown table 'intermediate\.int_bb'.*int_b"
    ):
        discover(make_project(tmp_path, files), config)


def test_table_in_the_wrong_layer_is_unknown(tmp_path: Path, config: Config) -> None:
    files = {**BASE, "sql/marts/mart_d.sql": "select * from staging.int_b"}
    with pytest.raises(ProjectError, match=r"unknown table 'staging\.int_b'"):
        discover(make_project(tmp_path, files), config)


def test_two_models_writing_one_table(tmp_path: Path, config: Config) -> None:
    files = {**BASE, "sql/marts/int_b.sql": "select 1 as x"}
    with pytest.raises(ProjectError, match=r"two models write the table 'int_b'"):
        discover(make_project(tmp_path, files), config)


def test_python_model_with_a_syntax_error_names_file_and_line(
    tmp_path: Path, config: Config
) -> None:
    files = {**BASE, "python_models/ml_c.py": "def model(int_b):\n    return int_b +\n"}
    with pytest.raises(ProjectError, match=r"ml_c\.py: line 2, column \d+: Python syntax error"):
        discover(make_project(tmp_path, files), config)


def test_python_model_parameter_naming_an_unknown_table(tmp_path: Path, config: Config) -> None:
    files = {**BASE, "python_models/ml_c.py": "def model(int_bee):\n    return int_bee\n"}
    with pytest.raises(ProjectError, match=r"ml_c\.py: reads unknown table 'int_bee'"):
        discover(make_project(tmp_path, files), config)


def test_python_model_without_model_function(tmp_path: Path, config: Config) -> None:
    files = {**BASE, "python_models/ml_c.py": "def build(int_b):\n    return int_b\n"}
    with pytest.raises(ProjectError, match=r"ml_c\.py: a Python model must define"):
        discover(make_project(tmp_path, files), config)


@pytest.mark.parametrize("text", ["select 1 +", "select 'open quote"])
def test_sql_that_does_not_parse_names_its_file(tmp_path: Path, config: Config, text: str) -> None:
    files = {**BASE, "sql/staging/stg_a.sql": text}
    with pytest.raises(ProjectError, match=r"stg_a\.sql: SQL does not parse"):
        discover(make_project(tmp_path, files), config)


def test_sql_model_must_be_one_select(tmp_path: Path, config: Config) -> None:
    files = {**BASE, "sql/staging/stg_a.sql": "select 1; select 2"}
    with pytest.raises(ProjectError, match=r"stg_a\.sql: a SQL model must be exactly one SELECT"):
        discover(make_project(tmp_path, files), config)


@pytest.fixture
def base_project(tmp_path: Path, config: Config) -> Project:
    return discover(make_project(tmp_path, BASE), config)


def test_select_single_model(base_project: Project) -> None:
    assert select(base_project, ["int_b"]) == ["intermediate.int_b"]


def test_select_with_ancestors(base_project: Project) -> None:
    assert select(base_project, ["+int_b"]) == [
        "config.features",
        "raw.customers",
        "staging.stg_a",
        "intermediate.int_b",
    ]


def test_select_with_descendants(base_project: Project) -> None:
    assert select(base_project, ["int_b+"]) == ["intermediate.int_b", "ml.ml_c", "marts.mart_d"]


def test_select_a_layer_and_union(base_project: Project) -> None:
    assert select(base_project, ["marts", "layer:staging"]) == ["staging.stg_a", "marts.mart_d"]
    assert select(base_project, ["stg_a,ml.ml_c"]) == ["staging.stg_a", "ml.ml_c"]


def test_select_unknown_name_suggests(base_project: Project) -> None:
    with pytest.raises(
        UsageError, match=r"no model or layer named 'int_c'.*did you mean"
    ) as caught:
        select(base_project, ["int_c+"])
    assert caught.value.exit_code == 2  # a usage error, not a broken project


def test_no_selector_means_everything(base_project: Project) -> None:
    assert select(base_project, None) == list(base_project.order)
