"""A reconciliation that balances can still say the source gave nothing to build on.

When a required source's reconciliation counts raw rows but stages none, every model downstream
would fail for a reason far from the cause ("k_max needs more than 0 customers"). The run stops
at the reconciliation instead, saying what the landing files held and why the rows were rejected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

from engine.project.config import Config
from engine.project.discovery import REJECTED_ROLE, SOURCE_LAYER, Model, Project
from engine.warehouse.statements import DIALECT, table_ref

if TYPE_CHECKING:
    from engine.warehouse.catalog import BuildCatalog

REASONS_SHOWN = 3


def nothing_staged(
    catalog: BuildCatalog,
    project: Project,
    model: Model,
    row: dict[str, Any],
    config: Config,
) -> str | None:
    """Why no row of a required source was staged, or None when some were (or it is optional)."""
    name = reconciled_source(project, model)
    if row.get("staged_rows") != 0 or name is None or config.sources[name].optional:
        return None
    source = f"{SOURCE_LAYER}.{name}"
    raw_rows = row.get("raw_rows") or 0
    if raw_rows == 0:
        return _empty(config, name)
    rejected = [t for t in model.inputs if project.models[t].role == REJECTED_ROLE]
    reasons = _top_reasons(catalog, rejected[0]) if rejected else ""
    return f"no row was staged: all {raw_rows} rows of {source} were rejected{reasons}"


def empty_source(model: Model, rows: int, config: Config) -> str | None:
    """Why a required source that loaded no row stops the run, or None.

    Said at the load, before its expectations are validated: otherwise which of "the row count
    expectation failed" and "no row was staged" a user is told would depend on which came first.
    """
    source = config.sources.get(model.name)
    if model.layer != SOURCE_LAYER or rows or source is None or source.optional:
        return None
    return None if source.implicit else _empty(config, model.name)


def _empty(config: Config, name: str) -> str:
    files = ", ".join(config.sources[name].files)
    return (
        f"no row was staged: {SOURCE_LAYER}.{name} is empty "
        f"(the landing files {files} hold no data rows)"
    )


def where_rows_went(
    catalog: BuildCatalog, project: Project, reconciliation: dict[str, dict[str, Any]]
) -> str:
    """For every source with rows: how many were staged and rejected, and the most common
    reasons, so a message about too few customers can say where the others went."""
    parts = []
    for table, row in reconciliation.items():
        model = project.models[table]
        name = reconciled_source(project, model)
        if name is None or not row.get("raw_rows"):
            continue
        rejected = [t for t in model.inputs if project.models[t].role == REJECTED_ROLE]
        reasons = (
            _top_reasons(catalog, rejected[0]) if rejected and row.get("rejected_rows") else ""
        )
        parts.append(
            f"{SOURCE_LAYER}.{name}: {row['raw_rows']} rows, {row.get('staged_rows')} staged, "
            f"{row.get('rejected_rows')} rejected{reasons}"
        )
    return "; ".join(parts)


def reconciled_source(project: Project, model: Model) -> str | None:
    """The source a reconciliation counts: the one raw table it reads (None if not one)."""
    sources = [t for t in model.inputs if project.models[t].layer == SOURCE_LAYER]
    return project.models[sources[0]].name if len(sources) == 1 else None


def _top_reasons(catalog: BuildCatalog, table: str) -> str:
    layer, name = table.split(".")
    if "reason_text" not in catalog.schema(table).column_names:
        return ""
    query = (
        exp.select(exp.column("reason_text"), exp.func("count", exp.Star()).as_("n"))
        .from_(table_ref(layer, name))
        .group_by(exp.column("reason_text"))
        .order_by(exp.column("n").desc(), exp.column("reason_text"))
        .limit(REASONS_SHOWN)
    )
    found = catalog.query(query.sql(DIALECT))
    return "; most common reasons: " + "; ".join(
        f"{text} ({n} row{'s' if n != 1 else ''})" for text, n in found
    )
