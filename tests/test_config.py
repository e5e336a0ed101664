"""The config file: the shipped one loads, and every kind of mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import load_config
from engine.errors import ConfigError

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


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = mutated(tmp_path, "[features]", "[featurs]")
    with pytest.raises(ConfigError, match=r"unknown key 'featurs' \(did you mean 'features'\?\)"):
        load_config(path)


def test_unknown_nested_key_is_named_in_full(tmp_path: Path) -> None:
    path = mutated(tmp_path, 'scaling = "standard"', 'scalling = "standard"')
    with pytest.raises(ConfigError, match=r"unknown key 'features\.scalling'"):
        load_config(path)


def test_wrong_type_names_key_and_expected_type(tmp_path: Path) -> None:
    path = mutated(tmp_path, "seed = 42", 'seed = "forty-two"')
    with pytest.raises(ConfigError, match=r"'warehouse\.seed' must be an integer, got 'forty-two'"):
        load_config(path)


def test_boolean_is_not_a_number(tmp_path: Path) -> None:
    path = mutated(tmp_path, "age = { min = 15,", "age = { min = true,")
    with pytest.raises(ConfigError, match=r"'rules\.ranges\.age\.min' must be"):
        load_config(path)


def test_range_with_min_above_max(tmp_path: Path) -> None:
    path = mutated(tmp_path, "age = { min = 15, max = 100 }", "age = { min = 90, max = 10 }")
    with pytest.raises(ConfigError, match=r"'rules\.ranges\.age': min 90 is above max 10"):
        load_config(path)


def test_alias_to_a_value_that_is_not_accepted(tmp_path: Path) -> None:
    path = mutated(tmp_path, 'M = "Male"', 'M = "Man"')
    with pytest.raises(ConfigError, match=r"'rules\.accepted\.gender\.aliases\.M' maps to 'Man'"):
        load_config(path)


def test_feature_must_be_a_ranged_numeric_column(tmp_path: Path) -> None:
    path = mutated(
        tmp_path,
        'columns = ["age", "annual_income_k", "spending_score"]',
        'columns = ["age", "gender"]',
    )
    with pytest.raises(ConfigError, match=r"'features\.columns' lists \['gender'\]"):
        load_config(path)


def test_unknown_scaling_method(tmp_path: Path) -> None:
    path = mutated(tmp_path, 'scaling = "standard"', 'scaling = "zscore"')
    with pytest.raises(ConfigError, match=r"'features\.scaling' must be one of"):
        load_config(path)


def test_missing_required_key(tmp_path: Path) -> None:
    path = mutated(tmp_path, "seed = 42\n", "")
    with pytest.raises(ConfigError, match=r"missing required key 'warehouse\.seed'"):
        load_config(path)


def test_required_column_without_a_mapping(tmp_path: Path) -> None:
    path = mutated(tmp_path, 'age = ["Age"]\n', "")
    with pytest.raises(ConfigError, match=r"'sources\.customers\.required' lists \['age'\]"):
        load_config(path)


def test_toml_syntax_error_gives_line(tmp_path: Path) -> None:
    path = mutated(tmp_path, "seed = 42", "seed = = 42")
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line \d+"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_fingerprint_changes_with_any_value(tmp_path: Path) -> None:
    base = load_config(SHIPPED).fingerprint()
    changed = load_config(mutated(tmp_path, "seed = 42", "seed = 43")).fingerprint()
    assert base != changed
    assert load_config(SHIPPED).fingerprint() == base
