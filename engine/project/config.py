"""Read and validate ``pipeline.toml`` into a ``Config``.

Validation is strict on purpose: a typo in a key is the most common config bug, and a silently
ignored key is worse than a failed run. Every error names the dotted key and what was expected.
The keys and their types are declared in ``SCHEMA`` (checked by engine/project/schema.py); the
sources, the value rules and features, and each engine's own section are read by their modules.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine import adapters
from engine.errors import ConfigError
from engine.project.audiences import SCHEMA as AUDIENCES_SCHEMA
from engine.project.audiences import Audience, audiences_of, check_campaigns
from engine.project.constraints import ParameterError, check_values
from engine.project.drift import SCHEMA as DRIFT_SCHEMA
from engine.project.drift import DriftSettings, drift_settings
from engine.project.orders import (
    COLLAPSE_CHOICES,
    FREQUENCY_CHOICES,
    TRANSACTIONS,
    UNMATCHED_RETURN_CHOICES,
    OrderSettings,
    check_product_codes,
    order_settings,
)
from engine.project.rules import (
    accepted_values,
    attributes_are_unique,
    categorical_attributes,
    feature_options,
    features,
    features_are_mapped,
    kinds_of,
    ranges_of,
    rules_take_effect,
)
from engine.project.schema import (
    ANY_TABLE,
    BOOLEAN,
    INTEGER,
    NUMBER,
    STRING,
    list_of,
    lookup,
    section,
    table_of,
    validate,
)
from engine.project.sources import SourceConfig, sources_of
from engine.project.value import SCHEMA as VALUE_SCHEMA
from engine.project.value import ValueSettings, value_settings

DEFAULT_CONFIG_NAME = "pipeline.toml"


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
    # features.labels: how the report and segment names call a feature; default its name in
    # words (engine/project/units.py).
    labels: dict[str, str] = field(default_factory=dict)
    # features.units: the unit the report writes a feature's values in ("£", "days", "%");
    # default the one its label states in parentheses, else none.
    units: dict[str, str] = field(default_factory=dict)
    # DuckDB's memory_limit for builds ("2GB"); beyond it DuckDB spills to disk. None: DuckDB's.
    memory_limit: str | None = None
    # The DuckDB storage format the published file is written in: the oldest DuckDB release
    # whose clients (BI tools bundle their own, often a release or two behind) must open it.
    storage_version: str = "v1.4.0"
    # Tables with at least this many rows are validated before the next model starts, so the
    # builder's and the validation worker's memory peaks never stack.
    serial_validation_rows: int = 2_000_000
    # Tables with at least this many rows have the expectations DuckDB can count (row counts,
    # nulls, uniqueness, value sets, ranges) checked by one aggregate query in the build,
    # instead of by GX on pandas in the validation worker. 0: every table.
    counted_validation_rows: int = 1_000_000
    # Forked processes that fit a model's independent pieces (a candidate k each) side by
    # side; 0 or 1: every fit runs in the builder.
    fit_workers: int = 2
    # The published warehouse keeps the meta history of this many most recent runs (the current
    # one included). Every build carries the history forward, so unbounded it would slow every
    # refresh as it grows. 0: keep all.
    history_runs: int = 1_000
    # Which engine builds the tables (engine/adapters/), and each engine's own section, parsed.
    engine: str = adapters.DEFAULT_ENGINE
    engine_settings: dict[str, Any] = field(default_factory=dict)
    # The [transactions] section: snapshot date, cancellation prefix, excluded products, RFM map.
    orders: OrderSettings = field(default_factory=OrderSettings)
    # The [value] section: periods, calibration and horizons of the customer value models.
    value: ValueSettings = field(default_factory=ValueSettings)
    # The [drift] section: bins, thresholds and actions of the drift checks.
    drift: DriftSettings = field(default_factory=DriftSettings)
    # The [audiences.<name>] sections: customer lists with holdouts, for marketing tools.
    audiences: tuple[Audience, ...] = ()
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


def _at_least_zero(table: dict[str, Any], key: str, default: int, where: str) -> int:
    value = table.get(key, default)
    if value < 0:
        raise ConfigError(f"{where}: key 'warehouse.{key}' must be 0 or more, got {value}")
    return int(value)


SCHEMA = section(
    warehouse=section(
        path=STRING,
        raw_dir=STRING,
        seed=INTEGER,
        run_results_dir=STRING,
        memory_limit=STRING,
        storage_version=STRING,
        serial_validation_rows=INTEGER,
        counted_validation_rows=INTEGER,
        fit_workers=INTEGER,
        history_runs=INTEGER,
        engine=STRING,
    ),
    **{s.section: section(**s.schema) for s in adapters.engine_settings()},
    sources=table_of(
        section(
            files=list_of(STRING),
            required=list_of(STRING),
            optional=BOOLEAN,
            encoding=STRING,
            delimiter=STRING,
            date_format=STRING,
            columns=table_of(list_of(STRING), "a canonical column name"),
            kinds=table_of(STRING, "a canonical column name"),
        ),
        "a source name",
    ),
    rules=section(
        ranges=table_of(section(min=NUMBER, max=NUMBER), "a column name"),
        accepted=table_of(
            section(values=list_of(STRING), aliases=table_of(STRING, "a spelling")),
            "a column name",
        ),
    ),
    features=section(
        columns=list_of(STRING),
        scaling=STRING,
        transforms=table_of(STRING, "a feature"),
        labels=table_of(STRING, "a feature"),
        units=table_of(STRING, "a feature"),
    ),
    transactions=section(
        snapshot_date=STRING,
        min_order_date=STRING,
        max_order_date=STRING,
        cancellation_prefix=STRING,
        exclude_products=list_of(STRING, non_empty=False),
        non_product_codes=list_of(STRING, non_empty=False),
        frequency={"type": "string", "choices": list(FREQUENCY_CHOICES)},
        unmatched_returns={"type": "string", "choices": list(UNMATCHED_RETURN_CHOICES)},
        collapse_copies={"type": "string", "choices": list(COLLAPSE_CHOICES)},
        free_purchases=BOOLEAN,
        rfm_groups=list_of(ANY_TABLE),
    ),
    value=section(**VALUE_SCHEMA),
    drift=section(**DRIFT_SCHEMA),
    audiences=AUDIENCES_SCHEMA,
    models=table_of(ANY_TABLE, "a model name"),
    # Free-form values for Python models (as dbt's vars), checked by the models that read them.
    vars=ANY_TABLE,
)

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


# Keys earlier versions took, and what became of them.
REMOVED_KEYS = {
    "warehouse.concurrent_max_rows": (
        "models now build one at a time (two at once saved under 10% of a refresh); delete the key"
    ),
}


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

    validate(document, SCHEMA, "", where, REMOVED_KEYS)
    for dotted in REQUIRED_KEYS:
        try:
            lookup(document, dotted)
        except KeyError:
            raise ConfigError(f"{where}: missing required key '{dotted}'") from None
    return _build(document, path, where)


def _build(document: dict[str, Any], path: Path, where: str) -> Config:
    root = path.parent
    warehouse = document["warehouse"]
    rules = document.get("rules", {})
    ranges = ranges_of(rules, where)
    accepted, aliases = accepted_values(rules, where)
    sources = sources_of(document, where)
    orders = document.get("transactions", {})
    value = document.get("value", {})
    for name, given in (("transactions", orders), ("value", value)):
        if given and sources[TRANSACTIONS].implicit:
            raise ConfigError(
                f"{where}: key '{name}.{next(iter(given))}' takes effect only with a "
                f"'sources.{TRANSACTIONS}' section"
            )
    check_product_codes(orders, sources[TRANSACTIONS].columns, where)
    feature_columns, scaling = features(document["features"], ranges, sources, where)
    attributes_are_unique(sources, where)
    kinds = kinds_of(sources, document, (ranges, accepted), where)
    features_are_mapped(feature_columns, sources, kinds, where)
    rules_take_effect(sources, rules, where)
    transforms, labels, units = feature_options(
        document["features"], feature_columns, ranges, where
    )
    drift_subjects = (
        feature_columns,
        categorical_attributes(sources, kinds, (ranges, accepted), feature_columns),
    )

    def at_least_zero(key: str) -> int:
        return _at_least_zero(warehouse, key, getattr(Config, key), where)

    audiences = audiences_of(document.get("audiences", {}), where)
    check_campaigns(audiences, document.get("vars", {}).get("experiments", {}), where)
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
        storage_version=_storage_version(warehouse.get("storage_version"), where),
        serial_validation_rows=at_least_zero("serial_validation_rows"),
        counted_validation_rows=at_least_zero("counted_validation_rows"),
        fit_workers=at_least_zero("fit_workers"),
        history_runs=at_least_zero("history_runs"),
        engine=_engine(warehouse.get("engine", adapters.DEFAULT_ENGINE), where),
        engine_settings={
            s.section: s.parse(document.get(s.section, {}), root, where)
            for s in adapters.engine_settings()
        },
        orders=order_settings(orders, where),
        value=value_settings(value, where),
        drift=drift_settings(document.get("drift", {}), drift_subjects, where),
        audiences=audiences,
        sources=sources,
        ranges=ranges,
        accepted=accepted,
        aliases=aliases,
        feature_columns=feature_columns,
        scaling=scaling,
        kinds=kinds,
        transforms=transforms,
        labels=labels,
        units=units,
        models=dict(document.get("models", {})),
        variables=dict(document.get("vars", {})),
        document=document,
    )


STORAGE_VERSION = re.compile(r"v\d+\.\d+\.\d+|latest")


def _storage_version(value: str | None, where: str) -> str:
    if value is None:
        return Config.storage_version
    if not STORAGE_VERSION.fullmatch(value):
        raise ConfigError(
            f"{where}: key 'warehouse.storage_version' = {value!r}; expected a DuckDB release "
            'such as "v1.4.0" (the oldest DuckDB that must open the warehouse), or "latest"'
        )
    return value


def _engine(value: str, where: str) -> str:
    if value not in adapters.ENGINES:
        raise ConfigError(
            f"{where}: key 'warehouse.engine' = {value!r}; "
            f"expected one of: {', '.join(adapters.ENGINES)}"
        )
    return value


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
