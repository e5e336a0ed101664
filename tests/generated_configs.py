"""Hypothesis strategies for configs: the shipped sample's config with documented keys changed,
dropped or misspelt, and optional landing files present or not."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

FEATURES = ["age", "annual_income_k", "spending_score"]


@dataclass(frozen=True)
class ConfigCase:
    config: dict[str, Any]
    experiment_log: str | None  # an experiments landing file, or none
    changes: tuple[str, ...]  # what was changed, for the failure message


def to_toml(document: dict[str, Any]) -> str:
    """TOML for a config: scalars and lists under their table, nested tables as [a.b.c]."""
    lines: list[str] = []
    _table(document, [], lines)
    return "\n".join(lines) + "\n"


def _table(table: dict[str, Any], path: list[str], lines: list[str]) -> None:
    leaves = {k: v for k, v in table.items() if not isinstance(v, dict)}
    if path and (leaves or not table):
        lines.append("[" + ".".join(json.dumps(part) for part in path) + "]")
    lines.extend(f"{json.dumps(key)} = {_value(value)}" for key, value in leaves.items())
    for key, value in table.items():
        if isinstance(value, dict):
            _table(value, [*path, key], lines)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return json.dumps(value)


def _set(config: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    table = config
    for part in parents:
        table = table.setdefault(part, {})
    table[last] = value


def _drop(config: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    table = config
    for part in parents:
        table = table.get(part, {})
    table.pop(last, None)


CHANGES = {
    "features.columns": st.one_of(
        st.lists(st.sampled_from(FEATURES), min_size=1, max_size=3, unique=True),
        st.just([*FEATURES, "gender"]),
        st.just(["age", "no_such_column"]),
    ),
    "features.scaling": st.sampled_from(["standard", "minmax", "none", "zscore"]),
    "features.transforms": st.dictionaries(
        st.sampled_from([*FEATURES, "gender"]), st.sampled_from(["log1p", "none", "sqrt"])
    ),
    "sources.customers.kinds": st.dictionaries(
        st.sampled_from(["age", "gender", "annual_income_k", "spending_score"]),
        st.sampled_from(["integer", "number", "category", "text", "date", "int"]),
    ),
    "rules.ranges.age": st.one_of(
        st.fixed_dictionaries({"min": st.integers(-5, 120), "max": st.integers(-5, 120)}),
        st.just({"min": "15"}),
    ),
    "models.segment_model_selection.k_min": st.integers(1, 12),
    "models.segment_model_selection.k_max": st.integers(1, 12),
    "vars.experiments.spring_voucher.treatment_share": st.sampled_from([0.0, 0.1, 0.5, 1.0, 1.5]),
    "vars.experiments.loyalty_spend.metric": st.sampled_from(["amount", "conversion", "revenue"]),
    "drift.alert": st.sampled_from([0.05, 0.25, 1.0]),
    "warehouse.history_rums": st.just(3),
    "features.units": st.dictionaries(st.sampled_from(FEATURES), st.sampled_from(["£", "k$", ""])),
    "warehouse.storage_version": st.sampled_from(["v1.0.0", "v1.2.0", "latest", "v9"]),
    "warehouse.serial_validation_rows": st.sampled_from([0, 1, 100, -1]),
    "warehouse.counted_validation_rows": st.sampled_from([0, 1, 100, -1]),
    "warehouse.fit_workers": st.sampled_from([0, 1, 2, -2]),
    "sources.customers.delimiter": st.sampled_from([",", ";", ",,"]),
    "sources.customers.encoding": st.sampled_from(["utf-8", "latin-1", "no-such-codec"]),
    "sources.customers.date_format": st.sampled_from(["%Y-%m-%d", "%d/%m/%Y", ""]),
    "models.segment_model_selection.selection": st.sampled_from(["auto", "fixed", "best"]),
    "models.segment_model_selection.fixed_k": st.integers(0, 12),
    "models.segment_model_selection.min_stability": st.sampled_from([0.0, 0.5, 1.0, 1.5]),
    "models.segment_model_selection.n_init": st.sampled_from([1, 3, 0]),
    "models.segment_centroids.names": st.sampled_from([{"1": "Big spenders"}, {"x": "A"}, {}]),
    "models.surrogate_fidelity.target_fidelity": st.sampled_from([0.5, 0.99, 2.0]),
    "models.surrogate_fidelity.max_depth": st.sampled_from([1, 3, 0]),
    "models.feature_importance.n_estimators": st.sampled_from([5, 20, 0]),
    "models.feature_importance.refits": st.sampled_from([1, 2, 0]),
    "drift.bins": st.sampled_from([1, 2, 10, 101]),
    "drift.action": st.sampled_from(["warn", "block", "stop"]),
    "drift.actions": st.dictionaries(
        st.sampled_from([*FEATURES, "gender", "nothing"]), st.sampled_from(["warn", "block"])
    ),
    "audiences.generated": st.fixed_dictionaries(
        {
            "condition": st.sampled_from(
                ["age > 40", "gender = 'Female'", "age >", "gender = 'Female", "no_column = 1"]
            ),
            "holdout_share": st.sampled_from([0.0, 0.2, 1.0, 1.2]),
            "columns": st.sampled_from([[], ["segment_name"], ["no_column"]]),
        }
    ),
    "value.period": st.sampled_from(["week", "day", "month"]),
}
DROPS = [
    "rules.accepted.gender",
    "rules.ranges",
    "features.labels",
    "vars.experiments",
    "vars.experiments.loyalty_spend",
    "models.segment_centroids.feature_words",
    "models.surrogate_rules",
    "sources.experiment_logs",
]

EXPERIMENT_LOG = (
    "\n".join(
        ["experiment,customer_id,variant,outcome,pre_period_value"]
        + [
            f"spring_voucher,{i},{'treatment' if i % 2 else 'control'},{int(i % 3 == 0)},{i % 7}"
            for i in range(1, 201)
        ]
    )
    + "\n"
)


@st.composite
def config_cases(draw: st.DrawFn, shipped: dict[str, Any]) -> ConfigCase:
    config = copy.deepcopy(shipped)
    changes = []
    for key in draw(st.lists(st.sampled_from(sorted(CHANGES)), max_size=4, unique=True)):
        value = draw(CHANGES[key])
        _set(config, key, value)
        changes.append(f"{key} = {value!r}")
    for key in draw(st.lists(st.sampled_from(DROPS), max_size=2, unique=True)):
        _drop(config, key)
        changes.append(f"without {key}")
    log = EXPERIMENT_LOG if draw(st.booleans()) else None
    return ConfigCase(config, log, tuple(changes))
