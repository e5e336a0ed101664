"""The generic DAG walk: inputs first, failures skip their dependants, N workers at a time."""

from __future__ import annotations

import threading
import time

import pytest

from engine.refresh.scheduler import apply_to_dag

# a -> b -> d, a -> c -> d, e alone (listed first among the ready ones after a)
DIAMOND = {"a": [], "e": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_every_node_runs_once_after_its_inputs(workers: int) -> None:
    finished: list[str] = []
    lock = threading.Lock()

    def record(node: str) -> None:
        with lock:
            assert all(i in finished for i in DIAMOND[node]), f"{node} ran before its inputs"
        time.sleep(0.01)
        with lock:
            finished.append(node)

    outcome = apply_to_dag(DIAMOND, record, workers=workers)
    assert sorted(finished) == sorted(DIAMOND)
    assert not outcome.failed and not outcome.skipped


def test_one_worker_runs_in_the_listed_order_in_the_calling_thread() -> None:
    seen: list[tuple[str, str]] = []
    apply_to_dag(DIAMOND, lambda n: seen.append((n, threading.current_thread().name)))
    assert [n for n, _ in seen] == ["a", "e", "b", "c", "d"]
    assert {t for _, t in seen} == {threading.current_thread().name}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failure_skips_everything_downstream_and_nothing_else(workers: int) -> None:
    ran: list[str] = []
    skipped: list[tuple[str, str]] = []

    def build(node: str) -> None:
        if node == "b":
            raise ValueError("b broke")
        ran.append(node)

    outcome = apply_to_dag(
        DIAMOND, build, workers=workers, on_skip=lambda n, f: skipped.append((n, f))
    )
    assert sorted(ran) == ["a", "c", "e"]
    assert list(outcome.failed) == ["b"] and str(outcome.failed["b"]) == "b broke"
    assert outcome.skipped == {"d": "b"} and skipped == [("d", "b")]


def test_a_skip_passes_on_the_node_that_failed_first() -> None:
    chain = {"a": [], "b": ["a"], "c": ["b"]}

    def build(node: str) -> None:
        if node == "a":
            raise ValueError("a broke")

    outcome = apply_to_dag(chain, build)
    assert outcome.skipped == {"b": "a", "c": "a"}


@pytest.mark.parametrize("workers", [1, 2])
def test_an_exception_not_listed_as_a_failure_stops_the_walk(workers: int) -> None:
    ran: list[str] = []

    def build(node: str) -> None:
        ran.append(node)
        if node == "a":
            raise KeyError("config broken")

    with pytest.raises(KeyError, match="config broken"):
        apply_to_dag(DIAMOND, build, workers=workers, failures=(ValueError,))
    assert ran == ["a"]


def test_inputs_outside_the_graph_count_as_done() -> None:
    ran: list[str] = []
    apply_to_dag({"x": ["already built"], "y": ["x"]}, ran.append)
    assert ran == ["x", "y"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_cycle_is_an_error_not_a_hang(workers: int) -> None:
    with pytest.raises(ValueError, match="cycle"):
        apply_to_dag({"a": ["b"], "b": ["a"]}, lambda n: None, workers=workers)


def test_two_workers_run_two_ready_nodes_at_once() -> None:
    both_running = threading.Barrier(2, timeout=10)
    apply_to_dag({"a": [], "b": []}, lambda n: both_running.wait(), workers=2)


def test_unthreaded_nodes_run_in_the_calling_thread_while_threaded_ones_go_on() -> None:
    # "slow" (threaded) waits until "here" (unthreaded, in the calling thread) has run: the
    # walk would hang if the calling thread waited for the threads before running "here".
    ran_here = threading.Event()
    threads: dict[str, str] = {}

    def build(node: str) -> None:
        threads[node] = threading.current_thread().name
        if node == "slow":
            assert ran_here.wait(timeout=10), "the calling thread did not run 'here' meanwhile"
        if node == "here":
            ran_here.set()

    dag = {"slow": [], "here": [], "after": ["slow", "here"], "last": ["after"]}
    outcome = apply_to_dag(dag, build, workers=2, threaded=lambda n: n in ("slow", "after"))
    assert not outcome.failed and not outcome.skipped
    main = threading.current_thread().name
    assert threads["here"] == threads["last"] == main
    assert threads["slow"] != main and threads["after"] != main


@pytest.mark.parametrize("interrupted_in", ["here", "threaded"])
def test_an_interrupt_calls_on_interrupt_and_waits_for_the_threads(interrupted_in: str) -> None:
    # "long" runs until on_interrupt releases it, as a Spark job runs until it is cancelled;
    # the interrupt propagates only after it has returned.
    cancelled, returned = threading.Event(), threading.Event()
    started = threading.Event()

    def build(node: str) -> None:
        if node == "long":
            started.set()
            assert cancelled.wait(timeout=10)
            time.sleep(0.05)
            returned.set()
            return
        assert started.wait(timeout=10)
        raise KeyboardInterrupt

    threaded = {"here": lambda n: n == "long", "threaded": lambda _: True}[interrupted_in]
    with pytest.raises(KeyboardInterrupt):
        apply_to_dag(
            {"long": [], "stop": []},
            build,
            workers=2,
            threaded=threaded,
            on_interrupt=cancelled.set,
        )
    assert cancelled.is_set() and returned.is_set()
