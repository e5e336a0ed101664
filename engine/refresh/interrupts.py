"""Ctrl-C held back while C extensions load or a process forks, then raised once they are done.

A KeyboardInterrupt raised while a C extension module initialises does not stop the import
cleanly: DuckDB's nanobind module aborts the interpreter ("Critical nanobind error", SIGABRT),
and another extension reports "ImportError: Encountered an error while initializing the
extension.". One raised during a fork lands in an at-fork hook, where CPython drops it as
unraisable: the refresh ran to the end as if nothing had been pressed, and when the hook was
logging's, the logging lock stayed held and the run later hung. The heavy imports of a command
and the validation worker's fork therefore run with Ctrl-C recorded instead of raised.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def held_back() -> Iterator[None]:
    """Record Ctrl-C during the block; raise KeyboardInterrupt once it is over.

    Only Python's own handler is replaced: a SIGINT that is ignored (a run started with nohup)
    stays ignored, and outside the main thread, where no signal handler runs, nothing changes.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    pressed: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if pressed:
        raise KeyboardInterrupt
