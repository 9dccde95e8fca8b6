"""File-system helpers shared by staging (``sip``) and storage: starting writeback early.

``start_writeback(fd)`` asks Linux to begin writing a file's dirty pages to disk now, without waiting
(``sync_file_range(SYNC_FILE_RANGE_WRITE)``). Staging and replica writes call it once per file, so the
disk works while the CPU hashes the next files, instead of all the data waiting in the page cache for
the kernel's dirty limits or for the final ``syncfs``. It guarantees nothing about durability (the
storage layer's sync does that) and does nothing where the call does not exist.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import cache

SYNC_FILE_RANGE_WRITE = 2


@cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def start_writeback(fd: int) -> None:
    """Start writing ``fd``'s dirty pages to disk, without waiting; a no-op where unsupported."""
    fn = _sync_file_range()
    if fn is not None:
        fn(fd, 0, 0, SYNC_FILE_RANGE_WRITE)  # a failure only means the kernel writes back later
