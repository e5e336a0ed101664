"""Run ids and the machine-readable result file every run leaves behind.

Light on purpose: the no-op path uses it without importing the runner's heavy dependencies.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.atomic_files import write_text_atomically


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%S}Z-{secrets.token_hex(3)}"


def write_run_result(directory: Path, run_id: str, document: dict[str, Any]) -> None:
    """``<run_id>.json`` plus ``latest.json``, the latter replaced atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, default=str)
    (directory / f"{run_id}.json").write_text(text, encoding="utf-8")
    write_text_atomically(directory / "latest.json", text)
