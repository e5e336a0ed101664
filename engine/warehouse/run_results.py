"""Run ids and the machine-readable result file every run leaves behind.

Light on purpose: the no-op path uses it without importing the runner's heavy dependencies.
"""

from __future__ import annotations

import json
import secrets
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.warehouse.atomic_files import write_text_atomically

LATEST = "latest.json"  # the newest run's result, beside <run_id>.json


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%S}Z-{secrets.token_hex(3)}"


def write_run_result(directory: Path, run_id: str, document: dict[str, Any]) -> None:
    """``<run_id>.json`` plus ``latest.json``, the latter replaced atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, default=str)
    (directory / f"{run_id}.json").write_text(text, encoding="utf-8")
    write_text_atomically(directory / LATEST, text)


DEFAULT_RESULTS_DIR = "warehouse/run_results"


def results_dir_of(config_path: Path) -> Path:
    """Where a config's run results go, read from the file as far as it can be read: a run that
    stops on a bad config still leaves its result where the last one is."""
    try:
        document = tomllib.loads(config_path.read_text(encoding="utf-8"))
        folder = document["warehouse"]["run_results_dir"]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError):
        folder = DEFAULT_RESULTS_DIR
    if not isinstance(folder, str):
        folder = DEFAULT_RESULTS_DIR
    return (config_path.resolve().parent / folder).resolve()


def record_failed_start(
    config_path: Path, started: datetime, exit_code: int, message: str
) -> str | None:
    """The result of a run that stopped before it could build; the reason it was not written."""
    run_id = new_run_id(started)
    document = {
        "run_id": run_id,
        "status": "error",
        "exit_code": exit_code,
        "message": message,
        "published": False,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
    }
    directory = results_dir_of(config_path)
    try:
        write_run_result(directory, run_id, document)
    except OSError as exc:
        return f"could not write the run result to {directory}: {exc}"
    return None


def published_before(directory: Path) -> bool:
    """Whether the last recorded run found or left a published warehouse."""
    try:
        latest = json.loads((directory / LATEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(latest.get("published")) or latest.get("status") == "no-op"
