"""Declared constraints on values, checked the same way wherever values come from.

One vocabulary serves the config's own keys (engine/project/schema.py declares them with it) and
the Python models' parameters. A model declares, beside its ``PARAMETERS`` defaults, a literal
``PARAMETER_CONSTRAINTS`` (as scikit-learn's estimators declare ``_parameter_constraints``): for
each key its type and, where it applies, an interval or a list of choices. An interval's bound
may name another parameter (``{"type": "integer", "min": "k_min"}``). The engine checks every
model's section of the config against them before any model runs; models check their own
free-form variables (the experiments) with the same function.

    {"type": "integer" | "number" | "string" | "boolean" | "table" | "list",
     "min"/"max": a number or a key (inclusive), "above"/"below": the same, exclusive,
     "choices": [...], "nullable": true,
     "items": a constraint on every element of a list, "non_empty": true,
     "fields": {key: constraint} of a table with fixed keys,
     "values": a constraint on every value of a table whose keys the user chooses,
     "keys": what those keys name, for messages ("a source name")}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
    "table": (dict,),
    "list": (list,),
}
TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "table": "a table",
    "list": "a list",
}
FIELDS = (
    "type", "min", "max", "above", "below", "choices", "nullable",
    "items", "non_empty", "fields", "values", "keys",
)  # fmt: skip


BOUNDS = (
    ("min", lambda value, bound: value < bound, "at least"),
    ("max", lambda value, bound: value > bound, "at most"),
    ("above", lambda value, bound: value <= bound, "above"),
    ("below", lambda value, bound: value >= bound, "below"),
)


class ParameterError(ValueError):
    """A value breaks its constraint; the message starts with the dotted key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"key '{key}' {message}")
        self.key = key


def _is_type(value: Any, kind: str) -> bool:
    # TOML booleans are Python ints; a boolean is never a valid number here.
    if isinstance(value, bool):
        return kind == "boolean"
    return isinstance(value, TYPES[kind])


def described(rule: Mapping[str, Any]) -> str:
    """What a value of the rule is, in words: 'an integer', 'a list of a string'."""
    if rule["type"] == "list" and "items" in rule:
        return f"a list of {described(rule['items'])}"
    if rule["type"] == "table" and "keys" in rule:
        return f"a table of {rule['keys']}s"
    return TYPE_WORDS[rule["type"]]


def _bound(bound: Any, values: Mapping[str, Any]) -> tuple[float, str]:
    """A bound's value, and how a message names it."""
    if isinstance(bound, str):
        return values[bound], f"{bound} (= {values[bound]!r})"
    return bound, f"{bound:g}"


def check_value(key: str, value: Any, rule: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Raise ParameterError naming ``key`` if ``value`` breaks ``rule``.

    ``values`` are its sibling parameters, which a bound may name.
    """
    if value is None and rule.get("nullable"):
        return
    kind = rule["type"]
    items = rule.get("items")
    if not _is_type(value, kind) or (
        items is not None and not all(_is_type(v, items["type"]) for v in value)
    ):
        raise ParameterError(key, f"must be {described(rule)}, got {value!r}")
    if rule.get("non_empty") and not value:
        raise ParameterError(key, "must not be empty")
    if "choices" in rule and value not in rule["choices"]:
        choices = " or ".join(repr(c) for c in rule["choices"])
        raise ParameterError(key, f"must be {choices}, got {value!r}")
    for field, broken, words in BOUNDS:
        if field in rule:
            bound, name = _bound(rule[field], values)
            if broken(value, bound):
                raise ParameterError(key, f"must be {words} {name}, got {value!r}")


def check_values(
    values: Mapping[str, Any], constraints: Mapping[str, Mapping[str, Any]], prefix: str
) -> None:
    """Check every value against its key's constraint; keys are reported as ``prefix.key``."""
    for key, value in values.items():
        check_value(f"{prefix}.{key}", value, constraints[key], values)


def constraint_problems(
    defaults: Mapping[str, Any], constraints: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """What is wrong with a declaration: a default without a constraint, an unknown field, a
    bound naming no parameter, or a default that breaks its own constraint."""
    problems = [
        f"'{k}' has no entry in PARAMETER_CONSTRAINTS" for k in defaults if k not in constraints
    ]
    problems += [
        f"PARAMETER_CONSTRAINTS names '{k}', which PARAMETERS lacks"
        for k in constraints
        if k not in defaults
    ]
    for key, rule in constraints.items():
        unknown = [f for f in rule if f not in FIELDS]
        if unknown or rule.get("type") not in TYPES:
            problems.append(f"'{key}': a constraint has a known 'type' and only {list(FIELDS)}")
            continue
        for field in ("min", "max", "above", "below"):
            if isinstance(rule.get(field), str) and rule[field] not in defaults:
                problems.append(f"'{key}': {field} names '{rule[field]}', which is no parameter")
    if not problems:
        try:
            check_values(defaults, constraints, "PARAMETERS")
        except ParameterError as exc:
            problems.append(f"the default breaks its constraint: {exc}")
    return problems
