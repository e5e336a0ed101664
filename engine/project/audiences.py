"""The ``[audiences.<name>]`` sections: customer lists a marketing tool loads, with holdouts.

An audience is the customers of marts.dim_customers for whom its ``condition`` (DuckDB SQL, as
in a WHERE clause) holds. A deterministic hash of the audience's name and the customer's id
puts a ``holdout_share`` of them in the holdout, the same customers every refresh; the rest are
the target. python_models/audience_assignments.py applies them; ``pipeline.py export
--audiences`` writes the targets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from engine.errors import ConfigError

MODELS_DIALECT = "duckdb"  # conditions are written and kept in the models' SQL
# An audience's name becomes a file name and a value in the tables: plain characters only.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
SCHEMA = {
    "type": "table",
    "keys": "an audience name",
    "values": {
        "type": "table",
        "fields": {
            "condition": {"type": "string"},
            "holdout_share": {"type": "number", "min": 0, "below": 1},
            "columns": {"type": "list", "items": {"type": "string"}, "non_empty": False},
        },
    },
}


@dataclass(frozen=True)
class Audience:
    name: str
    condition: exp.Expression  # parsed: columns of marts.dim_customers only
    holdout_share: float = 0.0
    columns: tuple[str, ...] = ()  # exported beside the customer id

    @property
    def condition_sql(self) -> str:
        """The condition in the models' dialect (DuckDB's), its identifiers quoted."""
        quoted = self.condition.copy()
        for column in quoted.find_all(exp.Column):
            column.set("this", exp.to_identifier(column.name, quoted=True))
        return quoted.sql(MODELS_DIALECT)

    @property
    def referenced(self) -> list[str]:
        """The columns the condition reads, in order of appearance."""
        return list(dict.fromkeys(c.name for c in self.condition.find_all(exp.Column)))


def _what_is_wrong(exc: SqlglotError) -> str:
    """sqlglot's reason in words, where it is: without its class names and terminal colours."""
    if isinstance(exc, ParseError) and exc.errors:
        error = exc.errors[0]
        reason = error["description"].split(" for <class")[0]
        return f"{reason} (line {error['line']}, column {error['col']})"
    return str(exc)


def _condition(name: str, text: Any, where: str) -> exp.Expression:
    key = f"audiences.{name}.condition"
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}: key '{key}' is required: a SQL condition over dim_customers")
    try:
        parsed = sqlglot.parse_one(text, read=MODELS_DIALECT)
    except SqlglotError as exc:
        raise ConfigError(
            f"{where}: key '{key}' is not a SQL condition: {_what_is_wrong(exc)}"
        ) from None
    if isinstance(parsed, exp.Query) or parsed.find(exp.Query) or parsed.find(exp.Table):
        raise ConfigError(
            f"{where}: key '{key}' must be a condition on the columns of marts.dim_customers, "
            "not a query"
        )
    return parsed


def audiences_of(section: dict[str, Any], where: str) -> tuple[Audience, ...]:
    found = []
    for name, spec in sorted(section.items()):
        if not NAME.fullmatch(name):
            raise ConfigError(
                f"{where}: key 'audiences.{name}': a name of letters, digits, _ and - (it names "
                "the exported file)"
            )
        found.append(
            Audience(
                name=name,
                condition=_condition(name, spec.get("condition"), where),
                holdout_share=float(spec.get("holdout_share", 0.0)),
                columns=tuple(spec.get("columns", ())),
            )
        )
    return tuple(found)


def check_columns(audiences: tuple[Audience, ...], available: list[str], where: str) -> None:
    """Every column a condition reads or an export writes is one of marts.dim_customers'."""
    for audience in audiences:
        for key, names in (("condition", audience.referenced), ("columns", audience.columns)):
            unknown = [c for c in names if c not in available]
            if unknown:
                raise ConfigError(
                    f"{where}: key 'audiences.{audience.name}.{key}' names {unknown[0]!r}, "
                    f"which marts.dim_customers does not have; it has {available}"
                )


def check_campaigns(
    audiences: tuple[Audience, ...], experiments: dict[str, Any], where: str
) -> None:
    """An experiment naming an audience names one that exists and holds customers out."""
    shares = {a.name: a.holdout_share for a in audiences}
    if not isinstance(experiments, dict):
        return  # the experiments' own checks name what is wrong
    for name, spec in experiments.items():
        audience = spec.get("audience") if isinstance(spec, dict) else None
        if audience is None:
            continue
        key = f"vars.experiments.{name}.audience"
        if audience not in shares:
            raise ConfigError(
                f"{where}: key '{key}' = {audience!r} names no audience; configured: "
                f"{sorted(shares)}"
            )
        if shares[audience] <= 0:
            raise ConfigError(
                f"{where}: key '{key}' = {audience!r}: the audience holds nobody out "
                f"(audiences.{audience}.holdout_share is 0), so there is no control to compare"
            )
