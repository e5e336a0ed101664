"""Memory the process no longer needs: given back, or kept out of the garbage collector's way.

pandas and numpy free through glibc's malloc, which keeps freed pages for reuse, and Arrow keeps
its own pool: after a 10M-row step the process would go on holding gigabytes it no longer uses,
and the next step's peak would stack on top. ``release_unused`` is called between models and
between validations.

The objects imports leave (pandas, SciPy, scikit-learn: about a million) live as long as the
process, yet every full collection walks them all again, and after a fork that walk writes to
every page the two processes share, so the kernel copies each one. ``objects_frozen`` keeps
them out of collection while a forked worker lives (the validation worker) or forks (the fit
workers).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import sys
import threading
from collections.abc import Iterator
from functools import cache

import pyarrow as pa


@cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    return getattr(ctypes.CDLL(name), "malloc_trim", None)  # glibc only, not musl


def release_unused() -> None:
    # No gc.collect(): with pandas and scikit-learn loaded it costs tens of milliseconds a call,
    # and the frames a step leaves are freed by reference counting as it returns.
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


_freezing = threading.Lock()
_freezes = 0


@contextlib.contextmanager
def objects_frozen() -> Iterator[None]:
    """Leave every object alive now out of garbage collection until the outermost exit.

    What the gc module's documentation advises before a fork: neither process then walks (and
    so copies) the memory they share. Nests, and is safe from several threads at once. Frozen
    objects are still freed by reference counting; only garbage cycles among them wait for the
    last user to be done.
    """
    global _freezes
    with _freezing:
        _freezes += 1
        gc.freeze()
    try:
        yield
    finally:
        with _freezing:
            _freezes -= 1
            if _freezes == 0:
                gc.unfreeze()
