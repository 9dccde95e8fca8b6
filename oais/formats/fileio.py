"""File-system helpers for storage: copying in the kernel.

``copy_data(src, dst)`` copies an open file's bytes into another with ``sendfile`` (Linux): the
kernel copies page to page, without passing every byte through a Python buffer. ``sendfile`` always
copies the bytes. It never shares blocks between the two files, as ``copy_file_range`` may on file
systems with reflinks: two replicas on one such file system would then be one physical copy. Where
``sendfile`` cannot be used on these files (``EINVAL``, ``ENOSYS``, ...), a read/write loop copies.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

COPY_CHUNK = 8 << 20  # bytes per sendfile call: progress is reported at least this often
_NO_SENDFILE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV}


def copy_data(src: int, dst: int, progress: Callable[[int], None] | None = None, buffer: bytearray | None = None
              ) -> int:
    """Copy everything from the file ``src`` (an fd, read from its current offset) to ``dst``; returns
    the number of bytes copied. ``progress(n)`` is called after each chunk. ``sendfile`` where it works,
    else ``read``/``write`` through ``buffer`` (1 MiB if not given)."""
    total = 0
    if hasattr(os, "sendfile"):
        try:
            while n := os.sendfile(dst, src, None, COPY_CHUNK):
                total += n
                if progress:
                    progress(n)
            return total
        except OSError as exc:
            if exc.errno not in _NO_SENDFILE or total:
                raise
    buf = buffer if buffer is not None else bytearray(1 << 20)
    view = memoryview(buf)
    while n := os.readv(src, (buf,)):
        done = 0
        while done < n:
            done += os.write(dst, view[done:n])
        total += n
        if progress:
            progress(n)
    return total
