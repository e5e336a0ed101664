"""Forked processes for a model's independent pieces of work (one candidate k, say).

A Python model that asks for ``parallel`` gets :meth:`FitWorkers.map`: the pieces run in forked
worker processes and come back in order. Processes, not threads: a fit on a few hundred rows is
mostly scikit-learn's Python around short compiled loops, so two threads would take turns under
the GIL (measured on the sample: threads made the refresh about a third slower than processes).
A build that has such a model imports it and then forks the workers before its first model
(``start``), while the builder is small, so they inherit scikit-learn instead of importing it
each, and every model reuses them (a fork costs each worker about 0.2 s of CPU copying the
builder's pages); Linux kills them when the builder dies (``PR_SET_PDEATHSIG``), so
a killed builder leaves none behind. The report draws its figures in FitWorkers of its own,
after the build (reporting.report.write_report).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from engine.refresh.interrupts import held_back
from engine.refresh.memory import objects_frozen

Item = TypeVar("Item")
Result = TypeVar("Result")
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
# A builder this big forks no workers: they would share (and, as the builder goes on writing,
# copy) all of it, and at 10M customers three processes of 1.5 GB showed a 6 GB peak. Workers
# forked before it grew stay in use.
FORK_BELOW_BYTES = 1 << 30


def _die_with_parent(parent: int) -> None:
    """A worker's first act: ask Linux to kill it when the builder dies.

    Ctrl-C, which a terminal sends to every process of the command, is the builder's to handle:
    a worker would only print a traceback of its own.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the builder died before the request was made
        os._exit(1)


def in_this_process(function: Callable[[Item], Result], items: Iterable[Item]) -> Iterator[Result]:
    """What ``parallel`` is outside a build (a script, a test): a plain ``map``."""
    return map(function, items)


class FitWorkers:
    """Up to ``workers`` forked processes for one build; ``close`` them when it ends."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def map(self, function: Callable[[Item], Result], items: Iterable[Item]) -> Iterator[Result]:
        """``function`` over ``items``, results in the items' order.

        ``function`` must be picklable (a module-level function, or a method of a module-level
        class's instance). With one worker, one item, off Linux (where a spawned process would
        import scikit-learn again, about a second), or with no workers running and a builder of
        FORK_BELOW_BYTES or more, everything runs here.
        """
        items = list(items)
        if self._workers <= 1 or len(items) <= 1 or not self._forked_or_may_fork():
            yield from map(function, items)
            return
        with _forking():
            futures = [self._started().submit(function, item) for item in items]
        try:
            for future in futures:
                yield future.result()
        except BrokenProcessPool as exc:
            self._pool = None  # the next model starts on fresh workers
            raise BrokenProcessPool(
                "a forked fit worker stopped abruptly (killed, by the kernel when memory runs "
                "out for instance)"
            ) from exc
        finally:
            _cancel(futures)

    def start(self) -> None:
        """Fork the workers now, if ``map`` would: a builder reading 10M customers passes
        FORK_BELOW_BYTES long before its first fit, and then fits everything alone."""
        if self._workers > 1 and self._forked_or_may_fork():
            with _forking():
                self._started().submit(int).result()

    def _forked_or_may_fork(self) -> bool:
        return self._pool is not None or _small_enough_to_fork()

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_die_with_parent,
                initargs=(os.getpid(),),
            )
        return self._pool

    def close(self, wait: bool = True) -> None:
        """Stop the workers; ``wait=False`` (Ctrl-C) leaves pieces still running to die alone."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None


@contextlib.contextmanager
def _forking() -> Iterator[None]:
    """Around a submit that may fork. Ctrl-C inside an at-fork hook would be lost
    (engine.refresh.interrupts); frozen objects are never walked by a worker's garbage collector,
    so the kernel need not copy the pages they share with the builder (about a third of what
    forking saves)."""
    with held_back(), objects_frozen():
        yield


def _small_enough_to_fork() -> bool:
    """On Linux, while this process's resident memory is below FORK_BELOW_BYTES."""
    if sys.platform != "linux":
        return False
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") < FORK_BELOW_BYTES


def _cancel(futures: list[Future]) -> None:
    for future in futures:
        future.cancel()
