"""Experiments as configured in ``[vars.experiments.<name>]``, checked key by key."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError
from python_models._ab_stats import AMOUNT, CONVERSION, Truth

DEFAULTS: dict[str, Any] = {
    "metric": CONVERSION,
    "segments": "all",
    "treatment_share": 0.5,
    "alpha": 0.05,
    "power": 0.8,
    "expected_effect": None,  # the effect the test is planned for; see defaults below
    "simulate": True,
    "baseline": None,
    "baseline_sd": 20.0,
    "effects": {"default": 0.0},
    "pre_period_correlation": 0.5,
    "population": 0,
    "seed": None,
}


@dataclass(frozen=True)
class Experiment:
    name: str
    metric: str
    segments: tuple[int, ...] | None  # None: all segments
    treatment_share: float
    alpha: float
    power: float
    expected_effect: float
    simulate: bool
    baseline: float
    baseline_sd: float
    effects: dict[str, float]
    pre_period_correlation: float
    population: int
    seed: int | None

    def truth(self, segment_id: int) -> Truth:
        effect = self.effects.get(str(segment_id), self.effects.get("default", 0.0))
        return Truth(
            self.metric, self.baseline, self.baseline_sd, effect, self.pre_period_correlation
        )


def _fail(name: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"pipeline.toml: key 'vars.experiments.{name}.{key}' {message}")


def _number(name: str, key: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, key, f"must be a number, got {value!r}")
    if not low <= value <= high:
        raise _fail(name, key, f"must lie in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def parse(name: str, spec: Any) -> Experiment:
    if not isinstance(spec, dict):
        raise ConfigError(f"pipeline.toml: key 'vars.experiments.{name}' must be a table")
    for key in spec:
        if key not in DEFAULTS:
            hint = difflib.get_close_matches(key, list(DEFAULTS), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise _fail(name, key, f"is not a known key{suggestion}")
    values = {**DEFAULTS, **spec}
    metric = values["metric"]
    if metric not in (CONVERSION, AMOUNT):
        raise _fail(name, "metric", f"must be '{CONVERSION}' or '{AMOUNT}', got {metric!r}")
    segments = values["segments"]
    if segments == "all":
        chosen_segments = None
    elif isinstance(segments, list) and all(isinstance(s, int) for s in segments) and segments:
        chosen_segments = tuple(segments)
    else:
        raise _fail(name, "segments", f'must be "all" or a list of segment ids, got {segments!r}')
    baseline = values["baseline"]
    if baseline is None:
        baseline = 0.2 if metric == CONVERSION else 50.0
    upper = 1.0 if metric == CONVERSION else float("inf")
    baseline = _number(name, "baseline", baseline, 0.0, upper)
    effects = values["effects"]
    if not isinstance(effects, dict):
        raise _fail(name, "effects", "must be a table of segment id (or default) = effect")
    for key, effect in effects.items():
        if key != "default" and not str(key).isdigit():
            raise _fail(name, f"effects.{key}", "must be a segment id or 'default'")
        _number(name, f"effects.{key}", effect, -upper, upper)
    sd = _number(name, "baseline_sd", values["baseline_sd"], 0.0, float("inf"))
    expected = values["expected_effect"]
    if expected is None:
        expected = 0.05 if metric == CONVERSION else 0.2 * sd
    population = values["population"]
    if isinstance(population, bool) or not isinstance(population, int) or population < 0:
        raise _fail(name, "population", f"must be a whole number >= 0, got {population!r}")
    seed = values["seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _fail(name, "seed", f"must be an integer, got {seed!r}")
    if not isinstance(values["simulate"], bool):
        raise _fail(name, "simulate", f"must be true or false, got {values['simulate']!r}")
    return Experiment(
        name=name,
        metric=metric,
        segments=chosen_segments,
        treatment_share=_number(name, "treatment_share", values["treatment_share"], 0.01, 0.99),
        alpha=_number(name, "alpha", values["alpha"], 1e-6, 0.5),
        power=_number(name, "power", values["power"], 0.05, 0.999),
        expected_effect=_number(name, "expected_effect", expected, -upper, upper),
        simulate=values["simulate"],
        baseline=baseline,
        baseline_sd=sd,
        effects={str(k): float(v) for k, v in effects.items()},
        pre_period_correlation=_number(
            name, "pre_period_correlation", values["pre_period_correlation"], -1.0, 1.0
        ),
        population=population,
        seed=seed,
    )


def configured(variables: dict[str, Any]) -> dict[str, Experiment]:
    unknown = set(variables) - {"experiments"}
    if unknown:
        raise ConfigError(f"pipeline.toml: unknown key 'vars.{sorted(unknown)[0]}'")
    experiments = variables.get("experiments", {})
    if not isinstance(experiments, dict):
        raise ConfigError("pipeline.toml: key 'vars.experiments' must be a table of experiments")
    return {name: parse(name, spec) for name, spec in sorted(experiments.items())}


def for_logged(name: str, outcomes: Any) -> Experiment:
    """An experiment that appears only in logs: defaults, with the metric read off the data."""
    binary = set(outcomes.dropna().unique()) <= {0.0, 1.0}
    return parse(name, {"metric": CONVERSION if binary else AMOUNT, "simulate": False})
