"""Skip a refresh when nothing it reads has changed since the last published build.

The fingerprint covers every landing file (path, size, modification time), the config file, and
the content of every model, suite and engine file. When it equals the one the published warehouse
was built from, the run is recorded as a no-op (a one-row append to ``meta.runs``, published the
usual way: copy, append, atomic rename) without importing pandas, scikit-learn or GX.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.project.config import Config
from engine.project.sources import unmatched_warnings
from engine.refresh.interrupts import held_back
from engine.warehouse import publish
from engine.warehouse.run_results import new_run_id, write_run_result

CODE_FOLDERS = ("engine", "sql", "python_models", "expectations")
NOOP_STATUS = "no-op"


def inputs_fingerprint(root: Path, config: Config) -> str:
    digest = hashlib.sha256()
    code = [root / "pipeline.py", config.path]
    for folder in CODE_FOLDERS:
        code += [p for p in (root / folder).rglob("*") if p.is_file() and p.suffix != ".pyc"]
    for path in sorted(set(code)):
        digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    # run --engine overrides the config file's engine: a build by the other engine is no no-op.
    digest.update(f"engine|{config.engine}|".encode())
    for name, source in sorted(config.sources.items()):
        for path in source.landing_files(config.raw_dir):
            stat = path.stat()
            digest.update(f"{name}|{path.relative_to(config.raw_dir)}|{stat.st_size}".encode())
            digest.update(f"|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _published_fingerprint(path: Path) -> tuple[str | None, str | None]:
    """The inputs fingerprint and run id of the last real build in the published warehouse."""
    import duckdb  # loaded already, by try_noop (its only caller)

    try:
        with duckdb.connect(str(path), read_only=True) as con:
            rows = con.execute(
                "select inputs_fingerprint, run_id from meta.runs "
                "where status = 'success' order by started_at desc limit 1"
            ).fetchall()
    except duckdb.Error:  # no warehouse, or one from before fingerprints: rebuild
        return None, None
    return rows[0] if rows else (None, None)


@dataclass(frozen=True)
class NoopRun:
    run_id: str
    built_by: str
    seconds: float
    warnings: tuple[str, ...] = ()  # one per landing file no source takes


def try_noop(root: Path, config: Config, fingerprint: str) -> NoopRun | None:
    """Record a no-op run and return it, or None when something changed and a build is due."""
    # Imported here, not at the top: a --full-refresh run only fingerprints, and then the
    # validation worker it forks next (which never calls DuckDB) starts without it. Ctrl-C while
    # DuckDB's extension initialises would abort the process, hence held_back.
    with held_back():
        import duckdb

    paths = publish.WarehousePaths(config.warehouse_path)
    if not paths.published.exists():
        return None
    if _published_fingerprint(paths.published)[0] != fingerprint:
        return None
    started = datetime.now(UTC)
    clock = time.perf_counter()
    run_id = new_run_id(started)
    with publish.exclusive_lock(paths):
        publish.remove_leftovers(paths)
        same, built_by = _published_fingerprint(paths.published)
        if same != fingerprint:  # another refresh published while we waited for the lock
            return None
        build = publish.start_build(paths, run_id, copy_published=True)
        try:
            with duckdb.connect(str(build)) as con:
                con.execute(
                    "insert into meta.runs by name select ? as run_id, ? as started_at, "
                    "? as finished_at, ? as status, ? as config_fingerprint, "
                    "? as inputs_fingerprint, 0 as models_built, 0 as models_failed, "
                    "0 as models_skipped, ? as seconds",
                    [
                        run_id,
                        started,
                        datetime.now(UTC),
                        NOOP_STATUS,
                        config.fingerprint(),
                        fingerprint,
                        time.perf_counter() - clock,
                    ],
                )
                con.execute("checkpoint")
            publish.publish(build, paths)
        except BaseException:
            publish.discard_build(build)
            raise
    seconds = time.perf_counter() - clock
    unmatched, warnings = unmatched_warnings(config.raw_dir, config.sources)
    _write_result(config, run_id, started, built_by or "", seconds, unmatched)
    return NoopRun(run_id, built_by or "", seconds, tuple(warnings))


def _write_result(
    config: Config,
    run_id: str,
    started: datetime,
    built_by: str,
    seconds: float,
    unmatched: list[str],
) -> None:
    write_run_result(
        config.run_results_dir,
        run_id,
        {
            "run_id": run_id,
            "status": NOOP_STATUS,
            "exit_code": 0,
            "published": True,
            "warehouse": str(config.warehouse_path),
            "started_at": started.isoformat(),
            "seconds": round(seconds, 3),
            "message": f"nothing changed since run {built_by}",
            "unmatched_files": unmatched,
        },
    )
