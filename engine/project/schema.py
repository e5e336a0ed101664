"""The config's keys, declared in the constraint vocabulary (engine/project/constraints.py),
and the walker that checks a document against them.

A section with fixed keys is ``section(...)``; a table whose keys the user chooses (sources,
models) is ``table_of(rule, "a source name")``; a list is ``list_of(rule)``. Every error names
the dotted key and what was expected; an unknown key gets "did you mean".
"""

from __future__ import annotations

import difflib
from typing import Any

from engine.errors import ConfigError
from engine.project.constraints import ParameterError, check_value

Rule = dict[str, Any]

STRING: Rule = {"type": "string"}
INTEGER: Rule = {"type": "integer"}
NUMBER: Rule = {"type": "number"}
BOOLEAN: Rule = {"type": "boolean"}
ANY_TABLE: Rule = {"type": "table"}


def section(**fields: Rule) -> Rule:
    return {"type": "table", "fields": fields}


def table_of(values: Rule, keys: str) -> Rule:
    return {"type": "table", "values": values, "keys": keys}


def list_of(items: Rule, non_empty: bool = True) -> Rule:
    return {"type": "list", "items": items, "non_empty": non_empty}


def validate(
    value: Any, rule: Rule, key: str, where: str, removed: dict[str, str] | None = None
) -> None:
    """Check ``value`` against ``rule``; ``removed`` are keys no longer taken, and why."""
    removed = removed or {}
    try:
        check_value(key, value, rule, {})
    except ParameterError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if "fields" in rule:
        _check_fields(value, rule["fields"], key, where, removed)
    if "values" in rule:
        for sub_key, sub_value in value.items():
            validate(sub_value, rule["values"], f"{key}.{sub_key}", where, removed)


def _check_fields(
    value: dict[str, Any], fields: dict[str, Rule], key: str, where: str, removed: dict[str, str]
) -> None:
    for sub_key, sub_value in value.items():
        full = f"{key}.{sub_key}" if key else sub_key
        if full in removed:
            raise ConfigError(f"{where}: key '{full}' is no longer used: {removed[full]}")
        if sub_key not in fields:
            hint = difflib.get_close_matches(sub_key, list(fields), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            known = ", ".join(sorted(fields))
            raise ConfigError(
                f"{where}: unknown key '{full}'{suggestion}; expected one of: {known}"
            )
        validate(sub_value, fields[sub_key], full, where, removed)


def lookup(document: dict[str, Any], dotted: str) -> Any:
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node
