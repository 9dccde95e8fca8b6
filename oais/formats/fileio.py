"""File-system helpers for storage: copying in the kernel.

``copy_data(src, dst)`` copies an open file's bytes into another with ``sendfile`` (Linux): the
kernel copies page to page, without passing every byte through a Python buffer. ``sendfile`` always
copies the bytes. It never shares blocks between the two files, as ``copy_file_range`` may on file
systems with reflinks: two replicas on one such file system would then be one physical copy. Where
``sendfile`` cannot be used on these files (``EINVAL``, ``ENOSYS``, ...), a read/write loop copies.

``start_writeback(fd, offset, length)`` hands bytes just written to the disk without waiting for
them (Linux ``sync_file_range``). Left alone, the kernel keeps dirty pages in memory until they are
30 s old or fill 10 % of memory (about 2.3 GiB here): an ingest of 2 GiB would leave the disk idle
while it hashes and stages, then wait for all 4 GiB of its two replicas in the final flush. The
copy (``copy_data``) and staging (``sip.receive_common._write``) call it through ``Writeback``, every
``WRITEBACK_CHUNK`` bytes of a file and at the end of a file of ``WRITEBACK_TAIL`` bytes or more;
smaller files are left to the kernel's own writeback and the final flush, as before. It is no
flush: the durability of an object still comes from the ``syncfs`` (or fsyncs) that end its writing.

``WRITE_MAX`` bounds every ``write`` of a file's bytes made through a buffer (staging, the read/write
fallback of a copy, a repair's restore, a DIP's zip, an order's download). On the benchmark's virtual
machine, a ``write`` of 1 MiB or more cost 6-10 times as much system time per byte as smaller ones
(2 GiB written from one buffer: 2.1-3.7 s of system time in writes of 1, 2 or 8 MiB, 0.34-0.45 s in
writes of 64-512 KiB, 0.36-0.47 s in writes of 256 KiB from two threads at once; likely the large
folios the kernel then gives the page cache; see docs/performance.md). ``sendfile`` is not concerned:
the kernel moves its bytes through a pipe of 64 KiB.

``copy_reread(src, dst, reread, update)`` copies a large file window by window, re-reads each window
as soon as it is written (for its digest), and drops it from the page cache once the disk has it
(``flush_and_drop``): the copying processes of the ingest use it for every copy of
``oais.storage.copy_ahead.EARLY_CHECK`` bytes or more.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from functools import cache
from typing import Any

COPY_CHUNK = 8 << 20  # bytes per sendfile call: progress is reported at least this often
_NO_SENDFILE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV}


WRITE_MAX = 256 << 10  # bytes per write() at most (see the module's docstring)
WRITEBACK_CHUNK = 8 << 20  # a written file's bytes are handed to the disk this many at a time
# ... and what is left at the end of a file this large or larger. Without it, the 2,000 FITS files of
# 1 MiB of the benchmark (2 GiB) stayed dirty in memory through their staging until the kernel began
# writing them all at once, and the second location's copies then waited 1.2 s for the disk; with it,
# nothing waits for the disk, though on two busy cores the ingest took as long (docs/performance.md).
WRITEBACK_TAIL = 512 << 10
_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4  # sync_file_range's SYNC_FILE_RANGE_* flags (Linux)


def linux_libc_function(name: str, argtypes: list[Any]) -> Callable[..., int] | None:
    """libc's function ``name`` (Linux), taking ``argtypes`` and returning a C int (errno kept for
    ``ctypes.get_errno``), or None where there is none."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        found = getattr(ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    found.argtypes = argtypes
    found.restype = ctypes.c_int
    fn: Callable[..., int] = found
    return fn


@cache
def _sync_file_range() -> Callable[..., int] | None:
    """libc's ``sync_file_range`` (Linux), or None where there is none."""
    import ctypes

    return linux_libc_function("sync_file_range", [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint])


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing ``length`` bytes of ``fd`` from ``offset`` to the disk, without waiting for them
    (``sync_file_range(SYNC_FILE_RANGE_WRITE)`` on Linux; nothing elsewhere). Durability still comes
    from the flush that ends the work; this only sets the disk to work while the CPU hashes."""
    fn = _sync_file_range()
    if fn is not None:
        fn(fd, offset, length, _WRITE)  # an error only means no early start


class Writeback:
    """Hands the bytes written to ``fd`` to the disk every ``WRITEBACK_CHUNK`` bytes
    (``start_writeback``): call ``wrote(n)`` after writing ``n`` more bytes in order from offset 0,
    and ``done()`` once the file is written (the rest, if the file holds ``WRITEBACK_TAIL`` bytes or
    more)."""

    __slots__ = ("fd", "written", "flushed")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.written = 0
        self.flushed = 0  # of which handed to the disk (a file under WRITEBACK_TAIL bytes: none)

    def wrote(self, n: int) -> None:
        self.written += n
        if self.written - self.flushed >= WRITEBACK_CHUNK:
            self._hand_over()

    def done(self) -> None:
        if self.written >= WRITEBACK_TAIL and self.written > self.flushed:
            self._hand_over()

    def _hand_over(self) -> None:
        """Start the disk's writing of every byte written and not yet handed to it."""
        start_writeback(self.fd, self.flushed, self.written - self.flushed)
        self.flushed = self.written


DROP_WINDOW = 32 << 20  # copy_reread: bytes copied, re-read, flushed and dropped at a time


def flush_and_drop(fd: int, offset: int, length: int) -> bool:
    """Wait until ``length`` bytes of ``fd`` from ``offset`` are on the disk, then drop them from the
    page cache (Linux ``sync_file_range`` with WAIT_BEFORE | WRITE | WAIT_AFTER, then
    ``posix_fadvise(DONTNEED)``); returns False, having done nothing, where that is not available.
    Not a flush of the file's metadata nor of the disk's cache: the work's final flush still makes it
    durable."""
    fn = _sync_file_range()
    if fn is None or not hasattr(os, "posix_fadvise"):
        return False
    if fn(fd, offset, length, _WAIT_BEFORE | _WRITE | _WAIT_AFTER) != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"sync_file_range: {os.strerror(err)}")
    os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
    return True


def copy_reread(src: int, dst: int, reread: int, update: Callable[[memoryview], object],
                progress: Callable[[int], None] | None = None, window: int = DROP_WINDOW) -> int:
    """Copy everything from ``src`` (an fd, from its current offset) to ``dst`` (an fd written from
    offset 0) and re-read each window of ``window`` bytes through ``reread`` (``dst``'s file opened
    for reading) as soon as it is copied, handing what is read to ``update`` (a digest's); returns the
    number of bytes copied. Once the disk has a window, it is dropped from the page cache
    (:func:`flush_and_drop`), so a large copy takes no more memory than two windows.

    Why: the copy is not read again by the ingest, and on a virtual machine whose host takes back the
    guest's free memory (free page reporting, as on the benchmark's machine) every page the page
    cache takes from free memory costs a fault in the host. Writing 2 GiB there took 4.9-5.4 s of
    system time left in the page cache, 0.6-0.9 s with each window dropped once on the disk: the
    pages dropped are taken again, still backed, for the next windows (see docs/performance.md).
    The re-read reads the page cache, as the re-read of a whole copy after writing it did."""
    copier = _Copier(src, dst)
    view = copier.view()  # also the re-read's buffer
    total = 0
    pending: tuple[int, int] | None = None
    while True:
        got = 0
        while got < window and (n := copier.copy(window - got)):
            got += n
            if progress:
                progress(n)
        if not got:
            break
        start_writeback(dst, total, got)
        pos, end = total, total + got
        while pos < end:
            n = os.preadv(reread, (view[:min(len(view), end - pos)],), pos)
            if not n:
                raise OSError(errno.EIO, "the copy is shorter than what was written to it")
            update(view[:n])
            pos += n
        if pending is not None:
            flush_and_drop(dst, *pending)
        pending = (total, got)
        total = end
    if pending is not None:
        flush_and_drop(dst, *pending)
    return total


class _Copier:
    """Copies from ``src`` to ``dst`` (fds, from their offsets) ``count`` bytes at most per call:
    ``sendfile`` where it works, else ``read``/``write`` through a buffer (``buffer``, else 1 MiB made
    when first needed), ``WRITE_MAX`` bytes per write at most. ``sendfile`` is given up only when it
    refuses these files before any byte is copied (``EINVAL``, ``ENOSYS``, ...); a later error is raised."""

    __slots__ = ("src", "dst", "sendfile", "copied", "buffer", "_view")

    def __init__(self, src: int, dst: int, buffer: bytearray | None = None) -> None:
        self.src = src
        self.dst = dst
        self.sendfile = hasattr(os, "sendfile")
        self.copied = False
        self.buffer = buffer
        self._view: memoryview | None = None

    def view(self) -> memoryview:
        if self._view is None:
            self._view = memoryview(self.buffer if self.buffer is not None else bytearray(1 << 20))
        return self._view

    def copy(self, count: int) -> int:
        """Copy up to ``count`` bytes; returns how many (0 at the end of ``src``)."""
        if self.sendfile:
            try:
                n = os.sendfile(self.dst, self.src, None, count)
            except OSError as exc:
                if exc.errno not in _NO_SENDFILE or self.copied:
                    raise
                self.sendfile = False
            else:
                self.copied = self.copied or n > 0
                return n
        view = self.view()
        n = os.readv(self.src, (view[:min(len(view), count)],))
        done = 0
        while done < n:
            done += os.write(self.dst, view[done:min(n, done + WRITE_MAX)])
        self.copied = self.copied or n > 0
        return n


def copy_data(src: int, dst: int, progress: Callable[[int], None] | None = None, buffer: bytearray | None = None
              ) -> int:
    """Copy everything from the file ``src`` (an fd, read from its current offset) to ``dst``; returns
    the number of bytes copied. ``progress(n)`` is called after each chunk. ``sendfile`` where it works,
    else ``read``/``write`` through ``buffer`` (1 MiB if not given); see ``_Copier``."""
    copier = _Copier(src, dst, buffer)
    writeback = Writeback(dst)
    total = 0
    while n := copier.copy(COPY_CHUNK):
        total += n
        writeback.wrote(n)
        if progress:
            progress(n)
    writeback.done()
    return total
