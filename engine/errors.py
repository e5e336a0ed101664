"""Error types the command line turns into exit codes and one-line messages."""

from __future__ import annotations

import errno
import os


class PipelineError(Exception):
    """Base class: a failure the user can act on, with a message that says where and what."""

    exit_code = 4


class ConfigError(PipelineError):
    """The config file is missing, malformed, or has an unknown key or a wrong value."""

    exit_code = 2


class InputError(PipelineError):
    """A landing file cannot be loaded: unreadable, missing a required column, bad header."""

    exit_code = 2


class UsageError(PipelineError):
    """The command line asks for something that does not exist (a --select naming no model)."""

    exit_code = 2


class ProjectError(PipelineError):
    """The models do not form a valid project: a cycle, an unknown table, two writers."""

    exit_code = 4


class ModelError(PipelineError):
    """A model failed while it was being built."""

    exit_code = 4


class NoRoomToWrite(PipelineError):
    """The disk (or a file-size limit or quota) left no room for the build."""

    exit_code = 4


class ExpectationsFailed(PipelineError):
    """At least one blocking expectation failed, so nothing was published."""

    exit_code = 1


class RunInProgress(PipelineError):
    """Another refresh holds the warehouse lock."""

    exit_code = 3


# What a write that found no room says: a full disk, a file-size limit (ulimit -f), a quota.
NO_ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
NO_ROOM_TEXTS = ("No space left on device", "File too large", "Disk quota exceeded")


def no_room_to_write(exc: BaseException) -> str | None:
    """The reason, when ``exc`` is a write that found no room (OSError, or DuckDB's text)."""
    if getattr(exc, "errno", None) in NO_ROOM_ERRNOS:
        return os.strerror(exc.errno)  # type: ignore[attr-defined]
    return next((text for text in NO_ROOM_TEXTS if text in str(exc)), None)


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C, however it surfaced.

    Python raises KeyboardInterrupt in the main thread; but when the main thread is inside a
    DuckDB query, DuckDB takes the signal, cancels the query and raises RuntimeError("Query
    interrupted") instead (it has no exception type of its own for it). And when Ctrl-C lands in
    Python code DuckDB is calling back (while it scans a pandas frame, say), DuckDB re-raises
    the KeyboardInterrupt as a duckdb.Error whose message ends with that traceback.
    """
    if isinstance(exc, KeyboardInterrupt):
        return True
    text = str(exc).strip()
    if isinstance(exc, RuntimeError) and text == "Query interrupted":
        return True
    from_duckdb = type(exc).__module__.lstrip("_").startswith("duckdb")
    return from_duckdb and text.endswith("KeyboardInterrupt:")
