"""Declared parameter constraints: checked before any model runs, naming the key and the file."""

from __future__ import annotations

import json

import pytest

from engine.project.constraints import ParameterError, check_values, constraint_problems

from conftest import ProjectCopy

RULES = {
    "k_min": {"type": "integer", "min": 2},
    "k_max": {"type": "integer", "min": "k_min"},
    "share": {"type": "number", "above": 0, "below": 1},
    "mode": {"type": "string", "choices": ["auto", "fixed"]},
    "seed": {"type": "integer", "nullable": True},
}
GOOD = {"k_min": 2, "k_max": 10, "share": 0.3, "mode": "auto", "seed": None}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"k_min": 1}, r"key 'm\.k_min' must be at least 2, got 1"),
        ({"k_min": 12, "k_max": 3}, r"key 'm\.k_max' must be at least k_min \(= 12\), got 3"),
        ({"k_min": 2.5}, r"key 'm\.k_min' must be an integer, got 2\.5"),
        ({"k_min": True}, r"key 'm\.k_min' must be an integer, got True"),
        ({"share": 0}, r"key 'm\.share' must be above 0, got 0"),
        ({"share": 1.0}, r"key 'm\.share' must be below 1, got 1\.0"),
        ({"mode": "best"}, r"key 'm\.mode' must be 'auto' or 'fixed', got 'best'"),
        ({"seed": "x"}, r"key 'm\.seed' must be an integer, got 'x'"),
    ],
)
def test_a_broken_constraint_names_the_key_and_the_rule(change: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        check_values({**GOOD, **change}, RULES, "m")


def test_values_within_their_constraints_pass() -> None:
    check_values(GOOD, RULES, "m")
    check_values({**GOOD, "share": 1e-9, "seed": 7, "k_max": 2}, RULES, "m")


def test_a_declaration_must_cover_every_parameter_and_hold_for_its_defaults() -> None:
    assert constraint_problems(GOOD, RULES) == []
    problems = constraint_problems({**GOOD, "extra": 1}, RULES)
    assert problems == ["'extra' has no entry in PARAMETER_CONSTRAINTS"]
    problems = constraint_problems({"k": 1}, {"k": {"type": "integer", "min": 2}})
    assert problems == [
        "the default breaks its constraint: key 'PARAMETERS.k' must be at least 2, got 1"
    ]
    assert constraint_problems({"k": 1}, {"k": {"type": "int"}})
    assert constraint_problems({"k": 1}, {"k": {"type": "integer", "max": "nope"}})


def test_a_model_without_constraints_for_its_parameters_is_a_broken_project(
    project: ProjectCopy,
) -> None:
    model = project.root / "python_models" / "segment_history.py"
    model.write_text(
        model.read_text().replace("import duckdb", 'PARAMETERS = {"n": 1}\n\nimport duckdb', 1)
    )
    done = project.run("run", "--no-report")
    assert done.returncode == 4, done.stderr
    assert "segment_history.py: 'n' has no entry in PARAMETER_CONSTRAINTS" in done.stderr


def test_k_min_above_k_max_is_caught_before_any_model_runs(project: ProjectCopy) -> None:
    project.config.write_text(
        project.config.read_text() + "\n[models.segment_model_selection]\nk_min = 12\nk_max = 3\n"
    )
    done = project.run("run", "--no-report")
    assert done.returncode == 2
    assert (
        "pipeline.toml: key 'models.segment_model_selection.k_max' must be at least "
        "k_min (= 12), got 3" in done.stderr
    )
    assert " OK " not in done.stdout  # not a single model was built
    result = json.loads((project.root / "warehouse" / "run_results" / "latest.json").read_text())
    assert result["models"] == [] and result["exit_code"] == 2


def test_an_experiment_error_names_the_config_file_it_came_from(project: ProjectCopy) -> None:
    other = project.root / "other.toml"
    other.write_text(project.config.read_text().replace("alpha = 0.05", "alpha = 0.9", 1))
    done = project.run("--config", str(other), "run", "--no-report")
    assert done.returncode == 2
    assert "other.toml: key 'vars.experiments.spring_voucher.alpha' must be at most 0.5" in (
        done.stderr
    )
    assert "pipeline.toml" not in done.stderr
