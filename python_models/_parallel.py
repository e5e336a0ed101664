"""Both cores for a model's independent pieces of work: forked processes when the pieces are
small, threads when they are large.

A small fit (a few hundred rows) is mostly scikit-learn's Python around a short compiled loop:
under the GIL two threads take turns, while two processes run side by side. A large fit spends
its time in compiled loops that release the GIL, so threads overlap well and share the data
instead of copying it to another process. Either way each piece is held to one OpenMP/BLAS
thread, so two pieces use two cores instead of four threads fighting over them.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import TypeVar

from threadpoolctl import threadpool_limits

from engine.memory import objects_frozen

Item = TypeVar("Item")
Result = TypeVar("Result")
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def _one_thread(function: Callable[[Item], Result], item: Item) -> Result:
    # OpenMP's thread count is per thread (and per process), so it is set where the work runs.
    with threadpool_limits(limits=1):
        return function(item)


def _die_with_parent(parent: int) -> None:
    """A forked worker's first act: ask Linux to kill it when the builder dies.

    A builder killed outright (SIGKILL, the OOM killer) cannot stop its workers, and they would
    wait for work forever, holding its output pipes open. Linux sends the signal when the
    forking *thread* ends; the pool is always closed before the thread that made it returns.
    """
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the builder died before the request was made
        os._exit(1)


def _in_processes(
    function: Callable[[Item], Result], items: list[Item], workers: int
) -> Iterator[Result]:
    """``workers - 1`` forked processes take items from the front; this process, from the back.

    This process works too rather than waiting: one fork fewer, and the items it takes run in
    memory that is already warm. A forked worker runs only numpy and scikit-learn, never DuckDB,
    and starts with scikit-learn already imported.
    """
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        workers - 1,
        mp_context=context,
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        with objects_frozen():  # the workers fork at the first submit and inherit them frozen
            futures = [pool.submit(_one_thread, function, item) for item in items]
        done: dict[int, Result] = {}
        for index in reversed(range(len(items))):
            if futures[index].cancel():  # no worker has started it
                done[index] = _one_thread(function, items[index])
        for index, future in enumerate(futures):
            yield done[index] if index in done else future.result()


def parallel_map(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int,
    processes: bool,
) -> Iterator[Result]:
    """``function`` applied to every item, in the items' order.

    ``function`` must be picklable (a module-level function, or a method of a module-level
    class) when ``processes`` is set; ``workers`` = 1 runs everything here, in order.
    """
    items = list(items)
    workers = min(workers, len(items))
    if workers <= 1:
        for item in items:
            yield _one_thread(function, item)
    elif processes and sys.platform == "linux":
        yield from _in_processes(function, items, workers)
    else:
        # Elsewhere a spawned process would import scikit-learn again (about a second), more
        # than small pieces of work take: threads there.
        with ThreadPoolExecutor(workers) as pool:
            yield from pool.map(_one_thread, [function] * len(items), items)
