"""Write a file beside its target, then rename it over the target in one step.

A reader (a browser on the report, a BI tool on an export, a script polling latest.json) sees the
old file or the new one, never half of one; a killed writer leaves the target as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def replace_atomically(target: Path, write: Callable[[Path], object]) -> Path:
    """``write(partial)`` writes the new content to ``partial``; then it becomes ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        write(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def write_text_atomically(target: Path, text: str) -> Path:
    return replace_atomically(target, lambda partial: partial.write_text(text, encoding="utf-8"))
