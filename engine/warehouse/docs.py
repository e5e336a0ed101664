"""Lineage docs: a browsable page of every model and a machine-readable manifest beside it.

Per model: its description, SQL or Python source, inputs and outputs, the DAG as a picture,
column-level lineage for SQL models (sqlglot's lineage over the published warehouse's schema),
the expectations that guard it and its last run.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import lineage

from engine.checks.expectations import Suite
from engine.project.discovery import LAYER_ORDER, Project
from engine.warehouse import statements
from engine.warehouse.atomic_files import write_text_atomically
from engine.warehouse.published import connect_read_only


@dataclass(frozen=True)
class WarehouseFacts:
    schema: dict[str, dict[str, dict[str, str]]]  # layer -> table -> column -> type
    comments: dict[str, dict[str, str | None]]  # layer.table -> column -> its COMMENT
    last_runs: dict[str, dict[str, Any]]


def _warehouse_facts(warehouse: Path) -> WarehouseFacts:
    """The published schema (for lineage), its column comments and each model's last run."""
    if not warehouse.exists():
        return WarehouseFacts({}, {}, {})
    with connect_read_only(warehouse) as con:
        schema: dict[str, dict[str, dict[str, str]]] = {}
        comments: dict[str, dict[str, str | None]] = {}
        for layer, table, column, kind, comment in con.execute(
            "select schema_name, table_name, column_name, data_type, comment "
            "from duckdb_columns() order by schema_name, table_name, column_index"
        ).fetchall():
            schema.setdefault(layer, {}).setdefault(table, {})[column] = kind
            comments.setdefault(f"{layer}.{table}", {})[column] = comment
        runs = con.sql(
            "select model, status, rows, seconds, started_at, run_id from meta.model_runs "
            "qualify row_number() over (partition by model order by started_at desc) = 1"
        ).fetchall()
    last = {
        r[0]: {
            "status": r[1],
            "rows": r[2],
            "seconds": r[3],
            "started_at": str(r[4]),
            "run_id": r[5],
        }
        for r in runs
    }
    return WarehouseFacts(schema, comments, last)


def column_lineage(query: Any, schema: dict, layers: dict[str, str]) -> dict[str, list[str]]:
    """For each output column, the upstream table columns it is computed from.

    sqlglot cannot trace through every construct (UNPIVOT, say); such a column gets the tables
    sqlglot could reach, and sqlglot's warning about it is kept out of the user's terminal.
    """
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    found: dict[str, list[str]] = {}
    for item in query.selects:
        column = item.alias_or_name
        try:
            node = lineage(column, query, schema=schema or None, dialect=statements.DIALECT)
        except (SqlglotError, KeyError, ValueError):
            found[column] = []
            continue
        sources: set[str] = set()
        for leaf in (n for n in node.walk() if not n.downstream and "." in n.name):
            table = leaf.name.split(".")[0]
            if table in layers:
                sources.add(f"{layers[table]}.{leaf.name}")
            else:  # counted rows (count(*)) of a CTE: the tables that CTE reads
                sources.update(f"{layers[t]}.{t}.*" for t in _tables_under(query, table, layers))
        found[column] = sorted(sources)
    return found


def _tables_under(query: Any, cte_name: str, layers: dict[str, str]) -> set[str]:
    """The models a CTE reads, through the CTEs it reads."""
    ctes = {cte.alias_or_name: cte.this for cte in query.find_all(exp.CTE)}
    found: set[str] = set()
    pending, seen = [cte_name], set()
    while pending:
        name = pending.pop()
        if name in seen or name not in ctes:
            continue
        seen.add(name)
        for table in ctes[name].find_all(exp.Table):
            if table.name in layers and (table.db or table.name not in ctes):
                found.add(table.name)
            else:
                pending.append(table.name)
    return found


def manifest(
    project: Project, suites: dict[str, Suite], warehouse: Path, root: Path
) -> dict[str, Any]:
    facts = _warehouse_facts(warehouse)
    schema, last_runs = facts.schema, facts.last_runs
    children: dict[str, list[str]] = {t: [] for t in project.models}
    for table, model in project.models.items():
        for parent in model.inputs:
            children[parent].append(table)
    models = {}
    for table in project.order:
        model = project.models[table]
        # The published comments where there is a warehouse: every column, inherited and
        # generated descriptions included; else what the model declares.
        descriptions = facts.comments.get(table) or model.column_descriptions or {}
        columns = {c: {"description": d or ""} for c, d in descriptions.items()}
        if model.query is not None:
            layers = {m.name: m.layer for m in project.models.values()}
            for column, sources in column_lineage(model.query, schema, layers).items():
                columns.setdefault(column, {})["lineage"] = sources
        suite = suites.get(table)
        models[table] = {
            "name": model.name,
            "layer": model.layer,
            "kind": model.kind,
            "path": model.path.relative_to(root).as_posix() if model.path else None,
            "description": model.description,
            "role": model.role,
            "inputs": list(model.inputs),
            "outputs": sorted(children[table]),
            "columns": columns,
            "expectations": [
                {
                    "type": e["type"],
                    "column": e.get("kwargs", {}).get("column"),
                    "severity": e.get("severity", "critical"),
                }
                for e in (suite.document["expectations"] if suite else [])
            ],
            "last_run": last_runs.get(table),
        }
    return {"generated_at": datetime.now(UTC).isoformat(), "models": models}


def dag_png(project: Project) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = {
        layer: [t for t in project.order if project.models[t].layer == layer]
        for layer in LAYER_ORDER
    }
    height = max(len(v) for v in columns.values())
    position = {}
    for x, layer in enumerate(LAYER_ORDER):
        for y, table in enumerate(columns[layer]):
            position[table] = (x, height - y - (height - len(columns[layer])) / 2)
    figure, axis = plt.subplots(figsize=(3.2 * len(LAYER_ORDER), 0.55 * height + 1))
    for table, model in project.models.items():
        for parent in model.inputs:
            (x0, y0), (x1, y1) = position[parent], position[table]
            axis.annotate(
                "",
                xy=(x1 - 0.42, y1),
                xytext=(x0 + 0.42, y0),
                arrowprops={"arrowstyle": "->", "color": "#999", "lw": 0.7},
            )
    for table, (x, y) in position.items():
        axis.text(
            x,
            y,
            project.models[table].name,
            ha="center",
            va="center",
            fontsize=7,
            bbox={"boxstyle": "round", "facecolor": "#EAF0F8", "edgecolor": "#4C72B0"},
        )
    for x, layer in enumerate(LAYER_ORDER):
        axis.text(x, height + 1, layer, ha="center", fontsize=10, weight="bold")
    axis.set_xlim(-0.6, len(LAYER_ORDER) - 0.4)
    axis.set_ylim(0, height + 1.6)
    axis.axis("off")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _links(tables: list[str]) -> str:
    return ", ".join(f"<a href='#{t}'>{t}</a>" for t in tables) or "—"


def render(project: Project, document: dict[str, Any]) -> str:
    picture = base64.b64encode(dag_png(project)).decode()
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Models</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 12px;"
        "color:#222;overflow-wrap:anywhere}"
        "pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:12px}"
        ".scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;font-size:13px;"
        "overflow-wrap:normal;min-width:8em}"
        "img{max-width:100%;height:auto}</style></head><body><h1>Models</h1>",
        f"<img alt='the DAG' src='data:image/png;base64,{picture}'>",
        "<ul>" + "".join(f"<li><a href='#{t}'>{t}</a></li>" for t in document["models"]) + "</ul>",
    ]
    for table, info in document["models"].items():
        model = project.models[table]
        source = model.path.read_text(encoding="utf-8") if model.path else ""
        rows = "".join(
            f"<tr><td>{html.escape(c)}</td><td>{html.escape(v.get('description', ''))}</td>"
            f"<td>{html.escape(', '.join(v.get('lineage', [])))}</td></tr>"
            for c, v in info["columns"].items()
        )
        checks = "".join(
            f"<li>{html.escape(e['type'])} {html.escape(e['column'] or '')} ({e['severity']})</li>"
            for e in info["expectations"]
        )
        parts.append(
            f"<section id='{table}'><h2>{table}</h2><p>{html.escape(info['description'])}</p>"
            f"<p><b>{info['kind']}</b> {html.escape(info['path'] or '')}</p>"
            f"<p>Reads: {_links(info['inputs'])}<br>Read by: {_links(info['outputs'])}</p>"
            + (
                "<div class='scroll'><table><tr><th>column</th><th>description</th><th>from</th>"
                f"</tr>{rows}</table></div>"
                if rows
                else ""
            )
            + (f"<h3>Expectations</h3><ul>{checks}</ul>" if checks else "")
            + f"<p>Last run: {html.escape(json.dumps(info['last_run']))}</p>"
            + (f"<pre>{html.escape(source)}</pre>" if source else "")
            + "</section>"
        )
    parts.append("</body></html>")
    return "".join(parts)


def write_docs(
    project: Project, suites: dict[str, Suite], warehouse: Path, root: Path, directory: Path
) -> Path:
    document = manifest(project, suites, warehouse, root)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("manifest.json", json.dumps(document, indent=2, default=str)),
        ("index.html", render(project, document)),
    ):
        write_text_atomically(directory / name, text)
    return directory / "index.html"
