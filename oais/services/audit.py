"""The rolling fixity audit: every stored file of every replica re-read and checked against the catalog.

Units are ``stored_files`` rows (one file of one AIP's OCFL object in one replica). An audit has a
scope (``all``, ``aip:<id>``, ``location:<name>``, or ``due:<location>`` for the scheduler's rolling
batches); an unfinished audit of the same scope is resumed: its remaining units are those not checked
in its scope that it has no recorded check of, so a killed audit neither skips nor double-counts a file. Results are committed in
batches; each check records when, the outcome (``pass``, ``fail``, ``missing``, ``error``) and the
digest found. "Could not read" is an error, never a pass. At the end, one PREMIS fixity-check event
per AIP replica, the replica's state, and an incident for every damaged replica.

What is checked: the size and the **sha256** of a unit that has one in the catalog; the size and the
sha512 of a unit catalogued before revision 0007 (``stored_files.sha256`` NULL). The digest found is
recorded in ``fixity_checks.sha256_found`` or ``sha512_found`` accordingly, and every message names
the algorithm used.

How: the units are read from the catalog in one query (:func:`_pending`); two threads hash them
(hashlib and ``os.readv`` release the GIL), each file streamed through one reused 64 KiB buffer per
thread (memory independent of file size; a buffer that stays in the CPU cache reads and hashes
faster than a larger one), throttled to the location's MB/s cap. Files are handed to the threads in
small tasks, several tasks ahead, so hashing goes on while the main thread records the results of
the previous ones: one transaction per batch (:data:`FLUSH_SECONDS` of work or :data:`FLUSH_FILES`
files at most) of a few set-based statements (:func:`_record`), never one statement per file. A
batch is committed whole or not at all, so a killed audit redoes at most the files of its last
uncommitted batch. The last batch of a whole (uncapped) run is committed with the audit's closing
(:func:`_finish`): one commit fewer after the last file is read.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import case, func, insert, literal, select, update

from oais.catalog import tables as t
from oais.catalog.db import redoable_commit
from oais.catalog.journal import append_event
from oais.domain import premis
from oais.domain.package import ReplicaState
from oais.formats.digest import read_digest

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.orm import Session

    from oais.storage.hash_ahead import Digests, Found, HashAhead

TASK_FILES = 32  # files per hashing task: amortizes the hand-over cost on small files ...
TASK_BYTES = 4 << 20  # ... without making a task of several large files
TASKS_AHEAD = 256  # tasks queued for the threads: they keep hashing while a batch is recorded
FLUSH_FILES = 4096  # results per catalog transaction at most ...
FLUSH_SECONDS = 0.5  # ... and a transaction at least this often while results come in
IN_CHUNK = 500  # ids per IN (...) list: far below the bound-parameter limits of SQLite and PostgreSQL
RUN_MIN = 8  # consecutive ids from which a range (BETWEEN) is used instead of an IN list



@dataclass(frozen=True)
class AuditPolicy:
    """How a location is audited: the cycle every file must be covered in, batch caps, bandwidth cap."""

    cycle: timedelta = timedelta(days=90)
    batch_files: int = 50_000
    batch_bytes: int = 500 << 30
    max_bytes_per_s: float | None = None  # None: as fast as the disk and both cores allow


class Throttle:
    """Caps the read rate: after ``n`` bytes, sleeps until the average rate is within the cap."""

    def __init__(self, rate: float | None, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.rate, self.clock, self.sleep = rate, clock, sleep
        self.start: float | None = None
        self.total = 0
        self.lock = threading.Lock()

    def consume(self, n: int) -> None:
        if not self.rate:
            return
        with self.lock:
            if self.start is None:
                self.start = self.clock()
            self.total += n
            ahead = self.total / self.rate - (self.clock() - self.start)
        if ahead > 0:
            self.sleep(ahead)


class AuditRow(NamedTuple):
    """The ``audits`` row of the audit being run."""

    id: int
    identifier: str
    scope: str


class ReplicaRef(NamedTuple):
    """Where the units of one AIP replica are."""

    id: int
    location: str
    object_path: str
    aip_id: str  # the AIP's identifier


class Unit(NamedTuple):
    """One stored file to check, as :func:`_pending` reads it from the catalog."""

    id: int
    path: str  # relative to the object root
    size: int
    sha256: str | None  # None: catalogued before revision 0007, checked by its sha512
    sha512: str | None  # read only for a unit without sha256
    replica: ReplicaRef


@dataclass(slots=True)
class Check:
    """The result of checking one unit. ``digest`` is the ``algorithm`` digest found (None when unread)."""

    unit_id: int
    outcome: str  # pass, fail, missing, error
    algorithm: str  # sha256, or sha512 for a unit without a catalogued sha256
    size: int | None = None
    digest: str | None = None
    detail: str | None = None


def hash_file(path: str | os.PathLike[str], throttle: Throttle, algorithm: str = "sha512", *,
              dir_fd: int | None = None) -> tuple[int, str]:
    """``(size, hex digest)`` of the regular file at ``path`` (relative to the open folder ``dir_fd``
    when given), read within ``throttle``'s cap (``oais.formats.digest.read_digest``). Raises
    ``OSError`` when it cannot be read or is not a regular file."""
    return read_digest(path, algorithm, throttle.consume if throttle.rate else None, dir_fd=dir_fd)


class ObjectDir(NamedTuple):
    """One AIP replica's object folder: its path, and an open descriptor of it (None when it could
    not be opened: each file is then looked up by its full path, and reported missing or unreadable)."""

    path: str
    fd: int | None


def check_unit(object_dir: str | ObjectDir, unit: Unit, throttle: Throttle) -> Check:
    """Size and digest (sha256 when catalogued, else sha512) of ``unit`` in ``object_dir`` against the catalog."""
    algorithm, expected = ("sha256", unit.sha256) if unit.sha256 else ("sha512", unit.sha512 or "")
    path = unit.path
    if isinstance(object_dir, str):
        object_dir = ObjectDir(object_dir, None)
    try:
        if object_dir.fd is not None and not path.startswith("/"):
            found_size, found = hash_file(path, throttle, algorithm, dir_fd=object_dir.fd)
        else:
            found_size, found = hash_file(f"{object_dir.path}/{path}", throttle, algorithm)
    except FileNotFoundError:
        return Check(unit.id, "missing", algorithm, detail=f"{path}: not found in the replica")
    except OSError as exc:
        return Check(unit.id, "error", algorithm, detail=f"{path}: could not read: {exc.strerror or exc}")
    return _compared(unit, algorithm, expected, found_size, found)


def _compared(unit: Unit, algorithm: str, expected: str, found_size: int, found: str) -> Check:
    if found == expected and found_size == unit.size:
        return Check(unit.id, "pass", algorithm, found_size, found)
    return Check(unit.id, "fail", algorithm, found_size, found,
                 f"{unit.path}: {found_size} bytes, {algorithm} {found[:16]}…; "
                 f"expected {unit.size} bytes, {algorithm} {expected[:16]}…")


@dataclass
class AuditResult:
    audit_id: str
    scope: str
    resumed: bool
    files: int = 0
    bytes: int = 0
    passed: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    replicas: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # incidents opened: to send once committed

    @property
    def intact(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {"audit_id": self.audit_id, "scope": self.scope, "resumed": self.resumed, "files": self.files,
                "bytes": self.bytes, "passed": self.passed, "failed": self.failed, "replicas": self.replicas,
                "intact": self.intact}


def _scope_filter(scope: str) -> Any:
    kind, _, value = scope.partition(":")
    if kind == "aip":
        return t.aips.c.identifier == value
    if kind in ("location", "due"):
        return t.replicas.c.location == value
    return None


def _pending(conn: Connection, audit: AuditRow, limit_files: int | None = None, limit_bytes: int | None = None,
             *, fresh: bool = False) -> list[Unit]:
    """Units in the audit's scope it has not checked yet (no check recorded under its id), oldest-verified
    first, within the caps. Checks are committed with their audit id, so a resumed audit is exact.
    ``fresh``: the audit was created by this run and has no check yet, so none is looked for (a
    third of this query's time for 20,000 units).

    The rows are kept narrow (the replica's location and paths are read once per replica, the sha512
    only where there is no sha256): their sort and their conversion are most of this query's cost."""
    sf, replicas, aips, fc = t.stored_files.c, t.replicas.c, t.aips.c, t.fixity_checks.c
    q = (select(sf.id, sf.path, sf.size, sf.sha256, case((sf.sha256.is_(None), sf.sha512)), sf.replica_id)
         .join(t.replicas, sf.replica_id == replicas.id)
         .order_by(sf.last_checked_at.is_not(None), sf.last_checked_at, sf.id))
    if not fresh:
        q = q.where(~select(fc.id).where(fc.stored_file_id == sf.id, fc.audit_id == audit.identifier).exists())
    where = _scope_filter(audit.scope)
    if where is not None:
        q = q.join(t.aips, replicas.aip_id == aips.id).where(where)
    if limit_files is not None:
        q = q.limit(limit_files)
    rows: list[Any] = []
    total = 0
    for row in conn.execute(q).all():
        if limit_bytes is not None and rows and total + row[2] > limit_bytes:
            break
        rows.append(row)
        total += row[2]
    refs: dict[int, ReplicaRef] = {}
    for chunk in _in_chunks(sorted({row[5] for row in rows})):
        refs.update((r[0], ReplicaRef(*r)) for r in conn.execute(
            select(replicas.id, replicas.location, aips.object_path, aips.identifier)
            .join(t.aips, replicas.aip_id == aips.id).where(replicas.id.in_(chunk))))
    return [Unit(uid, path, size, sha256, sha512, refs[rid]) for uid, path, size, sha256, sha512, rid in rows]


def start_or_resume(engine: Engine, scope: str, now: datetime, new_id: Callable[[], str]
                    ) -> tuple[AuditRow, bool]:
    """The unfinished audit of ``scope`` (resumed: True), or a new one."""
    audits = t.audits
    with engine.begin() as conn:
        # a new audit row lost in a crash is harmless: every batch committed after it would be lost
        # with it (the log is written in order), and the next run starts the audit afresh
        redoable_commit(conn)
        row = conn.execute(select(audits.c.id, audits.c.identifier, audits.c.scope)
                           .where(audits.c.scope == scope, audits.c.finished_at.is_(None))
                           .order_by(audits.c.started_at.desc()).limit(1)).first()
        if row is not None:
            return AuditRow(*row), True
        identifier = new_id()
        pk = conn.execute(insert(audits).values(identifier=identifier, scope=scope, started_at=now, files_checked=0,
                                                bytes_checked=0, failures=0).returning(audits.c.id)).scalar_one()
    return AuditRow(int(pk), identifier, scope), False


def _tasks(units: Sequence[Unit]) -> Iterator[list[Unit]]:
    """The units in order, cut into hashing tasks of at most TASK_FILES files and about TASK_BYTES."""
    task: list[Unit] = []
    size = 0
    for u in units:
        if task and (len(task) >= TASK_FILES or size + u.size > TASK_BYTES):
            yield task
            task, size = [], 0
        task.append(u)
        size += u.size
    if task:
        yield task


def _check_task(task: list[Unit], dirs: dict[int, ObjectDir], throttle: Throttle) -> list[Check]:
    return [check_unit(dirs[u.replica.id], u, throttle) for u in task]


def _open_dirs(units: Sequence[Unit], locations: dict[str, Any]) -> dict[int, ObjectDir]:
    """The object folder of every replica of ``units``, opened once: each file is then opened relative
    to it (20,000 small files: 8-13 % less time hashing than with full paths)."""
    dirs: dict[int, ObjectDir] = {}
    for r in {u.replica for u in units}:
        path = os.fspath(locations[r.location].object_dir(r.object_path))
        try:
            fd: int | None = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            fd = None  # a missing or unreadable folder: every file of it is reported, one by one
        dirs[r.id] = ObjectDir(path, fd)
    return dirs


def _hashed_ahead(hashed: Digests, units: Sequence[Unit], dirs: dict[int, ObjectDir], pool: ThreadPoolExecutor,
                  throttle: Throttle, ahead: deque[tuple[Future[list[Check]], list[Unit]]]
                  ) -> tuple[list[tuple[Check, Unit]], list[Unit]]:
    """Checks of the units that ``hashed`` (``oais.storage.hash_ahead``) holds a sha256 of, found at the
    exact path the unit names; a future in ``ahead`` for each file it is still hashing, or is asked to
    hash (``hashed.more``: the large files), read here after all if it ends without a digest; the
    other units (those without a sha256, the small files, and all when it cannot be asked), left to
    read."""
    ready: list[tuple[Check, Unit]] = []
    rest: list[Unit] = []
    unreported: dict[str, Unit] = {}
    for u in units:
        if u.sha256 is None:  # a unit catalogued before revision 0007 is checked by its sha512
            rest.append(u)
            continue
        key = f"{dirs[u.replica.id].path}/{u.path}"
        if (found := hashed.done.get(key)) is not None:
            ready.append((_compared(u, "sha256", u.sha256, *found), u))
        elif (pending := hashed.pending.get(key)) is not None:
            ahead.append((_when_hashed(pending, u, dirs, pool, throttle), [u]))
        elif hashed.more is not None and u.size >= hashed.more_from:
            unreported.setdefault(key, u)
        else:
            rest.append(u)
    if hashed.more is not None:  # the process hashes those too, in this order; ends when they are
        asked = hashed.more(list(unreported))
        ahead.extend((_when_hashed(asked[key], u, dirs, pool, throttle), [u]) for key, u in unreported.items())
    return ready, rest


def _when_hashed(pending: Future[Found | None], unit: Unit, dirs: dict[int, ObjectDir], pool: ThreadPoolExecutor,
                 throttle: Throttle) -> Future[list[Check]]:
    """The check of ``unit`` once the hashing process ends its file; read here if it found nothing."""
    out: Future[list[Check]] = Future()

    def ended(f: Future[Found | None]) -> None:
        if not out.set_running_or_notify_cancel():
            return  # the audit stopped early
        found = f.result()
        try:
            if found is not None:
                assert unit.sha256 is not None
                out.set_result([_compared(unit, "sha256", unit.sha256, *found)])
            else:
                pool.submit(_check_task, [unit], dirs, throttle).add_done_callback(lambda g: _pass_on(g, out))
        except RuntimeError as exc:  # the pool was shut down: the audit is ending, the error goes to it
            out.set_exception(exc)

    pending.add_done_callback(ended)
    return out


def _pass_on(source: Future[list[Check]], out: Future[list[Check]]) -> None:
    exc = source.exception()
    if exc is not None:
        out.set_exception(exc)
    else:
        out.set_result(source.result())


def _checked(pool: ThreadPoolExecutor, units: Sequence[Unit], locations: dict[str, Any], throttle: Throttle,
             wait: float | None, hashed: Digests | None = None) -> Generator[list[tuple[Check, Unit]] | None, None, None]:
    """The checks of ``units`` in their order, a task's worth at a time, hashed TASKS_AHEAD tasks ahead;
    with ``hashed`` (digests computed ahead by ``oais.storage.hash_ahead``), first the checks of the
    units it holds a digest of, then those of the files it was still hashing, then the others.

    Yields ``None`` when nothing more was ready within ``wait`` seconds (so that the caller may record
    what it holds); cancels what was not started when the caller stops early.
    """
    dirs = _open_dirs(units, locations)
    ahead: deque[tuple[Future[list[Check]], list[Unit]]] = deque()
    ready: list[tuple[Check, Unit]] = []
    if hashed is not None:
        ready, units = _hashed_ahead(hashed, units, dirs, pool, throttle, ahead)
    tasks = _tasks(units)

    def top_up() -> None:
        while len(ahead) < TASKS_AHEAD and (task := next(tasks, None)) is not None:
            ahead.append((pool.submit(_check_task, task, dirs, throttle), task))

    top_up()
    try:
        for i in range(0, len(ready), FLUSH_FILES):
            yield ready[i:i + FLUSH_FILES]
        while ahead:
            future, task = ahead[0]
            try:
                checks = future.result(timeout=wait)
            except TimeoutError:
                yield None
                continue
            ahead.popleft()
            top_up()
            yield list(zip(checks, task))
    finally:
        for future, _task in ahead:
            future.cancel()
        for future, _task in ahead:
            if not future.cancelled():  # running: its files are read through the folder's descriptor
                future.exception()
        for d in dirs.values():
            if d.fd is not None:
                os.close(d.fd)


def _last_ok(outcome: str) -> bool | None:
    return True if outcome == "pass" else (None if outcome == "error" else False)


def _record(engine: Engine, audit: AuditRow, batch: Sequence[tuple[Check, Unit]], now: datetime) -> None:
    """One transaction: the units' last check, their ``fixity_checks`` rows and the audit's counters.

    Its commit does not wait for the disk (:func:`oais.catalog.db.redoable_commit`): lost in a crash,
    the batch is checked again when the audit resumes, and the audit's closing (:func:`_finish`), a
    durable commit, makes every batch before it durable."""
    with engine.begin() as conn:
        redoable_commit(conn)
        _record_in(conn, audit, batch, now)


def _record_in(conn: Connection, audit: AuditRow, batch: Sequence[tuple[Check, Unit]], now: datetime) -> None:
    """The units' last check, their ``fixity_checks`` rows and the audit's counters, in ``conn``'s transaction.

    Set-based, a few statements per batch: the units are updated by outcome (``WHERE id IN``); a
    check that passed found exactly the size and digest the catalog holds, so its row is copied from
    ``stored_files`` by ``INSERT ... SELECT``; the other checks are inserted with ``executemany``.
    """
    if not batch:
        return
    units, checks, audits = t.stored_files, t.fixity_checks, t.audits
    by_last_ok: dict[bool | None, list[int]] = {}
    for c, _u in batch:
        by_last_ok.setdefault(_last_ok(c.outcome), []).append(c.unit_id)
    for last_ok, ids in by_last_ok.items():
        for where in _id_filters(units.c.id, ids):
            conn.execute(update(units).where(where).values(last_checked_at=now, last_ok=last_ok))
    for where in _id_filters(units.c.id, [c.unit_id for c, _u in batch if c.outcome == "pass"]):
        conn.execute(insert(checks).from_select(
            ["stored_file_id", "audit_id", "checked_at", "outcome", "sha256_found", "sha512_found", "size_found"],
            select(units.c.id, literal(audit.identifier, checks.c.audit_id.type),
                   literal(now, checks.c.checked_at.type), literal("pass", checks.c.outcome.type),
                   units.c.sha256, case((units.c.sha256.is_(None), units.c.sha512)), units.c.size)
            .where(where)))
    others = [{"stored_file_id": c.unit_id, "audit_id": audit.identifier, "checked_at": now,
               "outcome": c.outcome, "sha256_found": c.digest if c.algorithm == "sha256" else None,
               "sha512_found": c.digest if c.algorithm == "sha512" else None, "size_found": c.size,
               "detail": c.detail} for c, _u in batch if c.outcome != "pass"]
    if others:
        conn.execute(insert(checks), others)
    conn.execute(update(audits).where(audits.c.id == audit.id).values(
        files_checked=audits.c.files_checked + len(batch),
        bytes_checked=audits.c.bytes_checked + sum(u.size for _c, u in batch),
        failures=audits.c.failures + len(others)))


def run_audit(engine: Engine, locations: dict[str, Any], scope: str, *,
              clock: Callable[[], datetime], new_id: Callable[[], str], policy: AuditPolicy = AuditPolicy(),
              limit_files: int | None = None, limit_bytes: int | None = None,
              monotonic: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None,
              progress: Callable[[str, int, int], None] | None = None, workers: int = 2,
              ahead: HashAhead | None = None) -> AuditResult:
    """Audit (or resume auditing) ``scope`` in the catalog of ``engine``; ``limit_*`` cap this run
    (the scheduler's batches). The catalog is read and written with SQLAlchemy Core: the ORM is
    imported only when damage is found (to open incidents).

    ``ahead``: the process hashing the stored files since before this call (``oais audit`` starts it
    before importing the catalog's libraries); it is stopped once the units are known, and its sha256
    stands for a read of the file it names. The caller closes it."""
    audit, resumed = start_or_resume(engine, scope, clock(), new_id)
    result = AuditResult(audit.identifier, scope, resumed)
    with engine.connect() as conn:
        units = _pending(conn, audit, limit_files, limit_bytes, fresh=not resumed)
    hashed = ahead.digests(more=True) if ahead is not None else None
    total = sum(u.size for u in units)
    throttle = Throttle(policy.max_bytes_per_s, monotonic or time.monotonic, sleep or time.sleep)
    done = checked = 0
    bad: list[tuple[Check, Unit]] = []
    batch: list[tuple[Check, Unit]] = []
    deadline = time.monotonic() + FLUSH_SECONDS

    def flush() -> None:
        nonlocal batch, deadline, done, checked
        if batch:
            _record(engine, audit, batch, clock())
            done += sum(u.size for _c, u in batch)
            checked += len(batch)
            if progress:
                progress(f"audit {checked}/{len(units)} files", done, total)
        batch, deadline = [], time.monotonic() + FLUSH_SECONDS

    whole = limit_files is None and limit_bytes is None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        checks = _checked(pool, units, locations, throttle, FLUSH_SECONDS / 5, hashed)
        try:
            for ready in checks:
                if ready:
                    batch.extend(ready)
                    bad.extend(r for r in ready if r[0].outcome != "pass")
                if len(batch) >= FLUSH_FILES or (batch and time.monotonic() >= deadline):
                    flush()
            if not whole:
                flush()
        finally:
            checks.close()  # on an error: the tasks not started are cancelled, not run
    _flag_failures(engine, clock(), result, bad)
    if whole:
        # the last results are recorded in the transaction that closes the audit: one commit (and
        # one flush of the catalog to disk) fewer after the last file is read
        _finish(engine, audit, clock(), new_id, result, tail=batch)
        if progress and batch:
            progress(f"audit {len(units)}/{len(units)} files", total, total)
    else:
        with engine.connect() as conn:
            finished = not _pending(conn, audit, 1)
        if finished:
            _finish(engine, audit, clock(), new_id, result)
        else:  # a batch of a longer audit: report what this run checked
            result.files, result.bytes = len(units), total
            result.passed = len(units) - len(bad)
            result.failed = [{"aip_id": u.replica.aip_id, "location": u.replica.location, "path": u.path,
                              "outcome": c.outcome, "detail": c.detail} for c, u in bad]
    return result


def _id_filters(column: Any, ids: Iterable[int]) -> Iterator[Any]:
    """Conditions on ``column`` that together select exactly ``ids``: ``BETWEEN`` for each run of at
    least :data:`RUN_MIN` consecutive ids, ``IN (...)`` lists of at most :data:`IN_CHUNK` for the others.

    Units come sorted by their last check and id, and the stored files of one replica have
    consecutive ids (inserted together), so a batch is mostly a few runs: a statement with two
    parameters each, instead of thousands of expanded ``IN`` parameters, each rendered into the
    SQL text by SQLAlchemy while holding the interpreter lock the hashing threads need.
    """
    ordered = sorted(set(ids))
    singles: list[int] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        if j - i + 1 >= RUN_MIN:
            yield column.between(ordered[i], ordered[j])
        else:
            singles.extend(ordered[i:j + 1])
        i = j + 1
    for chunk in _in_chunks(singles):
        yield column.in_(chunk)


def _in_chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    chunk: list[int] = []
    for i in ids:
        chunk.append(i)
        if len(chunk) >= IN_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _flag_failures(engine: Engine, now: datetime, result: AuditResult, bad: Sequence[tuple[Check, Unit]]) -> None:
    """Damage found by this run is acted on now (replica state, incident), not at the end of the cycle.

    Through the ORM (imported here: an audit that finds nothing wrong never loads it), as incidents are."""
    if not bad:
        return
    from sqlalchemy.orm import Session, joinedload

    from oais.catalog import models as m
    from oais.services.incidents import open_incident, pending_alerts

    by_replica: dict[int, list[Check]] = {}
    for check, unit in bad:
        by_replica.setdefault(unit.replica.id, []).append(check)
    with Session(engine) as s, s.begin():
        replicas: dict[int, m.Replica] = {}
        for chunk in _in_chunks(by_replica):
            replicas.update((r.id, r) for r in s.scalars(select(m.Replica).options(joinedload(m.Replica.aip))
                                                         .where(m.Replica.id.in_(chunk))))
        for replica_id, checks in by_replica.items():
            replica = replicas[replica_id]
            errors = all(c.outcome == "error" for c in checks)
            replica.state = str(ReplicaState.UNKNOWN if errors else ReplicaState.CORRUPT)
            replica.last_verified_ok = None if errors else False
            open_incident(s, now, severity="major", kind="fixity", aip=replica.aip, location=replica.location,
                          summary=f"{len(checks)} file(s) of {replica.aip.identifier} in {replica.location} "
                                  f"failed the fixity audit: " + "; ".join(c.detail or c.outcome for c in checks[:5]))
        result.alerts.extend(pending_alerts(s))


@dataclass
class _ReplicaSummary:
    """What one audit found in one AIP replica."""

    files: int = 0
    bytes: int = 0
    by_sha256: int = 0  # files checked by sha256 (the others by sha512)
    bad: list[tuple[str, str, str | None]] = field(default_factory=list)  # (path, outcome, detail)


class _AuditedReplica(NamedTuple):
    """A replica row, with its AIP's row id and identifier."""

    id: int
    location: str
    state: str
    aip_pk: int
    aip_id: str


def _summarize(conn: Connection, audit: AuditRow, result: AuditResult) -> list[tuple[_AuditedReplica, _ReplicaSummary]]:
    """Per replica: files, bytes, algorithms and failures of every check recorded under the audit."""
    fc, sf = t.fixity_checks.c, t.stored_files.c
    uses_sha256 = case((fc.sha256_found.is_not(None), 1), (fc.sha512_found.is_not(None), 0),
                       (sf.sha256.is_not(None), 1), else_=0)
    summary: dict[int, _ReplicaSummary] = {}
    for replica_id, files, size, by_sha256 in conn.execute(
            select(sf.replica_id, func.count(fc.id), func.coalesce(func.sum(sf.size), 0), func.sum(uses_sha256))
            .select_from(t.fixity_checks).join(t.stored_files, fc.stored_file_id == sf.id).where(fc.audit_id == audit.identifier)
            .group_by(sf.replica_id).order_by(sf.replica_id)):
        summary[replica_id] = _ReplicaSummary(int(files), int(size), int(by_sha256 or 0))
    for replica_id, path, outcome, detail in conn.execute(
            select(sf.replica_id, sf.path, fc.outcome, fc.detail)
            .select_from(t.fixity_checks).join(t.stored_files, fc.stored_file_id == sf.id)
            .where(fc.audit_id == audit.identifier, fc.outcome != "pass").order_by(fc.id)):
        summary[replica_id].bad.append((path, outcome, detail))
    replicas: dict[int, _AuditedReplica] = {}
    rc, aips = t.replicas.c, t.aips.c
    for chunk in _in_chunks(summary):
        replicas.update((row[0], _AuditedReplica(*row)) for row in conn.execute(
            select(rc.id, rc.location, rc.state, aips.id, aips.identifier)
            .join(t.aips, rc.aip_id == aips.id).where(rc.id.in_(chunk))))
    out = []
    for replica_id, r in summary.items():
        replica = replicas[replica_id]
        result.files += r.files
        result.bytes += r.bytes
        result.passed += r.files - len(r.bad)
        result.failed.extend({"aip_id": replica.aip_id, "location": replica.location, "path": path,
                              "outcome": outcome, "detail": detail} for path, outcome, detail in r.bad)
        out.append((replica, r))
    return out


def _algorithms(r: _ReplicaSummary) -> str:
    """The digest algorithms an audit used for one replica, in words."""
    if r.by_sha256 == r.files:
        return "sha256"
    if not r.by_sha256:
        return "sha512"
    return f"sha256 (sha512 for the {r.files - r.by_sha256} catalogued without a sha256)"


def _finish(engine: Engine, audit: AuditRow, now: datetime, new_id: Callable[[], str], result: AuditResult,
            tail: Sequence[tuple[Check, Unit]] = ()) -> None:
    """In one transaction: the checks of ``tail`` not recorded yet, one PREMIS fixity-check event per
    AIP replica, replica states; the audit is closed. (Incidents were opened when the damage was
    found: :func:`_flag_failures`.)"""
    agent = premis.archive_agent()
    exe = premis.LinkedAgent(agent.identifier, premis.AgentRole.EXECUTING_PROGRAM)
    agent_ids: dict[str, int] = {}
    with engine.begin() as conn:
        _record_in(conn, audit, tail, now)
        for replica, r in _summarize(conn, audit, result):
            errors = sum(1 for _p, o, _d in r.bad if o == "error")
            outcome = premis.Outcome.FAILURE if r.bad else premis.Outcome.SUCCESS
            append_event(conn, premis.Event(
                identifier=new_id(), type=premis.EventType.FIXITY_CHECK, at=now, outcome=outcome,
                detail=f"fixity audit {audit.identifier} ({audit.scope}) of the copy in {replica.location!r}: "
                       f"{_algorithms(r)} and size of every file checked against the catalog",
                outcome_detail=(f"{r.files - len(r.bad)} of {r.files} files intact"
                                + ("; " + "; ".join(d or o for _p, o, d in r.bad[:20]) if r.bad else "")),
                agents=(exe,), objects=(replica.aip_id,)), {agent.identifier: agent}, aip_id=replica.aip_pk,
                agent_ids=agent_ids)
            values: dict[str, Any] = {"last_verified_at": now}
            if r.bad:
                values["last_verified_ok"] = None if errors == len(r.bad) else False
            else:
                values["last_verified_ok"] = True
                if replica.state != str(ReplicaState.MISSING):
                    values["state"] = str(ReplicaState.OK)
            conn.execute(update(t.replicas).where(t.replicas.c.id == replica.id).values(**values))
            result.replicas.append({"aip_id": replica.aip_id, "location": replica.location,
                                    "outcome": str(outcome), "files": r.files, "failed": len(r.bad)})
        conn.execute(update(t.audits).where(t.audits.c.id == audit.id).values(finished_at=now))


def coverage(session: Connection | Session, now: datetime, policy: AuditPolicy) -> dict[str, Any]:
    """How much of the holding was verified within the cycle (for reports and the scheduler)."""
    sf = t.stored_files.c
    total = session.scalar(select(func.count(sf.id))) or 0
    recent = session.scalar(select(func.count(sf.id)).where(
        sf.last_checked_at >= now - policy.cycle, sf.last_ok.is_(True))) or 0
    oldest = session.scalar(select(func.min(sf.last_checked_at)))
    return {"files": total, "verified_within_cycle": recent, "oldest_check": oldest}


def rolling_quota(total_files: int, interval: timedelta, cycle: timedelta, margin: float = 1.5) -> int:
    """Files one scheduled run must check so that the whole holding is covered within the cycle."""
    runs = max(int(cycle / interval), 1)
    return max(int(total_files * margin / runs) + 1, 1)


__all__ = ["AuditPolicy", "AuditResult", "Check", "ReplicaRef", "Throttle", "Unit", "check_unit", "coverage",
           "hash_file", "rolling_quota", "run_audit"]
