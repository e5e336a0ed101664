"""Resident memory of a process and all its descendants, cheap enough to sample while timing.

psutil finds a process's children by reading the status of every process on the machine: about
1 ms of CPU a poll, which at 20 polls a second took 0.17-0.33 s (median of 8 interleaved pairs)
from the 4 s sample refresh it was measuring, on a 2-core machine. Linux lists each thread's
children in /proc/<pid>/task/<tid>/children, so the tree is walked directly (about 0.03 ms a
poll). Elsewhere psutil does the walk.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
PROC = Path("/proc")


def _children(pid: int) -> list[int]:
    # Children are listed under the thread that forked them (a model thread forks the fit
    # workers), so every thread is read.
    found: list[int] = []
    try:
        threads = os.listdir(PROC / str(pid) / "task")
    except OSError:  # the process has ended
        return found
    for thread in threads:
        try:
            listed = (PROC / str(pid) / "task" / thread / "children").read_text()
        except OSError:  # the thread has ended
            continue
        found.extend(int(child) for child in listed.split())
    return found


def _resident_bytes(pid: int) -> int:
    try:
        # statm: size resident shared text lib data dt, in pages (psutil's rss is the same field)
        return int((PROC / str(pid) / "statm").read_text().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):  # ended between listing and reading
        return 0


def _has_children_lists(pid: int) -> bool:
    return (PROC / str(pid) / "task" / str(pid) / "children").exists()


def tree_rss(pid: int) -> int:
    """Bytes resident in ``pid`` and all its descendants; pages shared after a fork count once
    per process, as psutil's sum would count them."""
    if not _has_children_lists(pid):
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
            return sum(p.memory_info().rss for p in tree if p.is_running())
        except psutil.Error:
            return 0
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        total += _resident_bytes(current)
        pending.extend(_children(current))
    return total
