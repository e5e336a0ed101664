"""Build beside the published warehouse, then swap it in with one atomic rename.

Readers are never disturbed: a process holding the old file keeps its inode and keeps answering;
the next connection opens the new file. A failed or killed run leaves the published file exactly
as it was, and the next run removes what the killed one left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import RunInProgress


@dataclass(frozen=True)
class WarehousePaths:
    published: Path

    @property
    def lock(self) -> Path:
        return self.published.with_name(f".{self.published.name}.lock")

    def build(self, run_id: str) -> Path:
        return self.published.with_name(f".{self.published.name}.build-{run_id}")

    def leftovers(self) -> list[Path]:
        """Build files (and their WALs) that a killed run left behind."""
        return sorted(self.published.parent.glob(f".{self.published.name}.build-*"))


@contextlib.contextmanager
def exclusive_lock(paths: WarehousePaths) -> Iterator[None]:
    """Hold the refresh lock; a second refresh fails at once instead of waiting.

    flock is released by the kernel when the process dies, even by SIGKILL, so a killed run
    never leaves a stale lock.
    """
    paths.lock.parent.mkdir(parents=True, exist_ok=True)
    handle = paths.lock.open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunInProgress(
                f"another refresh of {paths.published} is running (pid {holder}); "
                "nothing was changed. Wait for it to finish and run again."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def remove_leftovers(paths: WarehousePaths) -> list[Path]:
    """Build files (and their WALs) that a killed run left behind."""
    removed = paths.leftovers()
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def start_build(paths: WarehousePaths, run_id: str, copy_published: bool) -> Path:
    """A fresh build file; a partial refresh starts from a copy of the published warehouse."""
    build = paths.build(run_id)
    build.unlink(missing_ok=True)
    if copy_published and paths.published.exists():
        shutil.copyfile(paths.published, build)
    return build


def discard_build(build: Path) -> None:
    build.unlink(missing_ok=True)
    build.with_name(build.name + ".wal").unlink(missing_ok=True)


def publish(build: Path, paths: WarehousePaths) -> None:
    """Make the build file the published warehouse, durably and atomically."""
    with build.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(build, paths.published)
    directory = os.open(paths.published.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
