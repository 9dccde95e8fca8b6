"""The storage interface every location implements (local folders now, S3-compatible later).

Writing an object is two-phase so that a failure anywhere leaves nothing half-done on any replica:

1. ``stage(object_path, entries)`` writes every file under a temporary name and re-reads it to
   check its digest; it returns a ``StagedObject``. With ``adopt=True`` the location may take an
   entry's source file (the caller's own, never modified afterwards) instead of copying it, e.g. by
   hard link; one ingest gives ``adopt`` to one location at most.
2. ``StagedObject.make_durable()`` flushes the staged copy to disk. ``commit()`` moves the object into
   place in one atomic step (a rename), after flushing it if ``make_durable`` was not called;
   ``abort()`` removes the temporary copy. A caller writing several locations flushes them once all
   are written: flushing one location's disk while another location is still being written to it
   would wait on that write too. ``StorageLocation.rollback(object_path)`` removes an object that was
   committed by the same, still unfinished, ingest (never used for anything else).

Copying ahead: ``prepare(files, adopt=...)`` starts copying (or, with ``adopt``, linking) staged files
into the location before their object is known, and returns a ``PreparedCopies`` at once; each copy
is read from its file's path, re-read and checked against its sha256, then flushed, without holding up
the caller. A copy that verifies has therefore read every byte of the file it was made from.
``prepare(..., adopt=True, check_links=False)`` leaves the location's links (files it took as they are,
not copies) unread: the caller passes it only when another location prepares the same files without
``adopt`` and stores nothing unless all of that location's copies verify: a link is the very file
that location's copy was read from, so the copy's check has read the link's every byte. Every copy is
checked whatever ``check_links`` says.
``stage(..., prepared=...)`` then moves into the object every prepared copy whose sha256 is the one
its entry asks for (waiting for the copying to end, and raising its error if it failed) and writes the
rest. ``PreparedCopies.close()`` stops the copying if it is still running and removes whatever was
not taken; the caller always calls it, whatever happened.

Errors: ``StorageError`` (and its subclass ``ObjectExists``) carry the location name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from oais.domain.storage import Entry, SourceFile

__all__ = ["Entry", "ObjectExists", "PreparedCopies", "SourceFile", "StagedObject", "StorageError",
           "StorageLocation"]


class StorageError(Exception):
    """A storage location could not do what was asked; ``location`` names it."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"storage location {location!r}: {message}")
        self.location = location


class ObjectExists(StorageError):
    """Refusing to overwrite an object that is already in place."""


ProgressFn = Callable[[int], None]
"""Called with the number of bytes just written."""


class StagedObject(Protocol):
    location: str
    object_path: str

    def make_durable(self) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class PreparedCopies(Protocol):
    location: str

    def close(self) -> None: ...


class StorageLocation(Protocol):
    name: str

    def ensure_root(self) -> None: ...

    def prepare(self, files: Iterable[SourceFile], *, adopt: bool = False,
                check_links: bool = True) -> PreparedCopies: ...

    def stage(self, object_path: str, entries: Iterable[Entry],
              progress: ProgressFn | None = None, *, adopt: bool = False,
              prepared: PreparedCopies | None = None) -> StagedObject: ...

    def rollback(self, object_path: str) -> None: ...

    def exists(self, object_path: str) -> bool: ...

    def object_dir(self, object_path: str) -> Path: ...

    def open(self, object_path: str, relpath: str) -> BinaryIO: ...

    def iter_files(self, object_path: str) -> Iterator[str]: ...
