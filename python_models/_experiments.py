"""Experiments as configured in ``[vars.experiments.<name>]``, checked key by key.

The checks raise ParameterError naming the dotted key; the engine names the config file.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
from dataclasses import dataclass
from typing import Any

from engine.model_api import ParameterError, check_value, check_values
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
    "unit": "",  # an amount's unit ("£", "$", "points"); a conversion is a share
    # A campaign on an audience ([audiences.<name>]): its target is the treatment, its holdout
    # the control, and the outcomes are read from the order lines dated in [start, end].
    "audience": None,
    "start_date": None,
    "end_date": None,
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
    unit: str = ""
    audience: str | None = None
    start_date: datetime.date | None = None
    end_date: datetime.date | None = None  # None: to the end of the order lines
    baseline_given: bool = False  # the config set baseline (power is then planned at it)

    def truth(self, segment_id: int) -> Truth:
        effect = self.effects.get(str(segment_id), self.effects.get("default", 0.0))
        return Truth(
            self.metric, self.baseline, self.baseline_sd, effect, self.pre_period_correlation
        )


# Every key an experiment takes but "segments" ("all" or a list of ids: _segments); what
# depends on the metric is checked in parse().
CONSTRAINTS: dict[str, dict[str, Any]] = {
    "metric": {"type": "string", "choices": [CONVERSION, AMOUNT]},
    "treatment_share": {"type": "number", "min": 0.01, "max": 0.99},
    "alpha": {"type": "number", "min": 1e-6, "max": 0.5},
    "power": {"type": "number", "min": 0.05, "max": 0.999},
    "expected_effect": {"type": "number", "nullable": True},
    "simulate": {"type": "boolean"},
    "baseline": {"type": "number", "min": 0, "nullable": True},
    "baseline_sd": {"type": "number", "min": 0},
    "effects": {"type": "table"},
    "pre_period_correlation": {"type": "number", "min": -1, "max": 1},
    "population": {"type": "integer", "min": 0},
    "seed": {"type": "integer", "nullable": True},
    "unit": {"type": "string"},
    "audience": {"type": "string", "nullable": True},
    "start_date": {"type": "string", "nullable": True},
    "end_date": {"type": "string", "nullable": True},
}


def _segments(key: str, segments: Any) -> tuple[int, ...] | None:
    if segments == "all":
        return None
    if isinstance(segments, list) and segments and all(_is_id(s) for s in segments):
        return tuple(segments)
    raise ParameterError(key, f'must be "all" or a list of segment ids, got {segments!r}')


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _effects(key: str, effects: dict[str, Any], upper: float) -> dict[str, float]:
    rule = {"type": "number", "min": -upper, "max": upper}
    for segment, effect in effects.items():
        if segment != "default" and not str(segment).isdigit():
            raise ParameterError(f"{key}.{segment}", "must be a segment id or 'default'")
        check_value(f"{key}.{segment}", effect, rule, {})
    return {str(k): float(v) for k, v in effects.items()}


def parse(name: str, spec: Any) -> Experiment:
    """The experiment ``vars.experiments.<name>``, every key checked against CONSTRAINTS."""
    prefix = f"vars.experiments.{name}"
    if not isinstance(spec, dict):
        raise ParameterError(prefix, "must be a table")
    for key in spec:
        if key not in DEFAULTS:
            hint = difflib.get_close_matches(key, list(DEFAULTS), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise ParameterError(f"{prefix}.{key}", f"is not a known key{suggestion}")
    values = {**DEFAULTS, **spec}
    segments = _segments(f"{prefix}.segments", values.pop("segments"))
    check_values(values, CONSTRAINTS, prefix)
    metric = values["metric"]
    upper = 1.0 if metric == CONVERSION else float("inf")
    baseline = values["baseline"]
    if baseline is None:
        baseline = 0.2 if metric == CONVERSION else 50.0
    check_value(f"{prefix}.baseline", baseline, {"type": "number", "max": upper}, {})
    expected = values["expected_effect"]
    if expected is None:
        expected = 0.05 if metric == CONVERSION else 0.2 * values["baseline_sd"]
    if metric == CONVERSION and values["unit"]:
        raise ParameterError(
            f"{prefix}.unit", "applies to an amount: a conversion is a share (lifts in pp)"
        )
    check_value(
        f"{prefix}.expected_effect", expected, {"type": "number", "min": -upper, "max": upper}, {}
    )
    window = _campaign_window(prefix, values, spec)
    return Experiment(
        name=name,
        metric=metric,
        segments=segments,
        treatment_share=float(values["treatment_share"]),
        alpha=float(values["alpha"]),
        power=float(values["power"]),
        expected_effect=float(expected),
        # A campaign's outcomes are read from the order lines, never simulated.
        simulate=values["simulate"] and values["audience"] is None,
        baseline=float(baseline),
        baseline_sd=float(values["baseline_sd"]),
        effects=_effects(f"{prefix}.effects", values["effects"], upper),
        pre_period_correlation=float(values["pre_period_correlation"]),
        population=values["population"],
        seed=values["seed"],
        unit=values["unit"].strip(),
        audience=values["audience"],
        start_date=window[0],
        end_date=window[1],
        baseline_given=values["baseline"] is not None,
    )


def _date(key: str, value: str | None) -> datetime.date | None:
    if value is None:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise ParameterError(key, f"must be a date written YYYY-MM-DD, got {value!r}") from None


def _campaign_window(
    prefix: str, values: dict[str, Any], spec: dict[str, Any]
) -> tuple[datetime.date | None, datetime.date | None]:
    """An audience campaign's outcome window; its split is the audience's, not configured."""
    start, end = (
        _date(f"{prefix}.start_date", values["start_date"]),
        _date(f"{prefix}.end_date", values["end_date"]),
    )
    if values["audience"] is None:
        for key in ("start_date", "end_date"):
            if key in spec:
                raise ParameterError(f"{prefix}.{key}", "applies to an audience campaign only")
        return start, end
    if start is None:
        raise ParameterError(f"{prefix}.start_date", "is required with an audience")
    if end is not None and end < start:
        raise ParameterError(f"{prefix}.end_date", f"is before start_date {start}")
    for key in ("treatment_share", "population", "segments"):
        if key in spec:
            raise ParameterError(
                f"{prefix}.{key}",
                "does not apply to an audience campaign (the audience's holdout is the control)",
            )
    return start, end


def with_audience_split(experiment: Experiment, holdout_shares: dict[str, float]) -> Experiment:
    """An audience campaign's treatment share is its audience's target share."""
    if experiment.audience is None:
        return experiment
    share = 1.0 - holdout_shares[experiment.audience]
    return dataclasses.replace(experiment, treatment_share=share)


def configured(variables: dict[str, Any]) -> dict[str, Experiment]:
    unknown = set(variables) - {"experiments"}
    if unknown:
        raise ParameterError(f"vars.{sorted(unknown)[0]}", "is not a known key")
    experiments = variables.get("experiments", {})
    if not isinstance(experiments, dict):
        raise ParameterError("vars.experiments", "must be a table of experiments")
    return {name: parse(name, spec) for name, spec in sorted(experiments.items())}


def for_logged(name: str, outcomes: Any) -> Experiment:
    """An experiment that appears only in logs: defaults, with the metric read off the data."""
    binary = set(outcomes.dropna().unique()) <= {0.0, 1.0}
    return parse(name, {"metric": CONVERSION if binary else AMOUNT, "simulate": False})
