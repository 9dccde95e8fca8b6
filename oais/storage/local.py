"""A storage location in a local (or mounted) folder, holding an OCFL 1.1 storage root.

Layout of a location folder::

    <location>/ocfl/        the OCFL storage root (0=ocfl_1.1, ocfl_layout.json, objects)
    <location>/.staging/    temporary copies being written; never read as holdings

Objects are written under ``.staging`` (same file system) and re-read and checked against their
sha256 (sha512 when no sha256 is given) by ``stage``; ``make_durable`` (called by ``commit`` if the
caller has not) flushes them; ``commit`` then renames the object folder into place and fsyncs its
parent folders.

Durability is batched per object, not per file: every file of the object is written first, then one
``syncfs`` of the location's file system (Linux) makes all of them and their folders durable before the
rename; elsewhere each file and then each folder is fsynced. ``syncfs`` also flushes whatever else is
dirty on that file system at the time, which costs time but never durability. That is why the flush is
a step of its own: an ingest flushes its locations only once all of them are written, so that a flush
never waits on another location's copy still being written to the same disk.

``stage(..., adopt=True)`` lets the location take a source file the caller owns (a staged delivery file
that nothing will modify any more) by hard link instead of copying it, when it is on the same file
system and has no other link. Only one location of an ingest is given ``adopt``, and a file already
linked once has two links and is copied: two replicas never share an inode.

``prepare(files, adopt=...)`` copies (or links) a delivery's staged files into ``.staging`` ahead of
time, in another process (``oais.storage.copy_ahead``), while the ingest describes the delivery: each
copy is re-read and checked against its sha256 there (a link too, unless ``check_links=False``: see
``oais.storage.base``), then flushed. The copies are read from the given files' paths (``sendfile``).
``stage(..., prepared=...)`` then renames each prepared copy into the object instead of writing it (a
rename moves the verified file, it does not rewrite it), provided its sha256 is the one the entry asks
for; the object's other files are written and re-read as usual. While ``stage`` waits for the copying
to end, it reports the bytes copied so far as its own progress. Whatever was prepared and not taken is
removed by ``close()``.
The copying process runs ``COPY_AHEAD_NICENESS`` steps nicer than the ingest: on two cores, it takes
the time the ingest's own process leaves, rather than a share of its core.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import subprocess

from oais.formats.digest import read_digest
from oais.formats.fileio import WRITE_MAX, copy_data, linux_libc_function
from oais.storage.base import Entry, ObjectExists, PreparedCopies, ProgressFn, SourceFile, StorageError

BUFFER = 1 << 20
VERIFY_THREADS = 2
ROOT_DIR = "ocfl"
STAGING_DIR = ".staging"
# How much nicer (lower in the scheduler's priority) the copying-ahead process runs than the ingest
# that started it. Both must end before the object is stored, but the ingest's process has more to
# do after the copies are made (packaging, storing): at equal priority the two copying processes took
# two thirds of the cores while the delivery was described, then left a core idle while it was
# packaged. On the 20,000 small files, in two sets of alternating runs out of three, the ingest used
# the cores better at 10 than at equal priority (76-84 % against 71-75 %); its wall time did not
# move beyond the machine's noise (docs/performance.md).
COPY_AHEAD_NICENESS = 10


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs(fd)`` (Linux), or None where there is none."""
    import ctypes

    return linux_libc_function("syncfs", [ctypes.c_int])


def _sync_tree(top: Path, files: list[Path]) -> None:
    """Make ``files`` and every folder under ``top`` durable: one ``syncfs`` where available, else an
    fsync of each file and then of each folder (deepest first)."""
    import ctypes

    syncfs = _syncfs()
    if syncfs is not None:
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if syncfs(fd) == 0:
                return
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs: {os.strerror(err)}")
        finally:
            os.close(fd)
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for d in sorted({p.parent for p in files} | {top}, key=lambda p: -len(p.parts)):
        _fsync_dir(d)


def _makedirs_synced(path: Path, stop: Path, fsync: bool) -> None:
    """Create ``path`` and its missing parents (below ``stop``), fsyncing each new folder's parent."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p == stop or p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        if fsync:
            _fsync_dir(d.parent)


class LocalStagedObject:
    def __init__(self, storage: "LocalStorage", object_path: str, tmp: Path) -> None:
        self.storage = storage
        self.location = storage.name
        self.object_path = object_path
        self.tmp = tmp
        self.files: list[Path] = []  # every file written under ``tmp``
        self.durable = not storage.fsync
        self.done = False

    def make_durable(self) -> None:
        """Flush every file and folder of the staged object to disk (once; ``commit`` calls it if needed)."""
        if self.durable:
            return
        try:
            _sync_tree(self.tmp, self.files)
        except OSError as exc:
            raise StorageError(self.location, f"cannot flush {self.object_path} to disk: {exc}") from exc
        self.durable = True

    def commit(self) -> None:
        self.make_durable()
        final = self.storage.object_dir(self.object_path)
        try:
            _makedirs_synced(final.parent, self.storage.root, self.storage.fsync)
            if final.exists():
                raise ObjectExists(self.location, f"object already exists at {final}")
            os.rename(self.tmp, final)
            if self.storage.fsync:
                _fsync_dir(final.parent)
                _fsync_dir(self.tmp.parent)
        except ObjectExists:
            raise
        except OSError as exc:
            raise StorageError(self.location, f"cannot move object into place at {final}: {exc}") from exc
        self.done = True

    def abort(self) -> None:
        if not self.done:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.done = True


class LocalPreparedCopies:
    """Copies of staged files made ahead of time by ``oais.storage.copy_ahead`` in ``folder``."""

    def __init__(self, storage: "LocalStorage", folder: Path | None, files: list[SourceFile], relative: list[str],
                 process: "subprocess.Popen[bytes] | None") -> None:
        self.storage = storage
        self.location = storage.name
        self.folder = folder
        self.files = files
        self.relative = relative
        self.process = process
        self._ready: dict[Path, tuple[str, str]] | None = None

    def __repr__(self) -> str:
        return f"LocalPreparedCopies({self.location!r}, {len(self.files)} files)"

    def wait(self, progress: ProgressFn | None = None) -> None:
        """Wait for the copying process to end, telling ``progress`` of the bytes it copies meanwhile
        (read from its ``progress`` file five times a second)."""
        import subprocess

        if self.process is None or self.folder is None:
            return
        reported = 0
        total = sum(f.size for f in self.files)
        while True:
            try:
                self.process.wait(timeout=0.2 if progress else None)
                ended = True
            except subprocess.TimeoutExpired:
                ended = False
            if progress:
                copied = self._copied()
                if reported < copied <= total:
                    progress(copied - reported)
                    reported = copied
            if ended:
                return

    def _copied(self) -> int:
        assert self.folder is not None
        try:
            return int((self.folder / "progress").read_bytes())
        except (OSError, ValueError):  # not written yet, or read while being rewritten
            return 0

    def ready(self) -> dict[Path, tuple[str, str]]:
        """Wait for the copying to end: source -> (its verified copy's path below ``files``, sha256), for
        the copies not taken yet. Raises ``StorageError`` with the copying's own message if it failed."""
        if self._ready is None:
            if self.folder is None or self.process is None:
                self._ready = {}
                return self._ready
            status = self.process.wait()
            try:
                result = json.loads((self.folder / "result.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                tail = _tail(self.folder / "stderr.txt")
                result = {"ok": False, "error": f"the copying process ended without a result (exit status "
                                                f"{status})" + (f": {tail}" if tail else "")}
            if not result.get("ok"):
                raise StorageError(self.location, f"copying ahead of time: {result.get('error')}")
            self._ready = {f.path: (rel, f.sha256) for f, rel in zip(self.files, self.relative, strict=True)}
        return self._ready

    def take(self, source: Path, sha256: str | None) -> Path | None:
        """The verified copy of ``source`` if it has this ``sha256`` (each copy can be taken once), else None."""
        ready = self.ready()
        found = ready.get(source)
        if found is None or found[1] != sha256 or self.folder is None:
            return None
        del ready[source]
        return self.folder / "files" / found[0]

    def take_folders(self, entries: list[Entry]) -> list[tuple[Path, str, list[Entry]]]:
        """Folders of copies that can each be moved into an object with one rename: ``(the folder of
        copies, its path in the object, its entries)``. A folder qualifies when every copy below it is
        wanted, with the sha256 copied, by an entry at ``<one place for the folder>/<the copy's path
        below the folder>``, and no other entry is at or below that place; only the outermost such
        folders are given. Their copies count as taken."""
        ready = self.ready()
        if self.folder is None:
            return []
        wanted: dict[str, Entry] = {}
        for entry in entries:
            found = ready.get(entry.source) if entry.source is not None else None
            if found is not None and found[1] == entry.sha256:
                wanted[found[0]] = entry
        below: dict[str, int] = {}  # folder of copies -> copies below it
        for rel, _sha in ready.values():
            parts = rel.split("/")
            for i in range(1, len(parts)):
                folder = "/".join(parts[:i])
                below[folder] = below.get(folder, 0) + 1
        place: dict[str, str | None] = {}  # folder -> where it would go (None: nowhere as one piece)
        count: dict[str, int] = {}
        for rel, entry in wanted.items():
            parts = rel.split("/")
            for i in range(1, len(parts)):
                folder, inner = "/".join(parts[:i]), "/".join(parts[i:])
                there = entry.path[: -len(inner) - 1] if entry.path.endswith("/" + inner) else None
                place[folder] = there if place.get(folder, there) == there else None
                count[folder] = count.get(folder, 0) + 1
        movable = {f for f, there in place.items() if there and count[f] == below[f]}
        outer = sorted(f for f in movable
                       if not any("/".join(f.split("/")[:i]) in movable for i in range(1, f.count("/") + 1)))
        groups: dict[str, tuple[str, list[Entry]]] = {}  # place -> (folder, its entries)
        for folder in outer:
            there = place[folder]
            assert there is not None
            groups[there] = (folder, [])
        claimed: dict[int, str] = {}
        for rel, entry in wanted.items():
            parts = rel.split("/")
            for i in range(1, len(parts)):
                there = place.get("/".join(parts[:i])) or ""
                if there in groups and groups[there][0] == "/".join(parts[:i]):
                    groups[there][1].append(entry)
                    claimed[id(entry)] = there
                    break
        clashes = set()  # another entry at or below a place: that folder goes file by file
        for entry in entries:
            parts = entry.path.split("/")
            for i in range(1, len(parts) + 1):
                there = "/".join(parts[:i])
                if there in groups and claimed.get(id(entry)) != there:
                    clashes.add(there)
        for there in clashes:
            del groups[there]
        taken = []
        for there, (folder, group) in sorted(groups.items()):
            for entry in group:
                assert entry.source is not None
                del ready[entry.source]
            taken.append((self.folder / "files" / folder, there, group))
        return taken

    def close(self) -> None:
        """Stop the copying if it still runs; remove every copy not taken."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _relative_paths(paths: list[Path]) -> list[str]:
    """Each path relative to the folder all of them are in (POSIX form)."""
    if not paths:
        return []
    names = [os.fspath(p) for p in paths]
    root = os.path.commonpath(list({os.path.dirname(name) for name in names}))
    skip = len(root if root.endswith(os.sep) else root + os.sep)
    return [name[skip:].replace(os.sep, "/") for name in names]


def _tail(path: Path, limit: int = 400) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return text[-limit:].replace("\n", " | ")


class LocalStorage:
    """One location: a folder holding an OCFL storage root and a staging area."""

    def __init__(self, name: str, path: Path, *, fsync: bool = True,
                 root_files: Mapping[str, bytes] | None = None) -> None:
        self.name = name
        self.path = Path(path)
        self.root = self.path / ROOT_DIR
        self.staging = self.path / STAGING_DIR
        self.fsync = fsync
        self.root_files = dict(root_files or {})

    def __repr__(self) -> str:
        return f"LocalStorage({self.name!r}, {str(self.path)!r})"

    # -- set-up -------------------------------------------------------------------------------
    def ensure_root(self) -> None:
        """Create the location folder, the OCFL storage root and its declaration files if missing."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.staging.mkdir(exist_ok=True)
            self.root.mkdir(exist_ok=True)
            for rel, data in sorted(self.root_files.items()):
                target = self.root / rel
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self._write_bytes(target, data)
        except OSError as exc:
            raise StorageError(self.name, f"cannot prepare storage root at {self.path}: {exc}") from exc

    # -- writing ------------------------------------------------------------------------------
    def prepare(self, files: Iterable[SourceFile], *, adopt: bool = False,
                check_links: bool = True) -> "LocalPreparedCopies":
        """Start copying (with ``adopt``: linking) ``files`` into the staging area in another process;
        returns at once. See the module docstring and ``oais.storage.copy_ahead``; ``check_links``: see
        ``oais.storage.base`` (every copy is checked whatever it says, a link only with it). Nothing is
        copied ahead when there is no file, or no Python interpreter to start (``sys.executable`` empty,
        as in some embedded interpreters): ``stage`` then writes every file itself."""
        import subprocess
        import sys

        listed = list(files)
        if not listed or not sys.executable:
            return LocalPreparedCopies(self, None, [], [], None)
        folder = self.staging / f"{uuid.uuid4().hex}.prep"
        try:
            self.staging.mkdir(parents=True, exist_ok=True)
            folder.mkdir()
            relative = _relative_paths([f.path for f in listed])
            job = {"files": [[os.fspath(f.path), rel, f.sha256, f.size] for f, rel in zip(listed, relative)],
                   "adopt": adopt, "check_links": check_links, "fsync": self.fsync}
            (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
            with open(folder / "stderr.txt", "xb") as err:
                # -P: the current folder (where the archivist ran the command: perhaps the delivery
                # itself) is not put on the module path, so no module of it is ever imported
                process = subprocess.Popen([sys.executable, "-P", "-m", "oais.storage.copy_ahead",
                                            f"--nice={COPY_AHEAD_NICENESS}", str(folder)],
                                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise StorageError(self.name, f"cannot start copying ahead into {self.staging}: {exc}") from exc
        return LocalPreparedCopies(self, folder, listed, relative, process)

    def stage(self, object_path: str, entries: Iterable[Entry],
              progress: ProgressFn | None = None, *, adopt: bool = False,
              prepared: "PreparedCopies | None" = None) -> LocalStagedObject:
        if prepared is not None and not (isinstance(prepared, LocalPreparedCopies) and prepared.storage is self):
            raise ValueError(f"{prepared!r} was not prepared by {self!r}")
        if self.exists(object_path):
            raise ObjectExists(self.name, f"object already exists at {self.object_dir(object_path)}")
        try:
            self.staging.mkdir(parents=True, exist_ok=True)
            tmp = self.staging / f"{uuid.uuid4().hex}.tmp"
            tmp.mkdir()
        except OSError as exc:
            raise StorageError(self.name, f"cannot create a staging folder in {self.staging}: {exc}") from exc
        staged = LocalStagedObject(self, object_path, tmp)
        try:
            if prepared is not None:  # the bytes copied ahead count as this location's writing
                prepared.wait(progress)
            written: list[tuple[Path, Entry]] = []
            moved: list[Path] = []
            folders = {tmp}
            buf = bytearray(BUFFER)  # for the rare copy that sendfile cannot make
            listed = list(entries)
            grafted: set[int] = set()
            for copies, place, group in (prepared.take_folders(listed) if prepared is not None else []):
                target = tmp / place  # a whole folder of copies, re-read and flushed where it was made
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(copies, target)
                grafted.update(id(e) for e in group)
                moved.extend(tmp / e.path for e in group)
            for entry in listed:
                if id(entry) in grafted:
                    continue
                target = tmp / entry.path
                if target.parent not in folders:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    folders.update(target.parent.parents)
                    folders.add(target.parent)
                # one thread: creating files in parallel measured slower here (the folders' locks)
                ahead = (prepared.take(entry.source, entry.sha256)
                         if prepared is not None and entry.source is not None else None)
                if ahead is not None:  # re-read and flushed by the process that copied it
                    os.rename(ahead, target)
                    moved.append(target)
                    continue
                if adopt and entry.source is not None and _adopt(entry.source, target):
                    if progress:
                        progress(entry.size if entry.size is not None else target.stat().st_size)
                else:
                    self._write_entry(target, entry, progress, buf)
                written.append((target, entry))
            self._verify(written)
            staged.files = moved + [p for p, _ in written]
        except StorageError:
            staged.abort()
            raise
        except OSError as exc:
            staged.abort()
            raise StorageError(self.name, f"writing {object_path}: {exc}") from exc
        except BaseException:
            staged.abort()
            raise
        return staged

    def _verify(self, written: list[tuple[Path, Entry]]) -> None:
        """Re-read every written file (two threads) and check it against its sha256, else sha512."""
        def check(item: tuple[Path, Entry]) -> str | None:
            target, entry = item
            if entry.sha256 is not None:
                found, expected, alg = _digest(target, "sha256"), entry.sha256, "sha256"
            else:
                found, expected, alg = _digest(target, "sha512"), entry.sha512, "sha512"
            if found != expected:
                return (f"{entry.path}: copy does not match after writing "
                        f"({alg} {found[:16]}…, expected {expected[:16]}…)")
            return None

        with ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix=f"verify-{self.name}") as pool:
            for problem in pool.map(check, written):
                if problem is not None:
                    raise StorageError(self.name, problem)

    def rollback(self, object_path: str) -> None:
        """Remove an object this ingest committed moments ago (it is in no catalog)."""
        final = self.object_dir(object_path)
        if not final.exists():
            return
        trash = self.staging / f"{uuid.uuid4().hex}.rollback"
        try:
            os.rename(final, trash)
            shutil.rmtree(trash)
            _prune_empty_parents(final.parent, self.root)
        except OSError as exc:
            raise StorageError(self.name, f"cannot roll back {final}: {exc}") from exc

    def _write_entry(self, target: Path, entry: Entry, progress: ProgressFn | None,
                     buf: bytearray | None) -> None:
        """Write one file (not flushed here: ``stage`` makes the whole object durable at once)."""
        if entry.data is not None:
            with open(target, "xb") as dst:
                dst.write(entry.data)
            if progress:
                progress(len(entry.data))
            return
        assert entry.source is not None
        with open(entry.source, "rb", buffering=0) as src, open(target, "xb", buffering=0) as dst:
            copy_data(src.fileno(), dst.fileno(), progress, buf)  # sendfile: see oais.formats.fileio

    def _write_bytes(self, target: Path, data: bytes) -> None:
        with open(target, "xb") as dst:
            dst.write(data)
            dst.flush()
            if self.fsync:
                os.fsync(dst.fileno())

    # -- repair -------------------------------------------------------------------------------
    def restore_file(self, object_path: str, relpath: str, source: Path, sha512: str) -> None:
        """Put a good copy of one file of an object in place: temporary name, fsync, re-read, rename.

        Replaces a damaged file; used only by repair, with a source already checked against the catalog.
        """
        target = self.object_dir(object_path) / relpath
        self.staging.mkdir(parents=True, exist_ok=True)
        tmp = self.staging / f"{uuid.uuid4().hex}.restore"
        try:
            with open(source, "rb") as src, open(tmp, "xb") as dst:
                shutil.copyfileobj(src, dst, WRITE_MAX)
                dst.flush()
                if self.fsync:
                    os.fsync(dst.fileno())
            found = _digest(tmp, "sha512")
            if found != sha512:
                raise StorageError(self.name, f"{relpath}: restored copy does not match (sha512 {found[:16]}…)")
            _makedirs_synced(target.parent, self.root, self.fsync)
            os.replace(tmp, target)
            if self.fsync:
                _fsync_dir(target.parent)
        except OSError as exc:
            raise StorageError(self.name, f"cannot restore {relpath} of {object_path}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def move_aside(self, object_path: str, relpath: str) -> Path:
        """Move a file that does not belong in an object to ``<location>/lost+found/`` (kept, not deleted)."""
        source = self.object_dir(object_path) / relpath
        target = self.path / "lost+found" / object_path / relpath
        n = 1
        while target.exists():
            target = target.with_name(f"{target.name}.{n}")
            n += 1
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(source, target)
        except OSError as exc:
            raise StorageError(self.name, f"cannot move {relpath} of {object_path} aside: {exc}") from exc
        return target

    def list_objects(self) -> list[str]:
        """Object paths (relative to the storage root) of every OCFL object in this location."""
        if not self.root.exists():
            return []
        return sorted(p.parent.relative_to(self.root).as_posix() for p in self.root.rglob("0=ocfl_object_1.1"))

    # -- reading ------------------------------------------------------------------------------
    def object_dir(self, object_path: str) -> Path:
        return self.root / object_path

    def exists(self, object_path: str) -> bool:
        return self.object_dir(object_path).exists()

    def open(self, object_path: str, relpath: str) -> BinaryIO:
        return open(self.object_dir(object_path) / relpath, "rb")

    def iter_files(self, object_path: str) -> Iterator[str]:
        base = self.object_dir(object_path)
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                yield (Path(dirpath) / name).relative_to(base).as_posix()

    def staging_leftovers(self) -> list[Path]:
        """Temporary copies left by an interrupted write (safe to delete; never holdings)."""
        if not self.staging.exists():
            return []
        return sorted(self.staging.iterdir())


def _adopt(source: Path, target: Path) -> bool:
    """Hard-link ``source`` (a file with no other link) as ``target``; False when that cannot be done
    (another file system, links not supported, a second link already there): the caller copies."""
    try:
        if os.stat(source, follow_symlinks=False).st_nlink != 1:
            return False
        os.link(source, target, follow_symlinks=False)
    except OSError:
        return False
    return True


def _digest(path: Path, algorithm: str) -> str:
    return read_digest(path, algorithm)[1]


def _prune_empty_parents(path: Path, stop: Path) -> None:
    while path != stop and path.is_relative_to(stop):
        try:
            path.rmdir()
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return
            raise
        path = path.parent
