"""The folders a run writes to, checked before anything is loaded or built."""

from __future__ import annotations

import tempfile
from pathlib import Path

from engine.errors import InputError


def require_writable(folder: Path, key: str, why: str) -> None:
    """Stop with exit 2 naming ``folder`` and its config ``key`` when this user cannot create a
    file there: the permission is the project's setup, not a fault of the pipeline.

    A probe file is created and removed rather than asking ``os.access``, which says yes to
    root on a read-only mount and knows nothing of ACLs.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(
            f"{folder}: the pipeline cannot write here ({reason}), and {why}: give the user "
            f"running it write permission on the folder, or set {key} to one it can write"
        ) from None
