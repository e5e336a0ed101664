"""Discover the models of a project and order them into a DAG.

Dependencies are inferred, never declared: a SQL model reads the tables its SELECT names (found
with sqlglot), a Python model reads the tables its parameters are named after (found with ``ast``,
so discovery never imports a model or the heavy libraries it uses).
"""

from __future__ import annotations

import ast
import difflib
import graphlib
import heapq
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB

from engine.errors import ConfigError, ProjectError, UsageError
from engine.project.config import Config, model_parameters
from engine.project.constraints import constraint_problems
from engine.project.macros import MacroContext, expand
from engine.project.seeds import SEED_BUILDERS, SEED_COLUMNS

SQL_LAYERS = ("staging", "intermediate", "marts")
PYTHON_LAYER = "ml"
SOURCE_LAYER = "raw"
SEED_LAYER = "config"
LAYER_ORDER = (SEED_LAYER, SOURCE_LAYER, "staging", "intermediate", PYTHON_LAYER, "marts")
# Parameters a Python model may take that are not tables. ``previous_<table>`` is that table as
# the last published warehouse had it (None on a first run): not a DAG input.
RESERVED_PARAMETERS = ("config", "seed", "run_id", "variables", "progress", "parallel")
PREVIOUS_PREFIX = "previous_"
# What a model's table is to the engine, beyond data: declared by a SQL model's leading comment
# ("-- role: rejected_rows") or a Python model's ROLE. Rejected rows are counted in the run's
# summary; a reconciliation's first row is recorded with the run.
REJECTED_ROLE = "rejected_rows"
RECONCILIATION_ROLE = "reconciliation"
ROLES = (REJECTED_ROLE, RECONCILIATION_ROLE)
ROLE_PREFIX = "role:"

Kind = Literal["seed", "source", "sql", "python"]


@dataclass(frozen=True)
class Model:
    name: str
    layer: str
    kind: Kind
    path: Path | None
    inputs: tuple[str, ...]
    query: exp.Query | None = None
    parameters: tuple[str, ...] = ()
    defaults: dict[str, Any] | None = None  # a Python model's PARAMETERS: config keys it takes
    constraints: dict[str, dict[str, Any]] | None = None  # and its PARAMETER_CONSTRAINTS
    role: str | None = None
    description: str = ""
    column_descriptions: dict[str, str] | None = None
    # A Python model's FIT_SAMPLE_KEY: it fits on a sample, so at scale an engine may
    # hand it a sample of each input, chosen by a hash of this column.
    fit_sample_key: str | None = None

    @property
    def table(self) -> str:
        return f"{self.layer}.{self.name}"


@dataclass(frozen=True)
class Project:
    models: dict[str, Model]  # by qualified table name
    order: tuple[str, ...]  # topological, deterministic

    @property
    def by_name(self) -> dict[str, Model]:
        return {m.name: m for m in self.models.values()}

    def upstream(self, table: str) -> set[str]:
        return _closure(table, {t: set(m.inputs) for t, m in self.models.items()})

    def downstream(self, table: str) -> set[str]:
        children: dict[str, set[str]] = {t: set() for t in self.models}
        for t, m in self.models.items():
            for parent in m.inputs:
                children[parent].add(t)
        return _closure(table, children)


def _closure(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(edges[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(edges[node])
    return seen


class ModelDialect(DuckDB):
    """DuckDB as the models write it: ``len()`` is a list's length (a string's is ``length()``).

    DuckDB's ``len`` takes either, and sqlglot reads both as LENGTH, which other engines apply
    to strings only; reading ``len`` as ARRAY_LENGTH keeps the difference for an engine that
    transpiles the models.
    """

    class Parser(DuckDB.Parser):
        FUNCTIONS: ClassVar = {**DuckDB.Parser.FUNCTIONS, "LEN": exp.ArraySize.from_arg_list}


def _parse_sql_model(path: Path, macros: MacroContext) -> exp.Query:
    """The model's one SELECT, its column-set macros expanded (engine/project/macros.py)."""
    text = path.read_text(encoding="utf-8")
    try:
        statements = [s for s in sqlglot.parse(text, dialect=ModelDialect) if s is not None]
    except sqlglot.errors.SqlglotError as exc:  # ParseError, or TokenError (an open quote)
        raise ProjectError(f"{path}: SQL does not parse: {exc}") from exc
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ProjectError(f"{path}: a SQL model must be exactly one SELECT statement")
    return expand(statements[0], macros, str(path))


def _leading_comment(text: str) -> tuple[str, str | None]:
    """The comment lines a SQL file starts with: the model's description, and its role."""
    lines, role = [], None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        comment = stripped.removeprefix("--").strip()
        if comment.startswith(ROLE_PREFIX):
            role = comment.removeprefix(ROLE_PREFIX).strip()
        else:
            lines.append(comment)
    return " ".join(lines), role


def _checked_role(role: str | None, path: Path) -> str | None:
    if role is not None and role not in ROLES:
        raise ProjectError(f"{path}: unknown role {role!r}; a model's role is one of {list(ROLES)}")
    return role


def _select_comments(query: exp.Query) -> dict[str, str]:
    """Trailing comments on the final SELECT's items: the columns' descriptions."""
    return {
        item.alias_or_name: " ".join(c.strip() for c in item.comments)
        for item in query.selects
        if item.comments
    }


def _sql_references(query: exp.Query) -> list[tuple[str, str]]:
    """(schema, table) pairs the query reads, CTE names and table functions left out."""
    cte_names = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    found: list[tuple[str, str]] = []
    for table in query.find_all(exp.Table):
        if not table.name or (not table.db and table.name in cte_names):
            continue
        if (table.db, table.name) not in found:
            found.append((table.db, table.name))
    return found


@dataclass(frozen=True)
class PythonSignature:
    parameters: tuple[str, ...]
    defaults: dict[str, Any]
    constraints: dict[str, dict[str, Any]]
    description: str
    columns: dict[str, str]
    role: str | None
    fit_sample_key: str | None


def _literal(node: ast.AST, path: Path, name: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError as exc:
        raise ProjectError(f"{path}: {name} must be a literal") from exc


def _python_signature(path: Path) -> PythonSignature:
    """model()'s parameter names, PARAMETERS, COLUMNS and the docstring, without importing."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise ProjectError(
            f"{path}: line {exc.lineno}, column {exc.offset}: Python syntax error: {exc.msg}"
        ) from exc
    literals: dict[str, Any] = {
        "PARAMETERS": {},
        "PARAMETER_CONSTRAINTS": {},
        "COLUMNS": {},
        "ROLE": None,
        "FIT_SAMPLE_KEY": None,
    }
    parameters: tuple[str, ...] | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in literals and node.value:
                    literals[target.id] = _literal(node.value, path, target.id)
        if isinstance(node, ast.FunctionDef) and node.name == "model":
            args = node.args
            if args.vararg or args.kwarg:
                raise ProjectError(f"{path}: model() must name every input; no *args or **kwargs")
            parameters = tuple(a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs))
    if parameters is None:
        raise ProjectError(f"{path}: a Python model must define a function named 'model'")
    problems = constraint_problems(literals["PARAMETERS"], literals["PARAMETER_CONSTRAINTS"])
    if problems:
        raise ProjectError(f"{path}: " + "; ".join(problems))
    docstring = (ast.get_docstring(tree) or "").split("\n\n")[0]
    return PythonSignature(
        parameters,
        literals["PARAMETERS"],
        literals["PARAMETER_CONSTRAINTS"],
        " ".join(docstring.split()),
        literals["COLUMNS"],
        _checked_role(literals["ROLE"], path),
        _checked_key(literals["FIT_SAMPLE_KEY"], path),
    )


def _checked_key(key: Any, path: Path) -> str | None:
    if key is not None and not (isinstance(key, str) and key):
        raise ProjectError(f"{path}: FIT_SAMPLE_KEY must be a column name, got {key!r}")
    return key


def _config_models(config: Config) -> list[Model]:
    """The seeds (config values as tables) and the raw sources."""
    seeds = [
        Model(
            name=n,
            layer=SEED_LAYER,
            kind="seed",
            path=None,
            inputs=(),
            description=f"Config values from {config.path.name}, as a table models join to.",
            column_descriptions=SEED_COLUMNS[n],
        )
        for n in SEED_BUILDERS
    ]
    return seeds + [
        Model(
            name=n,
            layer=SOURCE_LAYER,
            kind="source",
            path=None,
            inputs=(),
            description=_raw_description(config, n),
            column_descriptions=_raw_columns(config, n),
        )
        for n in sorted(config.sources)
    ]


def _raw_description(config: Config, source: str) -> str:
    spec = config.sources[source]
    if spec.implicit:
        return (
            f"Empty: the config has no sources.{source} section (the models reading it still run)."
        )
    return (
        f"Every row of the landing files {', '.join(spec.files)} as text, "
        "with its source file, line number and any parse error."
    )


RAW_LINEAGE = {
    "_source_file": "The landing file the row came from, relative to warehouse.raw_dir",
    "_line_number": "The line of that file the row starts on (the header is line 1)",
    "_parse_error": "What was wrong with the row's shape (wrong number of fields), if anything",
}


def _raw_columns(config: Config, source: str) -> dict[str, str]:
    columns = dict(RAW_LINEAGE)
    spec = config.sources[source]
    for name in spec.raw_columns:
        spellings = spec.columns.get(name)
        if spellings is None:
            columns[name] = f"{name}: no header maps to it (sources.{source}.columns), so null"
            continue
        headers = ", ".join(repr(h) for h in spellings[:3])
        columns[name] = f"{name} as written in the file, text (headers such as {headers})"
    return columns


@dataclass(frozen=True)
class _Tables:
    """Which layer writes each table name, to resolve what a model reads."""

    root: Path
    layer_of: dict[str, str]

    def resolve(self, schema: str, table: str, model_path: Path) -> str:
        where = model_path.relative_to(self.root)
        if table not in self.layer_of or (schema and self.layer_of[table] != schema):
            wanted = f"{schema}.{table}" if schema else table
            hint = difflib.get_close_matches(table, list(self.layer_of), n=1)
            suggestion = f" (did you mean '{self.layer_of[hint[0]]}.{hint[0]}'?)" if hint else ""
            raise ProjectError(f"{where}: reads unknown table '{wanted}'{suggestion}")
        return f"{self.layer_of[table]}.{table}"


def _claim_names(root: Path, found: list[Model], files: list[tuple[Path, str]]) -> _Tables:
    """One writer per table name: ``files`` are (model file, its layer)."""
    names: dict[str, str] = {}
    writers = [(m.name, f"{m.kind} {m.table}", m.layer) for m in found]
    writers += [(path.stem, str(path.relative_to(root)), layer) for path, layer in files]
    for name, where, _ in writers:
        if name in names:
            raise ProjectError(f"two models write the table '{name}': {names[name]} and {where}")
        names[name] = where
    return _Tables(root, {name: layer for name, _, layer in writers})


def _sql_model(path: Path, layer: str, query: exp.Query, tables: _Tables) -> Model:
    inputs = tuple(tables.resolve(s, t, path) for s, t in _sql_references(query))
    description, role = _leading_comment(path.read_text(encoding="utf-8"))
    return Model(
        path.stem,
        layer,
        "sql",
        path,
        inputs,
        query=query,
        description=description,
        column_descriptions=_select_comments(query),
        role=_checked_role(role, path),
    )


def _python_model(path: Path, signature: PythonSignature, tables: _Tables) -> Model:
    names = [p for p in signature.parameters if p not in RESERVED_PARAMETERS]
    for previous in (t for t in names if t.startswith(PREVIOUS_PREFIX)):
        tables.resolve("", previous.removeprefix(PREVIOUS_PREFIX), path)
    inputs = tuple(tables.resolve("", t, path) for t in names if not t.startswith(PREVIOUS_PREFIX))
    return Model(
        path.stem,
        PYTHON_LAYER,
        "python",
        path,
        inputs,
        parameters=signature.parameters,
        defaults=signature.defaults,
        constraints=signature.constraints,
        description=signature.description,
        column_descriptions=signature.columns,
        role=signature.role,
        fit_sample_key=signature.fit_sample_key,
    )


def discover(root: Path, config: Config) -> Project:
    """Every model under ``root`` (seeds from config, raw sources, SQL, Python) as a DAG."""
    found = _config_models(config)
    macros = MacroContext.from_config(config)
    sql_files = [
        (path, layer, _parse_sql_model(path, macros))
        for layer in SQL_LAYERS
        for path in sorted((root / "sql" / layer).glob("*.sql"))
    ]
    python_files = [
        (path, _python_signature(path))
        for path in sorted((root / "python_models").glob("*.py"))
        if not path.name.startswith("_")
    ]
    files = [(p, layer) for p, layer, _ in sql_files] + [(p, PYTHON_LAYER) for p, _ in python_files]
    tables = _claim_names(root, found, files)
    found += [_sql_model(path, layer, query, tables) for path, layer, query in sql_files]
    found += [_python_model(path, signature, tables) for path, signature in python_files]
    models = {m.table: m for m in found}
    return Project(models=models, order=_topological_order(models))


def _topological_order(models: dict[str, Model]) -> tuple[str, ...]:
    sorter = graphlib.TopologicalSorter({t: set(m.inputs) for t, m in models.items()})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise ProjectError(f"models form a cycle: {cycle}") from exc
    # Deterministic and readable: whenever several models are ready, the earliest layer goes
    # first, then the name, so the build reads raw -> staging -> intermediate -> ml -> marts.
    rank = {layer: i for i, layer in enumerate(LAYER_ORDER)}
    ready: list[tuple[int, str]] = []
    order: list[str] = []
    while sorter.is_active():
        for table in sorter.get_ready():
            heapq.heappush(ready, (rank[models[table].layer], table))
        _, table = heapq.heappop(ready)
        order.append(table)
        sorter.done(table)
    return tuple(order)


def select(project: Project, selectors: list[str] | None) -> list[str]:
    """The tables a dbt-style selection names, in build order.

    ``name``, ``layer.name``, ``+name`` (with ancestors), ``name+`` (with descendants), a layer
    (``staging`` or ``layer:staging``); several selectors (space- or comma-separated) are a union.
    """
    if not selectors:
        return list(project.order)
    by_name = project.by_name
    chosen: set[str] = set()
    for raw in (s for item in selectors for s in item.replace(",", " ").split()):
        token = raw.removeprefix("layer:")
        if token in LAYER_ORDER:
            chosen.update(t for t, m in project.models.items() if m.layer == token)
            continue
        with_parents = token.startswith("+")
        with_children = token.endswith("+")
        name = token.strip("+")
        if "." in name:
            table = name if name in project.models else ""
        else:
            table = by_name[name].table if name in by_name else ""
        if not table:
            candidates = list(by_name) + list(LAYER_ORDER)
            hint = difflib.get_close_matches(name, candidates, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise UsageError(f"--select '{raw}': no model or layer named '{name}'{suggestion}")
        chosen.add(table)
        if with_parents:
            chosen |= project.upstream(table)
        if with_children:
            chosen |= project.downstream(table)
    return [t for t in project.order if t in chosen]


def model_configs(project: Project, config: Config) -> dict[str, dict[str, Any]]:
    """Every Python model's parameters, checked against the config before anything is built."""
    python_models = {m.name: m for m in project.models.values() if m.kind == "python"}
    for name in config.models:
        if name not in python_models:
            hint = difflib.get_close_matches(name, list(python_models), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise ConfigError(
                f"{config.path.name}: unknown key 'models.{name}'{suggestion}: "
                "no Python model has that name"
            )
    return {
        name: model_parameters(config, name, model.defaults or {}, model.constraints or {})
        for name, model in python_models.items()
    }
