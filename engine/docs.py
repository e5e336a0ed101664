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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from sqlglot.errors import SqlglotError
from sqlglot.lineage import lineage

from engine import statements
from engine.atomic_files import write_text_atomically
from engine.project import LAYER_ORDER, Project
from engine.quality import Suite


def _warehouse_facts(warehouse: Path) -> tuple[dict, dict[str, dict[str, Any]]]:
    """The published schema (for lineage) and each model's last run, if there is a warehouse."""
    if not warehouse.exists():
        return {}, {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        schema: dict[str, dict[str, dict[str, str]]] = {}
        for layer, table, column, kind in con.execute(
            "select schema_name, table_name, column_name, data_type from duckdb_columns()"
        ).fetchall():
            schema.setdefault(layer, {}).setdefault(table, {})[column] = kind
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
    return schema, last


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
        sources = sorted(
            {
                f"{layers.get(n.name.split('.')[0], '?')}.{n.name}"
                for n in node.walk()
                if not n.downstream and "." in n.name
            }
        )
        found[column] = sources
    return found


def manifest(
    project: Project, suites: dict[str, Suite], warehouse: Path, root: Path
) -> dict[str, Any]:
    schema, last_runs = _warehouse_facts(warehouse)
    children: dict[str, list[str]] = {t: [] for t in project.models}
    for table, model in project.models.items():
        for parent in model.inputs:
            children[parent].append(table)
    models = {}
    for table in project.order:
        model = project.models[table]
        descriptions = model.column_descriptions or {}
        columns = {c: {"description": d} for c, d in descriptions.items()}
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
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Models</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:12px}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;font-size:13px}"
        "img{max-width:100%}</style></head><body><h1>Models</h1>",
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
                f"<table><tr><th>column</th><th>description</th><th>from</th></tr>{rows}</table>"
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
