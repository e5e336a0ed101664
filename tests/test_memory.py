"""Freezing objects out of garbage collection: nested users never thaw each other's freeze,
and forked fit workers start with the builder's objects frozen."""

from __future__ import annotations

import gc
import threading

from engine.refresh.fit_workers import FitWorkers
from engine.refresh.memory import objects_frozen


def test_a_nested_freeze_lasts_until_the_outermost_user_is_done() -> None:
    assert gc.get_freeze_count() == 0
    with objects_frozen():
        outer = gc.get_freeze_count()
        assert outer > 0
        # A frozen object that reference counting frees (another thread's, say) leaves the
        # frozen set, so the count may dip by a few; a thaw would empty it.
        with objects_frozen():
            made_inside = [[] for _ in range(1000)]  # noqa: F841  tracked objects, alive now
            assert gc.get_freeze_count() > outer // 2
        # The inner user is done; the outer one still relies on the freeze.
        assert gc.get_freeze_count() > outer // 2
    assert gc.get_freeze_count() == 0


def test_freezes_from_two_threads_end_when_both_are_done() -> None:
    inside, release = threading.Barrier(3), threading.Event()
    counts: list[int] = []

    def hold() -> None:
        with objects_frozen():
            inside.wait()
            release.wait()
            counts.append(gc.get_freeze_count())

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait()
    assert gc.get_freeze_count() > 0
    release.set()
    for thread in threads:
        thread.join()
    # The first thread out must not have thawed the second's freeze.
    assert all(count > 0 for count in counts)
    assert gc.get_freeze_count() == 0


def _frozen_here(_: int) -> int:
    return gc.get_freeze_count()


def test_fit_workers_inherit_a_freeze_the_builder_has_left() -> None:
    pool = FitWorkers(2)
    try:
        counts = list(pool.map(_frozen_here, range(4)))
    finally:
        pool.close()
    # The workers never walk (so never copy) what they share with the builder...
    assert all(count > 0 for count in counts)
    # ...while the builder's own collector is back to normal once they have forked.
    assert gc.get_freeze_count() == 0
