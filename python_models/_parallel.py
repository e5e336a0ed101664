"""Both cores for a model's independent pieces of work: forked processes when the pieces are
small, threads when they are large.

A small fit (a few hundred rows) is mostly scikit-learn's Python around a short compiled loop:
under the GIL two threads take turns, while two processes run side by side. A large fit spends
its time in compiled loops that release the GIL, so threads overlap well and share the data
instead of copying it to another process. Either way each piece is held to one OpenMP/BLAS
thread, so two pieces use two cores instead of four threads fighting over them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import cache
from typing import TypeVar

from threadpoolctl import ThreadpoolController

from engine.forked_workers import forked_workers
from engine.memory import objects_frozen

Item = TypeVar("Item")
Result = TypeVar("Result")


@cache
def _thread_pools(modules_loaded: int) -> ThreadpoolController:
    # Finding the OpenMP and BLAS libraries scans every loaded library (about 4 ms), so it is
    # done again only when modules were imported since (a library that brings its own OpenMP
    # or BLAS, scikit-learn say, comes with an import). Forked workers inherit what is made.
    return ThreadpoolController()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Hold OpenMP and BLAS to one thread, in the calling thread, for the block.

    On small data their extra threads never pay: they spin after each call, on the core that
    another piece of work (or the validation worker) needs.
    """
    with _thread_pools(len(sys.modules)).limit(limits=1):
        yield


def _one_thread(function: Callable[[Item], Result], item: Item) -> Result:
    # OpenMP's thread count is per thread (and per process), so it is set where the work runs.
    with one_thread():
        return function(item)


def _in_processes(
    function: Callable[[Item], Result], items: list[Item], workers: int
) -> Iterator[Result]:
    """Every item goes to the forked workers (the build's, when it shares them).

    This process only waits, holding no GIL, so the build's other model thread runs meanwhile.
    A forked worker runs only numpy and scikit-learn, never DuckDB.
    """
    with forked_workers(workers) as pool:
        with objects_frozen():  # workers fork at a pool's first submit and inherit them frozen
            futures = [pool.submit(_one_thread, function, item) for item in items]
        # A failure (or the caller stopping early) leaves through forked_workers, which cancels
        # what has not started.
        try:
            for future in futures:
                yield future.result()
        except BrokenProcessPool as exc:
            raise BrokenProcessPool(
                "a forked fit worker stopped abruptly (killed, by the kernel when memory runs "
                "out for instance)"
            ) from exc


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
