"""A config's sources: which landing files each reads, how its headers map to canonical columns,
and the sources the shared SQL models read that a config may leave out."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.project.columns import KEY_COLUMN
from engine.project.orders import TRANSACTION_ROLES, TRANSACTIONS, check_transactions_mapping


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


def unmatched_landing_files(raw_dir: Path, sources: dict[str, SourceConfig]) -> list[str]:
    """Files in the landing folder that no source's patterns take (hidden files left out)."""
    if not raw_dir.is_dir():
        return []
    taken = {p for s in sources.values() for p in s.landing_files(raw_dir)}
    return sorted(
        str(p.relative_to(raw_dir))
        for p in raw_dir.rglob("*")
        if p.is_file()
        and p not in taken
        and not any(part.startswith(".") for part in p.relative_to(raw_dir).parts)
    )


def unmatched_warnings(
    raw_dir: Path, sources: dict[str, SourceConfig]
) -> tuple[list[str], list[str]]:
    """The unmatched landing files, and the warning the run prints for each."""
    names = unmatched_landing_files(raw_dir, sources)
    patterns = ", ".join(p for s in sources.values() for p in s.files)
    return names, [
        f"Warning: {raw_dir / n} matches no source's files ({patterns}); it is not loaded"
        for n in names
    ]


def _normalise_header(text: str) -> str:
    return " ".join(text.strip().lower().split())


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


def sources_of(document: dict[str, Any], where: str) -> dict[str, SourceConfig]:
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
