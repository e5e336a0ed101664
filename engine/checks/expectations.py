"""Validate built tables with Great Expectations suites kept in ``expectations/``.

Each suite is a reviewable JSON file named after the table it guards
(``staging.stg_customers.json``) in GX's own suite format. An expectation's ``severity`` decides
what a failure does: ``critical`` (the default) blocks the publish, ``warning`` and ``info`` are
recorded and reported only.

Suites are written for GX's pandas data source (row conditions in pandas' syntax, pandas
dtypes); an engine that validates through another data source adapts each expectation as it
goes (``Validator(data_source, adapt)``). GX is imported lazily: it costs seconds.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ProjectError

if TYPE_CHECKING:  # pandas is imported by whoever validates; not by every command that reports
    import pandas as pd

BLOCKING_SEVERITY = "critical"
# These read the column names and nothing else, so they are validated on zero rows.
SCHEMA_EXPECTATIONS = frozenset(
    {
        "expect_column_to_exist",
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
    }
)
SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class ExpectationResult:
    suite: str
    table_name: str
    expectation_type: str
    column_name: str | None
    kwargs: str
    severity: str
    success: bool
    observed_value: str | None
    unexpected_count: int | None
    unexpected_percent: float | None
    error: str | None
    unexpected_values: str | None = None  # up to UNEXPECTED_SHOWN of them, as JSON

    @property
    def blocking_failure(self) -> bool:
        return not self.success and self.severity == BLOCKING_SEVERITY

    def describe(self) -> str:
        """'table column: type (the rule) — what was found', e.g. 'rejected_share:
        expect_column_values_to_be_between (at most 0.05) — 1 unexpected (100.00%): [0.123]'."""
        column = f"{self.column_name}: " if self.column_name else ""
        rule = _rule_words(json.loads(self.kwargs) if self.kwargs else {})
        detail = []
        if self.observed_value is not None:
            detail.append(f"observed {self.observed_value}")
        if self.unexpected_count:
            values = f": {self.unexpected_values}" if self.unexpected_values else ""
            percent = f"{self.unexpected_percent:.2f}%"
            detail.append(f"{self.unexpected_count} unexpected ({percent}){values}")
        if self.error:
            detail.append(f"error: {self.error}")
        tail = f" — {', '.join(detail)}" if detail else ""
        return f"{self.table_name} {column}{self.expectation_type}{rule}{tail}"


UNEXPECTED_SHOWN = 5


def _rule_words(kwargs: dict[str, Any]) -> str:
    """What the expectation asks, in words, from its kwargs: ' (between 0 and 1)'."""
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if isinstance(kwargs.get("value_set"), list):
        shown = kwargs["value_set"][:UNEXPECTED_SHOWN]
        more = ", …" if len(kwargs["value_set"]) > UNEXPECTED_SHOWN else ""
        return f" (one of {', '.join(map(str, shown))}{more})"
    if isinstance(low, int | float) and isinstance(high, int | float):
        return f" (between {low:g} and {high:g})"
    if isinstance(high, int | float):
        return f" (at most {high:g})"
    if isinstance(low, int | float):
        return f" (at least {low:g})"
    if "value" in kwargs:
        return f" (equal to {kwargs['value']})"
    return ""


@dataclass(frozen=True)
class Suite:
    table: str
    path: Path
    document: dict[str, Any]

    @property
    def columns(self) -> set[str]:
        """Names the data expectations may read: their columns and any word of a row_condition.

        A superset is fine (the caller keeps the names the table has); a missing name is not, so
        a row_condition contributes every identifier in it.
        """
        found: set[str] = set()
        for position in self.data_positions:
            kwargs = self.document["expectations"][position].get("kwargs", {})
            for key in ("column", "column_A", "column_B"):
                if isinstance(kwargs.get(key), str):
                    found.add(kwargs[key])
            found.update(c for c in kwargs.get("column_list", []) if isinstance(c, str))
            if isinstance(kwargs.get("row_condition"), str):
                found.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", kwargs["row_condition"]))
        return found

    @property
    def schema_positions(self) -> list[int]:
        """Expectations about the table's columns themselves, which need its schema but no rows."""
        return [
            i
            for i, e in enumerate(self.document["expectations"])
            if e.get("type") in SCHEMA_EXPECTATIONS
        ]

    @property
    def data_positions(self) -> list[int]:
        schema = set(self.schema_positions)
        return [i for i in range(len(self.document["expectations"])) if i not in schema]

    def without(self, positions: set[int]) -> Suite:
        """The suite less the expectations at ``positions`` (checked some other way)."""
        kept = [e for i, e in enumerate(self.document["expectations"]) if i not in positions]
        return Suite(self.table, self.path, {**self.document, "expectations": kept})


PLACEHOLDER = "_"


def _for_column(value: Any, column: str) -> Any:
    """An ``each`` expectation's kwargs for one column: ``"_"`` is the column, and a parameter
    named ``_min`` is ``<column>_min``."""
    if value == PLACEHOLDER:
        return column
    if isinstance(value, dict):
        if set(value) == {"$PARAMETER"} and str(value["$PARAMETER"]).startswith(PLACEHOLDER):
            return {"$PARAMETER": column + value["$PARAMETER"]}
        return {k: _for_column(v, column) for k, v in value.items()}
    if isinstance(value, list):
        return [_for_column(v, column) for v in value]
    return value


def _expanded(
    expectations: list[dict[str, Any]], sets: dict[str, tuple[str, ...]], path: Path
) -> list[dict[str, Any]]:
    """Expectations with ``"each": "<column set>"`` (engine/project/columns.py) once per column."""
    out: list[dict[str, Any]] = []
    for position, expectation in enumerate(expectations, start=1):
        if "each" not in expectation:
            out.append(expectation)
            continue
        name = expectation["each"]
        if name not in sets:
            raise ProjectError(
                f"{path}: expectation {position}: 'each' names no column set: {name!r}; "
                f"known: {', '.join(sorted(sets))}"
            )
        template = {k: v for k, v in expectation.items() if k != "each"}
        out += [_for_column(template, column) for column in sets[name]]
    return out


def load_suites(
    directory: Path,
    sets: dict[str, tuple[str, ...]] | None = None,
    absent_sources: frozenset[str] = frozenset(),
) -> dict[str, Suite]:
    """Every suite file, keyed by the table it guards; a malformed file is an error naming it.

    ``sets`` are the config's column sets, which ``each`` expectations repeat over. A suite with
    ``"source": "<name>"`` guards that source's tables and is left out when the config has no
    such source (its tables are then empty by design)."""
    suites: dict[str, Suite] = {}
    for path in sorted(directory.glob("*.json")):
        table = path.stem
        if table.count(".") != 1:
            raise ProjectError(f"{path}: a suite file is named <layer>.<table>.json")
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ProjectError(f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
        expectations = document.get("expectations") if isinstance(document, dict) else None
        if not isinstance(expectations, list):
            raise ProjectError(f"{path}: expected a GX suite with an 'expectations' list")
        if document.get("source") in absent_sources:
            continue
        expectations = _expanded(expectations, sets or {}, path)
        document = {**document, "expectations": expectations}
        for position, expectation in enumerate(expectations, start=1):
            severity = expectation.get("severity", BLOCKING_SEVERITY)
            if severity not in SEVERITIES or "type" not in expectation:
                raise ProjectError(
                    f"{path}: expectation {position} needs a 'type' and a severity in {SEVERITIES}"
                )
        suites[table] = Suite(table=table, path=path, document=document)
    return suites


def _import_gx() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


def _error_message(exception_info: Any) -> str | None:
    if not isinstance(exception_info, dict):
        return None
    if exception_info.get("raised_exception"):
        return str(exception_info.get("exception_message"))
    for nested in exception_info.values():
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return str(nested.get("exception_message"))
    return None


# An expectation as a data source reads it, given the file it came from for messages.
Adapt = Callable[[dict[str, Any], str], dict[str, Any]]


def _as_written(expectation: dict[str, Any], _: str) -> dict[str, Any]:
    return expectation


class Validator:
    """One ephemeral GX context per run, validating frames against suites.

    ``data_source`` is the name of the GX data source kind (``"pandas"``, or another engine's:
    ``add_<kind>``); ``adapt`` rewrites each expectation for it (row conditions and dtypes are
    written for pandas)."""

    def __init__(self, data_source: str = "pandas", adapt: Adapt = _as_written) -> None:
        gx = _import_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._gx, self._adapt = gx, adapt
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        source = getattr(context.data_sources, f"add_{data_source}")("warehouse")
        self._batch_definition = source.add_dataframe_asset(
            "table"
        ).add_batch_definition_whole_dataframe("whole_table")

    def validate(
        self,
        suite: Suite,
        frame: pd.DataFrame,
        parameters: dict[str, Any],
        schema: pd.DataFrame | None = None,
    ) -> list[ExpectationResult]:
        """Run ``suite`` on ``frame``; ``parameters`` fill the suite's $PARAMETER references.

        With ``schema`` (zero rows, every column of the table), the expectations about columns
        run on it, so ``frame`` needs only the columns the other expectations read.
        """
        results = []
        for positions, data in (
            (suite.schema_positions, frame if schema is None else schema),
            (suite.data_positions, frame),
        ):
            if positions:
                results.extend(self._validate(suite, positions, data, parameters))
        return results

    def _validate(
        self, suite: Suite, positions: list[int], frame: pd.DataFrame, parameters: dict[str, Any]
    ) -> list[ExpectationResult]:
        gx = self._gx
        expectations = [suite.document["expectations"][i] for i in positions]
        expectations = [self._adapt(e, suite.path.name) for e in expectations]
        document = {k: v for k, v in suite.document.items() if k in ("name", "meta")}
        document["expectations"] = expectations
        document.setdefault("name", suite.table)
        try:
            gx_suite = gx.ExpectationSuite(**document)
        except Exception as exc:  # GX raises many types for a malformed suite; name the file.
            raise ProjectError(f"{suite.path}: not a valid GX suite: {exc}") from exc
        # GX logs and drops an expectation it does not know; a dropped check must not pass.
        known = [e.expectation_type for e in gx_suite.expectations]
        for position, expectation in zip(positions, expectations, strict=True):
            if expectation["type"] not in known:
                raise ProjectError(
                    f"{suite.path}: expectation {position + 1}: GX has no expectation type "
                    f"'{expectation['type']}'"
                )
            known.remove(expectation["type"])
        batch = self._batch_definition.get_batch(batch_parameters={"dataframe": frame})
        # BASIC carries every figure recorded below; GX's default (SUMMARY) also tallies sample
        # unexpected values, which nothing reads, for about 40% more validation time.
        outcome = batch.validate(gx_suite, expectation_parameters=parameters, result_format="BASIC")
        results = []
        for item in outcome.results:
            configuration = item.expectation_config
            kwargs = {k: v for k, v in configuration.kwargs.items() if k != "batch_id"}
            result = item.result or {}
            severity = getattr(configuration.severity, "value", configuration.severity)
            results.append(
                ExpectationResult(
                    suite=suite.path.name,
                    table_name=suite.table,
                    expectation_type=configuration.type,
                    column_name=kwargs.get("column"),
                    kwargs=json.dumps(kwargs, default=str, sort_keys=True),
                    severity=str(severity or BLOCKING_SEVERITY),
                    success=bool(item.success),
                    observed_value=_as_text(result.get("observed_value")),
                    unexpected_count=result.get("unexpected_count"),
                    unexpected_percent=result.get("unexpected_percent"),
                    error=_error_message(item.exception_info),
                    unexpected_values=_as_text(
                        result.get("partial_unexpected_list", [])[:UNEXPECTED_SHOWN] or None
                    ),
                )
            )
        return results
