"""The config file: the shipped one loads, and every kind of mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.project.config import load_config, with_engine

SHIPPED = Path(__file__).resolve().parent.parent / "pipeline.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    return path


def mutated(tmp_path: Path, old: str, new: str) -> Path:
    text = SHIPPED.read_text()
    assert old in text
    return write(tmp_path, text.replace(old, new))


def test_shipped_config_maps_the_sample_headers() -> None:
    config = load_config(SHIPPED)
    source = config.sources["customers"]
    assert source.canonical_for_header("Annual Income (k$)") == "annual_income_k"
    assert source.canonical_for_header("  spending score (1-100) ") == "spending_score"
    assert source.canonical_for_header("CustomerID") == "customer_id"
    assert source.canonical_for_header("Favourite colour") is None
    assert config.feature_columns == ("age", "annual_income_k", "spending_score")
    assert config.warehouse_path == (SHIPPED.parent / "warehouse" / "segments.duckdb").resolve()


# (what to replace in the shipped config, with what, and what the error must say)
MISTAKES = {
    "unknown key, with a suggestion": (
        "[features]",
        "[featurs]",
        r"unknown key 'featurs' \(did you mean 'features'\?\)",
    ),
    "unknown nested key, named in full": (
        'scaling = "standard"',
        'scalling = "standard"',
        r"unknown key 'features\.scalling'",
    ),
    "storage version": (
        "seed = 42",
        'seed = 42\nstorage_version = "1.4"',
        r"'warehouse\.storage_version' = '1\.4'; expected a DuckDB release such as \"v1\.4\.0\"",
    ),
    "a unit for a feature not modelled": (
        "[features.labels]",
        '[features.units]\nincome = "$"\n\n[features.labels]',
        r"'features\.units' names \['income'\], which are not in 'features\.columns'",
    ),
    "wrong type": (
        "seed = 42",
        'seed = "forty-two"',
        r"'warehouse\.seed' must be an integer, got 'forty-two'",
    ),
    "a boolean is not a number": (
        "age = { min = 15,",
        "age = { min = true,",
        r"'rules\.ranges\.age\.min' must be",
    ),
    "min above max": (
        "age = { min = 15, max = 100 }",
        "age = { min = 90, max = 10 }",
        r"'rules\.ranges\.age': min 90 is above max 10",
    ),
    "alias to a value that is not accepted": (
        'M = "Male"',
        'M = "Man"',
        r"'rules\.accepted\.gender\.aliases\.M' maps to 'Man'",
    ),
    "feature without a range": (
        'columns = ["age", "annual_income_k", "spending_score"]',
        'columns = ["age", "gender"]',
        r"'features\.columns' lists \['gender'\]",
    ),
    "unknown scaling method": (
        'scaling = "standard"',
        'scaling = "zscore"',
        r"'features\.scaling' must be one of",
    ),
    "missing required key": ("seed = 42\n", "", r"missing required key 'warehouse\.seed'"),
    "required column without a mapping": (
        'age = ["Age"]\n',
        "",
        r"'sources\.customers\.required' lists \['age'\]",
    ),
    "TOML syntax error, with its line": ("seed = 42", "seed = = 42", r"not valid TOML: .*line \d+"),
    "memory limit that is not a size": (
        'memory_limit = "1GB"',
        'memory_limit = "lots"',
        r"'warehouse\.memory_limit' = 'lots' is not a size",
    ),
    "a negative number of fit workers": (
        "fit_workers = 2",
        "fit_workers = -1",
        r"'warehouse\.fit_workers' must be 0 or more, got -1",
    ),
    "a negative validation threshold": (
        "fit_workers = 2",
        "fit_workers = 2\nserial_validation_rows = -5",
        r"'warehouse\.serial_validation_rows' must be 0 or more, got -5",
    ),
    "a key this version no longer takes": (
        "fit_workers = 2",
        "concurrent_max_rows = 100000",
        r"key 'warehouse\.concurrent_max_rows' is no longer used: models now build one at a time",
    ),
    "a negative history length": (
        "history_runs = 1000",
        "history_runs = -3",
        r"'warehouse\.history_runs' must be 0 or more, got -3",
    ),
    "an engine that does not exist": (
        "seed = 42",
        'seed = 42\nengine = "polars"',
        r"'warehouse\.engine' = 'polars'; expected one of: duckdb, spark",
    ),
    "a fit sample of no rows": (
        "[features]",
        "[spark]\nfit_sample_rows = 0\n\n[features]",
        r"'spark\.fit_sample_rows' must be at least 1, got 0",
    ),
    "a negative local validation limit": (
        "[features]",
        "[spark]\nlocal_validation_rows = -1\n\n[features]",
        r"'spark\.local_validation_rows' must be at least 0, got -1",
    ),
    "no Spark models at a time": (
        "[features]",
        "[spark]\nconcurrent_models = 0\n\n[features]",
        r"'spark\.concurrent_models' must be at least 1, got 0",
    ),
    "a Spark metastore that is not a service address": (
        "[features]",
        '[spark]\nmetastore = "https://metastore:9083"\n\n[features]',
        r"'spark\.metastore' is 'https://metastore:9083'; expected a folder for an embedded",
    ),
    "an empty Spark master": (
        "[features]",
        '[spark]\nmaster = " "\n\n[features]',
        r"'spark\.master' is empty",
    ),
    "a Spark setting that is not text": (
        "[features]",
        '[spark.conf]\n"spark.executor.memory" = 4\n\n[features]',
        r"spark\.conf\.spark\.executor\.memory",
    ),
    "an unknown Spark key": (
        "[features]",
        '[spark]\nmasters = "local[2]"\n\n[features]',
        r"unknown key 'spark\.masters' \(did you mean 'master'\?\)",
    ),
    "memory limit of the wrong type": (
        'memory_limit = "1GB"',
        "memory_limit = 1",
        r"warehouse\.memory_limit",
    ),
}


@pytest.mark.parametrize(("old", "new", "message"), MISTAKES.values(), ids=MISTAKES.keys())
def test_mistake_is_an_error_naming_the_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(mutated(tmp_path, old, new))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_fingerprint_changes_with_any_value(tmp_path: Path) -> None:
    base = load_config(SHIPPED).fingerprint()
    changed = load_config(mutated(tmp_path, "seed = 42", "seed = 43")).fingerprint()
    assert base != changed
    assert load_config(SHIPPED).fingerprint() == base


def test_spark_settings_take_effect(tmp_path: Path) -> None:
    config = load_config(
        mutated(
            tmp_path,
            "[features]",
            '[spark]\nmaster = "spark://head:7077"\nwarehouse_dir = "lake"\n'
            'fit_sample_rows = 5000\nmetastore = "lake/metastore"\n'
            '[spark.conf]\n"spark.executor.memory" = "4g"\n\n[features]',
        )
    )
    assert config.engine == "duckdb"  # the [spark] section alone switches nothing
    assert config.engine_settings["spark"].master == "spark://head:7077"
    assert config.engine_settings["spark"].warehouse_dir == (tmp_path / "lake").resolve()
    assert config.engine_settings["spark"].conf == {"spark.executor.memory": "4g"}
    assert config.engine_settings["spark"].fit_sample_rows == 5000
    derby = config.engine_settings["spark"].metastore
    assert derby.folder == (tmp_path / "lake" / "metastore").resolve() and derby.uri is None
    shared = 'metastore = "thrift://metastore.example:9083"'
    config = load_config(mutated(tmp_path, "[features]", f"[spark]\n{shared}\n\n[features]"))
    assert config.engine_settings["spark"].metastore.uri == "thrift://metastore.example:9083"
    switched = with_engine(config, "spark")
    assert switched.engine == "spark" and switched.fingerprint() != config.fingerprint()


def test_labels_and_units_default_from_the_column_name_and_the_label(tmp_path: Path) -> None:
    """Without labels a feature reads as its column name in words; its unit is the one the
    label states in parentheses, unless features.units says otherwise."""
    shipped = load_config(SHIPPED)
    assert shipped.units == {"age": "years", "annual_income_k": "k$", "spending_score": ""}
    text = SHIPPED.read_text()
    labels = text[text.index("[features.labels]") : text.index("# Words segment names use")]
    bare = load_config(write(tmp_path, text.replace(labels, "")))
    assert bare.labels == {
        "age": "Age",
        "annual_income_k": "Annual income (k)",
        "spending_score": "Spending score",
    }
    assert bare.units == {"age": "", "annual_income_k": "k", "spending_score": ""}
    configured = load_config(
        write(tmp_path, text.replace(labels, labels + '[features.units]\nage = "yrs"\n\n'))
    )
    assert configured.units["age"] == "yrs" and configured.labels["age"] == "Age (years)"


def test_an_amount_experiment_takes_a_unit_and_a_conversion_refuses_one() -> None:
    from engine.model_api import ParameterError
    from python_models._experiments import parse

    assert parse("spend", {"metric": "amount", "unit": " £ "}).unit == "£"
    with pytest.raises(ParameterError, match=r"vars\.experiments\.voucher\.unit"):
        parse("voucher", {"metric": "conversion", "unit": "$"})
