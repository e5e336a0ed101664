"""Apply a function to every node of a DAG, each once its inputs are done, N at a time.

Generic on purpose: it knows nothing of models, tables or DuckDB. A node whose function raises
an exception is failed, and every node that depends on it, directly or not, is skipped without
being called.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from engine.errors import is_interrupt

Node = TypeVar("Node", bound=Hashable)


@dataclass
class DagOutcome(Generic[Node]):
    """What became of the nodes that did not succeed."""

    failed: dict[Node, Exception] = field(default_factory=dict)
    skipped: dict[Node, Node] = field(default_factory=dict)  # node -> the failed node upstream


class _Walk(Generic[Node]):
    """The bookkeeping of one walk: what is pending, what is done, what failed."""

    def __init__(
        self,
        dag: Mapping[Node, Collection[Node]],
        on_skip: Callable[[Node, Node], object] | None,
    ) -> None:
        self.dag = dag
        self.on_skip = on_skip
        self.pending = list(dag)
        self.done: set[Node] = set()
        self.outcome: DagOutcome[Node] = DagOutcome()

    def next_ready(self, among: Callable[[Node], bool] = lambda _: True) -> Node | None:
        """The first pending node ``among`` those wanted whose inputs are all done, taken off
        the list; or None."""
        for node in self.pending:
            if among(node) and all(i in self.done or i not in self.dag for i in self.dag[node]):
                self.pending.remove(node)
                return node
        return None

    def begin(self, node: Node) -> bool:
        """True if ``node`` is to run; False if a failed input skips it (and it is done)."""
        for parent in self.dag[node]:
            failed = parent if parent in self.outcome.failed else self.outcome.skipped.get(parent)
            if failed is not None:
                self.outcome.skipped[node] = failed
                self.done.add(node)
                if self.on_skip is not None:
                    self.on_skip(node, failed)
                return False
        return True

    def finish(self, node: Node, error: Exception | None) -> None:
        self.done.add(node)
        if error is not None:
            self.outcome.failed[node] = error

    def stuck(self) -> ValueError:
        return ValueError(f"the graph has a cycle through {self.pending[0]!r}")


def apply_to_dag(
    dag: Mapping[Node, Collection[Node]],
    function: Callable[[Node], object],
    workers: int = 1,
    failures: tuple[type[Exception], ...] = (Exception,),
    on_skip: Callable[[Node, Node], object] | None = None,
    threaded: Callable[[Node], bool] = lambda _: True,
    on_interrupt: Callable[[], object] | None = None,
) -> DagOutcome[Node]:
    """Call ``function(node)`` for every node of ``dag`` (node -> its inputs), inputs first.

    Inputs that are not nodes of ``dag`` count as done. Among the ready nodes, the one listed
    first in ``dag`` starts first, so a topologically ordered mapping runs in that order. With one
    worker everything runs in the calling thread; with more, the nodes ``threaded`` picks run in
    that many threads, and the others in the calling thread, one at a time, meanwhile.

    An exception of a type in ``failures`` fails its node, and ``on_skip(node, failed)`` is called
    for each node skipped because of it; any other exception stops the walk and propagates once
    the nodes running in threads have returned. On Ctrl-C ``on_interrupt()`` is called first, to
    make them return soon.
    """
    walk = _Walk(dag, on_skip)
    if workers <= 1:
        while walk.pending:
            node = walk.next_ready()
            if node is None:
                raise walk.stuck()
            if walk.begin(node):
                walk.finish(node, _call(function, node, failures))
    else:
        _in_threads(walk, function, _Pool(workers, threaded, on_interrupt), failures)
    return walk.outcome


def _call(
    function: Callable[[Node], object], node: Node, failures: tuple[type[Exception], ...]
) -> Exception | None:
    try:
        function(node)
    except failures as exc:  # the node failed: its dependants are skipped, the rest go on
        return exc
    return None


@dataclass(frozen=True)
class _Pool(Generic[Node]):
    workers: int
    threaded: Callable[[Node], bool]
    on_interrupt: Callable[[], object] | None


def _in_threads(
    walk: _Walk[Node],
    function: Callable[[Node], object],
    pool: _Pool[Node],
    failures: tuple[type[Exception], ...],
) -> None:
    executor = ThreadPoolExecutor(max_workers=pool.workers, thread_name_prefix="dag")
    running: dict[Future[Exception | None], Node] = {}
    try:
        while walk.pending or running:
            while len(running) < pool.workers:
                node = walk.next_ready(pool.threaded)
                if node is None:
                    break
                if walk.begin(node):
                    running[executor.submit(_call, function, node, failures)] = node
            here = walk.next_ready(lambda n: not pool.threaded(n))
            if here is not None:
                if walk.begin(here):
                    walk.finish(here, _call(function, here, failures))
                finished = {future for future in running if future.done()}
            elif running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
            elif walk.pending:
                raise walk.stuck()
            else:
                break
            for future in finished:
                walk.finish(running.pop(future), future.result())
    except BaseException as exc:
        if is_interrupt(exc) and pool.on_interrupt is not None:
            pool.on_interrupt()
        executor.shutdown(cancel_futures=True)
        raise
    executor.shutdown()
