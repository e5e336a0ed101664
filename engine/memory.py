"""Give memory freed by a finished step back to the operating system.

pandas and numpy free through glibc's malloc, which keeps freed pages for reuse, and Arrow keeps
its own pool: after a 10M-row step the process would go on holding gigabytes it no longer uses,
and the next step's peak would stack on top. Called between models and between validations.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
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
