"""Forked worker processes for the small, CPU-bound pieces of a model's work, shared by a build.

A small fit (a few hundred rows) is mostly scikit-learn's Python around a short compiled loop:
two threads would take turns under the GIL, two processes run side by side. Forking has a price
beyond the fork itself: a new worker copies, page by page, the builder's memory it writes to
(reference counts included), about 0.2 s of CPU per worker on the sample. So within
``shared_by_the_build`` the first model that asks forks the workers and every later model reuses
them, and they are closed when the block ends. Outside it (a script, a test), each request gets
workers of its own.

The workers are forked by the thread that first submits work, and Linux kills them
(``PR_SET_PDEATHSIG``) when that thread ends: the block must close before the threads that use
it do (the runner's model threads live until its pool of them shuts down, after the block).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

from engine.errors import is_interrupt

PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>

_guard = threading.Lock()
# Open pools by worker count while a build shares them; None outside shared_by_the_build.
_shared: dict[int, ProcessPoolExecutor] | None = None


def _die_with_parent(parent: int) -> None:
    """A forked worker's first act: ask Linux to kill it when the builder dies.

    A builder killed outright (SIGKILL, the OOM killer) cannot stop its workers, and they would
    wait for work forever, holding its output pipes open. Ctrl-C, which a terminal sends to
    every process of the command, is the builder's to handle: a worker would only print a
    traceback of its own.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the builder died before the request was made
        os._exit(1)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )


@contextlib.contextmanager
def shared_by_the_build() -> Iterator[None]:
    """Within this block ``forked_workers(n)`` hands out one pool of ``n`` workers per ``n``."""
    global _shared
    with _guard:
        if _shared is not None:
            raise RuntimeError("forked workers are already shared by a build in this process")
        _shared = {}
    interrupted = False
    try:
        yield
    except BaseException as exc:
        # Ctrl-C: do not wait for pieces of work still running; the workers exit after them.
        interrupted = is_interrupt(exc)
        raise
    finally:
        with _guard:
            pools, _shared = _shared, None
        for pool in pools.values():
            pool.shutdown(wait=not interrupted, cancel_futures=True)


@contextlib.contextmanager
def forked_workers(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` forked processes: the build's shared one, or one for this block.

    The workers fork at the first submit and start with what this process has imported by then.
    A shared pool that raised (a piece of work failed, or a worker died) is closed and dropped,
    so the next model starts on fresh workers.
    """
    with _guard:
        shared = _shared is not None
        if _shared is None:
            pool = _new_pool(workers)
        elif workers in _shared:
            pool = _shared[workers]
        else:
            pool = _shared[workers] = _new_pool(workers)
    try:
        yield pool
    except BaseException:
        if shared:
            with _guard:
                if _shared is not None and _shared.get(workers) is pool:
                    del _shared[workers]
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    if not shared:
        pool.shutdown()
