"""Read and validate ``pipeline.toml``.

Validation is strict on purpose: a typo in a key is the most common config bug, and a silently
ignored key is worse than a failed run. Every error names the dotted key and what was expected.
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.project.columns import KEY_COLUMN, KINDS, NUMERIC_KINDS, TRANSFORMS
from engine.project.constraints import ParameterError, check_values
from engine.project.orders import (
    ORDER_AGGREGATES,
    TRANSACTION_ROLES,
    TRANSACTIONS,
    OrderSettings,
    check_transactions_mapping,
    order_settings,
)

DEFAULT_CONFIG_NAME = "pipeline.toml"
SCALING_METHODS = ("standard", "minmax", "none")


@dataclass(frozen=True)
class SourceConfig:
    name: str
    files: tuple[str, ...]
    required: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    optional: bool = False  # no landing file is fine: the raw table is then empty
    encoding: str = "utf-8"  # the files' text encoding (a UTF-8 byte-order mark is skipped)
    delimiter: str = ","
    # How date and timestamp text is written (strptime codes, "%Y%m%d"); None: ISO 8601.
    date_format: str | None = None
    # Canonical columns the SQL models read by name even when the config maps no header to
    # them: loaded as nulls (the transactions roles a config leaves out, say).
    roles: tuple[str, ...] = ()
    # Not in the config at all: present so the shared SQL models always find the table.
    implicit: bool = False

    @property
    def raw_columns(self) -> tuple[str, ...]:
        """Every column the raw table has, whether or not a landing file holds it."""
        return (*self.columns, *(r for r in self.roles if r not in self.columns))

    def landing_files(self, raw_dir: Path) -> list[Path]:
        """The files this source reads, sorted so load order never depends on the file system.

        Patterns ignore case, as exports name files: ``*.csv`` takes ``April_export.CSV``."""
        found: set[Path] = set()
        for pattern in self.files:
            found.update(p for p in raw_dir.glob(_any_case(pattern)) if p.is_file())
        return sorted(found)

    def canonical_for_header(self, header: str) -> str | None:
        """The canonical column a header spelling maps to, or None for an extra column."""
        wanted = _normalise_header(header)
        for canonical, spellings in self.columns.items():
            if wanted == _normalise_header(canonical) or any(
                wanted == _normalise_header(s) for s in spellings
            ):
                return canonical
        return None


ENGINES = ("duckdb", "spark")
SPARK_WAREHOUSE_DIR = "warehouse/spark"


@dataclass(frozen=True)
class SparkSettings:
    """The [spark] section: where the Spark engine runs and keeps its Parquet tables."""

    warehouse_dir: Path
    master: str = "local[2]"
    # Extra Spark settings (spark.executor.memory, spark.sql.shuffle.partitions, ...).
    conf: dict[str, str] = field(default_factory=dict)
    # A Python model that fits on a sample (FIT_SAMPLE_KEY) gets at most about this many rows
    # of each input, chosen by a hash of the key so every run and partitioning picks the same.
    fit_sample_rows: int = 1_000_000


@dataclass(frozen=True)
class Config:
    path: Path
    root: Path
    warehouse_path: Path
    raw_dir: Path
    run_results_dir: Path
    seed: int
    sources: dict[str, SourceConfig]
    ranges: dict[str, tuple[float, float]]
    accepted: dict[str, tuple[str, ...]]
    aliases: dict[str, dict[str, str]]
    feature_columns: tuple[str, ...]
    scaling: str
    # sources.<name>.kinds: a column's kind where its rule does not say (engine/project/columns.py).
    kinds: dict[str, dict[str, str]] = field(default_factory=dict)
    # features.transforms: applied before scaling ("log1p"); a feature not listed: "none".
    transforms: dict[str, str] = field(default_factory=dict)
    # features.labels: how the report and segment names call a feature; default its name.
    labels: dict[str, str] = field(default_factory=dict)
    # DuckDB's memory_limit for builds ("2GB"); beyond it DuckDB spills to disk. None: DuckDB's.
    memory_limit: str | None = None
    # Tables with at least this many rows are validated before the next model starts, so the
    # builder's and the validation worker's memory peaks never stack.
    serial_validation_rows: int = 2_000_000
    # Forked processes that fit a model's independent pieces (a candidate k each) side by
    # side; 0 or 1: every fit runs in the builder.
    fit_workers: int = 2
    # The published warehouse keeps the meta history of this many most recent runs (the current
    # one included). Every build carries the history forward, so unbounded it would slow every
    # refresh as it grows. 0: keep all.
    history_runs: int = 1_000
    # "duckdb" (one machine, the default) or "spark" (the [spark] section says where).
    engine: str = "duckdb"
    spark: SparkSettings = field(default_factory=lambda: SparkSettings(Path(SPARK_WAREHOUSE_DIR)))
    # The [transactions] section: snapshot date, cancellation prefix, excluded products, RFM map.
    orders: OrderSettings = field(default_factory=OrderSettings)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """A hash of the effective configuration, for change detection and run records."""
        text = json.dumps(self.document, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def expectation_parameters(self) -> dict[str, Any]:
        """Flat values that expectation suites may reference as ``{"$PARAMETER": name}``."""
        params: dict[str, Any] = {f"{c}_values": list(v) for c, v in self.accepted.items()}
        for column, (low, high) in self.ranges.items():
            params[f"{column}_min"] = low
            params[f"{column}_max"] = high
        params["feature_count"] = len(self.feature_columns)
        return params


def _any_case(pattern: str) -> str:
    """A glob pattern whose letters match either case ([cC][sS][vV]), classes left as written."""
    out, in_class = [], False
    for char in pattern:
        if char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        out.append(f"[{char.lower()}{char.upper()}]" if char.isalpha() and not in_class else char)
    return "".join(out)


def unmatched_landing_files(config: Config) -> list[str]:
    """Files in the landing folder that no source's patterns take (hidden files left out)."""
    if not config.raw_dir.is_dir():
        return []
    taken = {p for s in config.sources.values() for p in s.landing_files(config.raw_dir)}
    return sorted(
        str(p.relative_to(config.raw_dir))
        for p in config.raw_dir.rglob("*")
        if p.is_file()
        and p not in taken
        and not any(part.startswith(".") for part in p.relative_to(config.raw_dir).parts)
    )


def unmatched_warnings(config: Config) -> tuple[list[str], list[str]]:
    """The unmatched landing files, and the warning the run prints for each."""
    names = unmatched_landing_files(config)
    patterns = ", ".join(p for s in config.sources.values() for p in s.files)
    return names, [
        f"Warning: {config.raw_dir / n} matches no source's files ({patterns}); it is not loaded"
        for n in names
    ]


def _normalise_header(text: str) -> str:
    return " ".join(text.strip().lower().split())


# --- the schema --------------------------------------------------------------------------------
# A schema node is a type, a tuple of types, a dict of sub-schemas, or one of the markers below.


class _Table:
    """A table whose keys are chosen by the user (sources, models), each value of one schema."""

    def __init__(self, value_schema: Any, what: str):
        self.value_schema = value_schema
        self.what = what


class _ListOf:
    def __init__(self, item_type: type | tuple[type, ...], non_empty: bool = True):
        self.item_type = item_type
        self.non_empty = non_empty


_NUMBER = (int, float)
_RANGE = {"min": _NUMBER, "max": _NUMBER}


def _at_least_zero(table: dict[str, Any], key: str, default: int, where: str) -> int:
    value = table.get(key, default)
    if value < 0:
        raise ConfigError(f"{where}: key 'warehouse.{key}' must be 0 or more, got {value}")
    return int(value)


SCHEMA: dict[str, Any] = {
    "warehouse": {
        "path": str,
        "raw_dir": str,
        "seed": int,
        "run_results_dir": str,
        "memory_limit": str,
        "serial_validation_rows": int,
        "fit_workers": int,
        "history_runs": int,
        "engine": str,
    },
    "spark": {
        "master": str,
        "warehouse_dir": str,
        "conf": _Table(str, "a Spark setting"),
        "fit_sample_rows": int,
    },
    "sources": _Table(
        {
            "files": _ListOf(str),
            "required": _ListOf(str),
            "optional": bool,
            "encoding": str,
            "delimiter": str,
            "date_format": str,
            "columns": _Table(_ListOf(str), "a canonical column name"),
            "kinds": _Table(str, "a canonical column name"),
        },
        "a source name",
    ),
    "rules": {
        "ranges": _Table(_RANGE, "a column name"),
        "accepted": _Table(
            {"values": _ListOf(str), "aliases": _Table(str, "a spelling")}, "a column name"
        ),
    },
    "features": {
        "columns": _ListOf(str),
        "scaling": str,
        "transforms": _Table(str, "a feature"),
        "labels": _Table(str, "a feature"),
    },
    "transactions": {
        "snapshot_date": str,
        "cancellation_prefix": str,
        "exclude_products": _ListOf(str, non_empty=False),
        "rfm_groups": _ListOf(dict),
    },
    "models": _Table(dict, "a model name"),
    # Free-form values for Python models (as dbt's vars), checked by the models that read them.
    "vars": dict,
}

REQUIRED_KEYS = (
    "warehouse.path",
    "warehouse.raw_dir",
    "warehouse.seed",
    "sources",
    "features.columns",
)


MEMORY_SIZE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)", re.IGNORECASE)


def _memory_limit(value: str | None, where: str) -> str | None:
    if value is not None and not MEMORY_SIZE.fullmatch(value.strip()):
        raise ConfigError(
            f"{where}: key 'warehouse.memory_limit' = {value!r} is not a size; "
            'expected a number and a unit, such as "2GB" or "512MiB"'
        )
    return value


def _type_name(expected: Any) -> str:
    if isinstance(expected, tuple):
        if expected == _NUMBER:
            return "a number"
        return " or ".join(_type_name(t) for t in expected)
    if isinstance(expected, dict) or expected is dict:
        return "a table"
    if isinstance(expected, _ListOf):
        return f"a list of {_type_name(expected.item_type)}"
    if isinstance(expected, _Table):
        return "a table"
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        list: "a list",
    }
    return names.get(expected, str(expected))


def _is_instance(value: Any, expected: type | tuple[type, ...]) -> bool:
    # TOML booleans are Python ints; a boolean is never a valid number here.
    if isinstance(value, bool):
        return expected is bool or (isinstance(expected, tuple) and bool in expected)
    return isinstance(value, expected)


# Keys earlier versions took, and what became of them.
REMOVED_KEYS = {
    "warehouse.concurrent_max_rows": (
        "models now build one at a time (two at once saved under 10% of a refresh); delete the key"
    ),
}


def _validate_keys(value: Any, schema: dict[str, Any], key: str, where: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: key '{key}' must be a table, got {value!r}")
    for sub_key, sub_value in value.items():
        full = f"{key}.{sub_key}" if key else sub_key
        if full in REMOVED_KEYS:
            raise ConfigError(f"{where}: key '{full}' is no longer used: {REMOVED_KEYS[full]}")
        if sub_key not in schema:
            hint = difflib.get_close_matches(sub_key, list(schema), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            known = ", ".join(sorted(schema))
            raise ConfigError(
                f"{where}: unknown key '{full}'{suggestion}; expected one of: {known}"
            )
        _validate(sub_value, schema[sub_key], full, where)


def _validate(value: Any, schema: Any, key: str, where: str) -> None:
    if isinstance(schema, dict):
        _validate_keys(value, schema, key, where)
    elif isinstance(schema, _Table):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: key '{key}' must be a table of {schema.what}s")
        for sub_key, sub_value in value.items():
            _validate(sub_value, schema.value_schema, f"{key}.{sub_key}", where)
    elif isinstance(schema, _ListOf):
        if not isinstance(value, list) or not all(_is_instance(v, schema.item_type) for v in value):
            raise ConfigError(f"{where}: key '{key}' must be {_type_name(schema)}, got {value!r}")
        if schema.non_empty and not value:
            raise ConfigError(f"{where}: key '{key}' must not be empty")
    elif schema is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: key '{key}' must be a table, got {value!r}")
    elif not _is_instance(value, schema):
        raise ConfigError(f"{where}: key '{key}' must be {_type_name(schema)}, got {value!r}")


def _lookup(document: dict[str, Any], dotted: str) -> Any:
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def load_config(path: Path | str) -> Config:
    """Parse and validate the config file; raise ConfigError naming the offending key."""
    path = Path(path).resolve()
    where = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from exc

    _validate(document, SCHEMA, "", where)
    for dotted in REQUIRED_KEYS:
        try:
            _lookup(document, dotted)
        except KeyError:
            raise ConfigError(f"{where}: missing required key '{dotted}'") from None
    return _build(document, path, where)


# The sources the shared SQL models read, with the columns they read by name. A config that
# leaves one out gets it empty, so one set of models serves a customer table, order lines, or both.
IMPLICIT_SOURCES: dict[str, tuple[str, ...]] = {
    "customers": (KEY_COLUMN,),
    TRANSACTIONS: (KEY_COLUMN, *TRANSACTION_ROLES),
    "experiment_logs": (
        "experiment",
        KEY_COLUMN,
        "variant",
        "outcome",
        "pre_period_value",
        "exposed_at",
    ),
}


def _sources(document: dict[str, Any], where: str) -> dict[str, SourceConfig]:
    sources = {name: _source(name, spec, where) for name, spec in document["sources"].items()}
    if not sources:
        raise ConfigError(f"{where}: key 'sources' must name at least one source")
    for source in sources.values():
        if not source.name.isidentifier():
            raise ConfigError(
                f"{where}: key 'sources.{source.name}': a source name must be a plain identifier"
            )
        missing = [c for c in source.required if c not in source.columns]
        if missing:
            raise ConfigError(
                f"{where}: key 'sources.{source.name}.required' lists {missing}, "
                f"which have no entry in 'sources.{source.name}.columns'"
            )
    for name, columns in IMPLICIT_SOURCES.items():
        if name not in sources:
            sources[name] = SourceConfig(
                name=name,
                files=(),
                required=(),
                columns={},
                optional=True,
                roles=columns,
                implicit=True,
            )
    return sources


def _source(name: str, spec: dict[str, Any], where: str) -> SourceConfig:
    columns = {k: tuple(v) for k, v in spec.get("columns", {}).items()}
    required = tuple(spec.get("required", []))
    roles: tuple[str, ...] = ()
    if name == TRANSACTIONS:
        check_transactions_mapping(columns, where)
        roles = (KEY_COLUMN, *TRANSACTION_ROLES)
        # A mapped role is read by name, so its header must be there.
        required += tuple(r for r in roles if r in columns and r not in required)
    return SourceConfig(
        name=name,
        files=tuple(spec.get("files", [f"{name}/*.csv"])),
        required=required,
        columns=columns,
        optional=spec.get("optional", False),
        encoding=_encoding(spec.get("encoding", "utf-8"), f"sources.{name}.encoding", where),
        delimiter=_delimiter(spec.get("delimiter", ","), f"sources.{name}.delimiter", where),
        date_format=_date_format(spec.get("date_format"), f"sources.{name}.date_format", where),
        roles=roles,
    )


def _date_format(value: str | None, key: str, where: str) -> str | None:
    if value is not None and "%" not in value:
        raise ConfigError(
            f"{where}: key '{key}' = {value!r} has no format code; expected strptime codes "
            'such as "%Y%m%d" or "%d/%m/%Y %H:%M"'
        )
    return value


def _encoding(value: str, key: str, where: str) -> str:
    try:
        codecs.lookup(value)
    except LookupError:
        raise ConfigError(
            f"{where}: key '{key}' = {value!r} is not a text encoding Python knows "
            '(e.g. "utf-8", "latin-1", "cp1252")'
        ) from None
    return value


def _delimiter(value: str, key: str, where: str) -> str:
    if len(value) != 1 or value in '\r\n"':
        raise ConfigError(
            f'{where}: key \'{key}\' = {value!r}: expected one character such as "," or ";"'
        )
    return value


def _ranges(rules: dict[str, Any], where: str) -> dict[str, tuple[float, float]]:
    ranges: dict[str, tuple[float, float]] = {}
    for column, bounds in rules.get("ranges", {}).items():
        for bound in ("min", "max"):
            if bound not in bounds:
                raise ConfigError(f"{where}: missing required key 'rules.ranges.{column}.{bound}'")
        if bounds["min"] > bounds["max"]:
            raise ConfigError(
                f"{where}: key 'rules.ranges.{column}': min {bounds['min']} is above "
                f"max {bounds['max']}"
            )
        ranges[column] = (float(bounds["min"]), float(bounds["max"]))
    return ranges


def _accepted(
    rules: dict[str, Any], where: str
) -> tuple[dict[str, tuple[str, ...]], dict[str, dict[str, str]]]:
    accepted: dict[str, tuple[str, ...]] = {}
    aliases: dict[str, dict[str, str]] = {}
    for column, spec in rules.get("accepted", {}).items():
        if "values" not in spec:
            raise ConfigError(f"{where}: missing required key 'rules.accepted.{column}.values'")
        accepted[column] = tuple(spec["values"])
        aliases[column] = dict(spec.get("aliases", {}))
        for spelling, target in aliases[column].items():
            if target not in accepted[column]:
                raise ConfigError(
                    f"{where}: key 'rules.accepted.{column}.aliases.{spelling}' maps to "
                    f"{target!r}, which is not in 'rules.accepted.{column}.values' "
                    f"{list(accepted[column])}"
                )
    return accepted, aliases


def _features(
    features: dict[str, Any],
    ranges: dict[str, tuple[float, float]],
    sources: dict[str, SourceConfig],
    where: str,
) -> tuple[tuple[str, ...], str]:
    """The feature columns and the scaling method. A feature is a source column with a range,
    or, with a transactions source, one of the per-customer order aggregates."""
    scaling = features.get("scaling", "standard")
    if scaling not in SCALING_METHODS:
        raise ConfigError(
            f"{where}: key 'features.scaling' must be one of {list(SCALING_METHODS)}, "
            f"got {scaling!r}"
        )
    feature_columns = tuple(features["columns"])
    aggregates = ORDER_AGGREGATES if not sources[TRANSACTIONS].implicit else ()
    unknown = [c for c in feature_columns if c not in ranges and c not in aggregates]
    if unknown:
        from_orders = (
            f", or order aggregates of sources.{TRANSACTIONS} ({', '.join(ORDER_AGGREGATES)})"
        )
        raise ConfigError(
            f"{where}: key 'features.columns' lists {unknown}; features must be numeric columns "
            f"with a range in 'rules.ranges' ({sorted(ranges)}){from_orders}"
        )
    if len(feature_columns) < 2:
        raise ConfigError(
            f"{where}: key 'features.columns' lists {list(feature_columns)}; segmenting needs "
            "at least 2 features"
        )
    if len(set(feature_columns)) != len(feature_columns):
        raise ConfigError(f"{where}: key 'features.columns' lists a column twice")
    return feature_columns, scaling


def _kinds(
    sources: dict[str, SourceConfig],
    document: dict[str, Any],
    rules: tuple[dict[str, tuple[float, float]], dict[str, tuple[str, ...]]],
    where: str,
) -> dict[str, dict[str, str]]:
    """sources.<name>.kinds, checked against the column's mapping and rule."""
    ranges, accepted = rules
    kinds: dict[str, dict[str, str]] = {}
    for name, spec in document["sources"].items():
        kinds[name] = dict(spec.get("kinds", {}))
        for column, kind in kinds[name].items():
            key = f"sources.{name}.kinds.{column}"
            if column in sources[name].roles:
                raise ConfigError(
                    f"{where}: key '{key}': '{column}' is a canonical {name} column, whose kind "
                    "is fixed"
                )
            if column not in sources[name].columns:
                raise ConfigError(
                    f"{where}: key '{key}': '{column}' has no entry in 'sources.{name}.columns'"
                )
            if kind not in KINDS:
                raise ConfigError(
                    f"{where}: key '{key}' must be one of {list(KINDS)}, got {kind!r}"
                )
            if column in ranges and kind not in NUMERIC_KINDS:
                raise ConfigError(
                    f"{where}: key '{key}' = {kind!r}, but 'rules.ranges.{column}' needs a "
                    f"numeric kind ({' or '.join(NUMERIC_KINDS)})"
                )
            if column in accepted and kind != "category":
                raise ConfigError(
                    f"{where}: key '{key}' = {kind!r}, but 'rules.accepted.{column}' makes it "
                    "a category"
                )
    return kinds


def _rules_take_effect(sources: dict[str, SourceConfig], rules: dict[str, Any], where: str) -> None:
    """A rule for a column no source maps would be silently ignored: refuse it."""
    mapped = {c for s in sources.values() for c in s.columns}
    for section in ("ranges", "accepted"):
        for column in rules.get(section, {}):
            if column not in mapped:
                raise ConfigError(
                    f"{where}: key 'rules.{section}.{column}': no source maps a column "
                    f"'{column}' (add it to a 'sources.<name>.columns')"
                )


def _feature_options(
    features: dict[str, Any],
    feature_columns: tuple[str, ...],
    ranges: dict[str, tuple[float, float]],
    where: str,
) -> tuple[dict[str, str], dict[str, str]]:
    """features.transforms and features.labels, for configured features only."""
    transforms = dict(features.get("transforms", {}))
    labels = dict(features.get("labels", {}))
    for section, values in (("transforms", transforms), ("labels", labels)):
        unknown = [c for c in values if c not in feature_columns]
        if unknown:
            raise ConfigError(
                f"{where}: key 'features.{section}' names {unknown}, which are not in "
                f"'features.columns' {list(feature_columns)}"
            )
    for column, transform in transforms.items():
        if transform not in TRANSFORMS:
            raise ConfigError(
                f"{where}: key 'features.transforms.{column}' must be one of "
                f"{list(TRANSFORMS)}, got {transform!r}"
            )
        if transform == "log1p" and column in ranges and ranges[column][0] <= -1:
            raise ConfigError(
                f"{where}: key 'features.transforms.{column}' = 'log1p' needs values above -1, "
                f"but 'rules.ranges.{column}.min' is {ranges[column][0]}"
            )
    return transforms, labels


def _features_are_mapped(
    feature_columns: tuple[str, ...],
    sources: dict[str, SourceConfig],
    kinds: dict[str, dict[str, str]],
    where: str,
) -> None:
    for column in feature_columns:
        owners = [s for s in sources.values() if column in s.columns]
        if not owners and column in ORDER_AGGREGATES:
            continue  # computed by intermediate.int_customer_orders
        if not owners:
            raise ConfigError(
                f"{where}: key 'features.columns' lists '{column}', which no source maps "
                "(add it to a 'sources.<name>.columns')"
            )
        declared = [kinds[s.name].get(column) for s in owners]
        if any(k is not None and k not in NUMERIC_KINDS for k in declared):
            raise ConfigError(
                f"{where}: key 'features.columns' lists '{column}', whose kind is not numeric"
            )


def _attributes_are_unique(sources: dict[str, SourceConfig], where: str) -> None:
    """Customers and their order lines meet in one profile row: one column, one source."""
    customers, lines = sources["customers"].columns, sources[TRANSACTIONS].columns
    shared = [c for c in lines if c in customers and c != KEY_COLUMN]
    if shared:
        raise ConfigError(
            f"{where}: key 'sources.{TRANSACTIONS}.columns' maps {shared}, which "
            "'sources.customers.columns' maps too; a customer's profile takes each column from "
            "one source, so rename one of them"
        )
    clashes = [c for c in (*customers, *lines) if c in ORDER_AGGREGATES]
    if clashes:
        raise ConfigError(
            f"{where}: a source maps {clashes}, which int_customer_orders computes; rename the "
            "mapped column"
        )


def _engine(value: str, where: str) -> str:
    if value not in ENGINES:
        raise ConfigError(
            f"{where}: key 'warehouse.engine' = {value!r}; expected one of: {', '.join(ENGINES)}"
        )
    return value


def _spark_settings(section: dict[str, Any], root: Path, where: str) -> SparkSettings:
    rows = section.get("fit_sample_rows", SparkSettings.fit_sample_rows)
    if rows < 1:
        raise ConfigError(f"{where}: key 'spark.fit_sample_rows' must be at least 1, got {rows}")
    master = section.get("master", SparkSettings.master)
    if not master.strip():
        raise ConfigError(f"{where}: key 'spark.master' is empty; expected e.g. 'local[2]'")
    return SparkSettings(
        warehouse_dir=(root / section.get("warehouse_dir", SPARK_WAREHOUSE_DIR)).resolve(),
        master=master,
        conf=dict(section.get("conf", {})),
        fit_sample_rows=rows,
    )


def _build(document: dict[str, Any], path: Path, where: str) -> Config:
    root = path.parent
    warehouse = document["warehouse"]
    rules = document.get("rules", {})
    ranges = _ranges(rules, where)
    accepted, aliases = _accepted(rules, where)
    sources = _sources(document, where)
    orders = document.get("transactions", {})
    if orders and sources[TRANSACTIONS].implicit:
        raise ConfigError(
            f"{where}: key 'transactions.{next(iter(orders))}' takes effect only with a "
            f"'sources.{TRANSACTIONS}' section"
        )
    feature_columns, scaling = _features(document["features"], ranges, sources, where)
    _attributes_are_unique(sources, where)
    kinds = _kinds(sources, document, (ranges, accepted), where)
    _features_are_mapped(feature_columns, sources, kinds, where)
    _rules_take_effect(sources, rules, where)
    transforms, labels = _feature_options(document["features"], feature_columns, ranges, where)

    def at_least_zero(key: str) -> int:
        return _at_least_zero(warehouse, key, getattr(Config, key), where)

    return Config(
        path=path,
        root=root,
        warehouse_path=(root / warehouse["path"]).resolve(),
        raw_dir=(root / warehouse["raw_dir"]).resolve(),
        run_results_dir=(
            root / warehouse.get("run_results_dir", "warehouse/run_results")
        ).resolve(),
        seed=warehouse["seed"],
        memory_limit=_memory_limit(warehouse.get("memory_limit"), where),
        serial_validation_rows=at_least_zero("serial_validation_rows"),
        fit_workers=at_least_zero("fit_workers"),
        history_runs=at_least_zero("history_runs"),
        engine=_engine(warehouse.get("engine", "duckdb"), where),
        spark=_spark_settings(document.get("spark", {}), root, where),
        orders=order_settings(orders, where),
        sources=sources,
        ranges=ranges,
        accepted=accepted,
        aliases=aliases,
        feature_columns=feature_columns,
        scaling=scaling,
        kinds=kinds,
        transforms=transforms,
        labels=labels,
        models=dict(document.get("models", {})),
        variables=dict(document.get("vars", {})),
        document=document,
    )


def with_engine(config: Config, engine: str) -> Config:
    """The config with ``warehouse.engine`` set (run --engine); its fingerprint says so."""
    warehouse = {**config.document["warehouse"], "engine": engine}
    return replace(config, engine=engine, document={**config.document, "warehouse": warehouse})


def model_parameters(
    config: Config,
    model_name: str,
    defaults: dict[str, Any],
    constraints: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """A model's ``[models.<name>]`` section over its PARAMETERS defaults, checked against the
    model's PARAMETER_CONSTRAINTS (type, interval, choices) key by key."""
    where = config.path.name
    given = config.models.get(model_name, {})
    for key in given:
        if key not in defaults:
            hint = difflib.get_close_matches(key, list(defaults), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            known = ", ".join(sorted(defaults)) or "none"
            raise ConfigError(
                f"{where}: unknown key 'models.{model_name}.{key}'{suggestion}; "
                f"expected one of: {known}"
            )
    merged = {**defaults, **given}
    try:
        check_values(merged, constraints, f"models.{model_name}")
    except ParameterError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return merged
