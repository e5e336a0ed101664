"""The benchmark's memory figure: every descendant counted, as psutil would count it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import psutil

from benchmarks.process_tree import tree_rss

HELD_MIB = 150

# A process whose child was forked from a non-main thread (as the build forks its fit workers)
# and holds HELD_MIB of touched memory; it says "ready" and waits for its stdin to close.
PARENT = textwrap.dedent(
    f"""
    import multiprocessing, sys, threading

    def hold(ready, stop):
        block = bytearray({HELD_MIB} * 2**20)
        block[::4096] = b"x" * len(range(0, len(block), 4096))  # make every page resident
        ready.set()
        stop.wait()

    def fork_and_stay():  # a thread that ends hands its children to the main thread
        child.start()
        stop.wait()

    context = multiprocessing.get_context("fork")
    ready, stop = context.Event(), context.Event()
    child = context.Process(target=hold, args=(ready, stop))
    forker = threading.Thread(target=fork_and_stay)
    forker.start()
    ready.wait()
    print("ready", flush=True)
    sys.stdin.read()
    stop.set()
    forker.join()
    child.join()
    """
)


def test_tree_rss_counts_a_grandchild_forked_from_a_thread_as_psutil_does() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
            measured = tree_rss(parent.pid)
            root = psutil.Process(parent.pid)
            tree = [root, *root.children(recursive=True)]
            expected = sum(p.memory_info().rss for p in tree)
        finally:
            parent.communicate("", timeout=60)
    assert len(tree) >= 2
    assert measured >= HELD_MIB * 2**20
    assert abs(measured - expected) < 8 * 2**20  # the two reads are moments apart


def test_tree_rss_of_an_ended_process_is_zero() -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    assert tree_rss(finished.pid) == 0
