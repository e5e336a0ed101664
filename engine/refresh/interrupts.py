"""Ctrl-C and SIGTERM: one way to stop, held back while C extensions load or a process forks.

A KeyboardInterrupt raised while a C extension module initialises does not stop the import
cleanly: DuckDB's nanobind module aborts the interpreter ("Critical nanobind error", SIGABRT),
and another extension reports "ImportError: Encountered an error while initializing the
extension.". One raised during a fork lands in an at-fork hook, where CPython drops it as
unraisable: the refresh ran to the end as if nothing had been pressed, and when the hook was
logging's, the logging lock stayed held and the run later hung. The heavy imports of a command,
a Python model's own imports (scipy's pybind11 modules report "ImportError: initialization
failed") and the validation worker's fork therefore run with the signals recorded instead of
raised.

SIGTERM (systemd, cron, Kubernetes) stops a run as Ctrl-C does, so the same clean-up runs and
the run's record is written; only the exit code differs (143, 128 + SIGTERM, as a shell reports
a process killed by it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

INTERRUPTED_EXIT = 130
TERMINATED_EXIT = 128 + signal.SIGTERM
_received: set[int] = set()


def _terminate(signum: int, _frame: FrameType | None) -> None:
    _received.add(signum)
    raise KeyboardInterrupt


def _default_in_children() -> None:
    # A forked worker is stopped by its parent (or dies with it); raising there would print a
    # traceback from the middle of a fit.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def stop_on_sigterm() -> None:
    """Make SIGTERM interrupt the run like Ctrl-C (main thread only; forked children keep the
    default)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
        os.register_at_fork(after_in_child=_default_in_children)


def stopped_with(signum: int) -> KeyboardInterrupt:
    """The interrupt to raise when a worker was stopped by ``signum`` (SIGINT or SIGTERM): the
    signal went to the whole job, and the builder's own copy may still be on its way."""
    _received.add(signum)
    return KeyboardInterrupt()


def forget_signals() -> None:
    """A new run in the same process (a notebook) starts with no stop requested."""
    _received.clear()


def stop_if_signalled() -> None:
    """Raise the interrupt of a SIGTERM whose KeyboardInterrupt CPython dropped: raised inside
    a callback whose exceptions are only printed (an import lock's weakref callback, say), it
    would otherwise let the run go on to publish."""
    if _received:
        raise KeyboardInterrupt


def exit_code() -> int:
    """What an interrupted command exits with: 143 when SIGTERM stopped it, else 130."""
    return TERMINATED_EXIT if signal.SIGTERM in _received else INTERRUPTED_EXIT


@contextlib.contextmanager
def held_back() -> Iterator[None]:
    """Record Ctrl-C (and SIGTERM, when it stops runs) during the block; raise
    KeyboardInterrupt once it is over.

    Only our own handlers are replaced: a SIGINT that is ignored (a run started with nohup)
    stays ignored, and outside the main thread, where no signal handler runs, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ours = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: _terminate}
    held = [s for s, handler in ours.items() if signal.getsignal(s) is handler]
    pressed: list[int] = []
    for signum in held:
        signal.signal(signum, lambda number, _frame: pressed.append(number))
    try:
        yield
    finally:
        for signum in held:
            signal.signal(signum, ours[signum])
    if pressed:
        _received.update(pressed)
        raise KeyboardInterrupt
