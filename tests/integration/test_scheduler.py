"""The scheduler's jobs on real archives: rolling fixity coverage under a controlled clock, the read-rate
cap (fake and real time), the catalog lease (SQLite, PostgreSQL, two real processes) and the report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from oais.bootstrap import new_urn, utc_now
from oais.catalog import models as m
from oais.catalog.db import make_engine, session_factory, upgrade
from oais.domain.package import Disposition
from oais.scheduler import acquire_lease, audit_tick, release_lease, report_tick
from oais.services.audit import AuditPolicy, run_audit
from oais.services.ingest import IngestRequest, ingest
from tests.conftest import REPO

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


class Clock:
    """A settable wall clock (what ``clock=`` receives)."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


class FakeTime:
    """A monotonic clock that only moves when slept on (the Throttle's ``monotonic``/``sleep``)."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def monotonic(self) -> float:
        with self.lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.t += seconds


def _ingest(archive, tmp: Path, fits: list[Path], n: int, clock, tag: str = "d") -> list[str]:  # type: ignore[no-untyped-def]
    ids = []
    for i in range(n):
        src = tmp / f"{tag}{i}"
        src.mkdir(parents=True)
        for f in fits:
            shutil.copyfile(f, src / f.name)
        (src / "README.txt").write_text(f"delivery {tag}{i}\n", encoding="utf-8")
        r = ingest(IngestRequest(src, "eit-195", "SOHO/EIT team"), archive.ingest_context(clock=clock))
        assert r.disposition is Disposition.ACCEPTED, r.issues
        ids.append(r.aip_id)
    return ids


def _units(archive) -> dict[int, tuple[str, datetime, bool | None]]:  # type: ignore[no-untyped-def]
    with archive.sessions() as s:
        rows = s.execute(select(m.StoredFile.id, m.Replica.location, m.StoredFile.last_checked_at,
                                m.StoredFile.last_ok).join(m.Replica)).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


# -- rolling coverage ----------------------------------------------------------------------------


def test_rolling_audit_covers_every_file_within_the_cycle(archive, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          astropy_fits: list[Path]) -> None:
    clock = Clock(T0)
    _ingest(archive, tmp_path, astropy_fits, 10, clock)
    interval = timedelta(hours=archive.settings.audit.interval_hours)
    cycle = archive.audit_policy().cycle
    assert (interval, cycle) == (timedelta(hours=24), timedelta(days=90))
    assert {archive.audit_policy(loc.name).cycle for loc in archive.settings.locations} == {cycle}
    start = _units(archive)
    assert len(start) >= 250 and {loc for loc, _, _ in start.values()} == {"replica-a", "replica-b"}

    fake = FakeTime()
    ticks = int(2 * cycle / interval)
    late: set[int] = set()
    for k in range(1, ticks + 1):
        clock.t = T0 + k * interval
        if k == 100:  # a delivery arrives mid-way: the holding (and the quota) grows
            _ingest(archive, tmp_path, astropy_fits, 1, clock, tag="late")
            late = set(_units(archive)) - set(start)
        before = _units(archive)
        # Just before a tick is when the oldest verification is oldest: it must be under the cycle.
        assert all(ok is True for _, _, ok in before.values())
        oldest = min(t for _, t, _ in before.values())
        assert clock.t - oldest < cycle, f"day {k}: a file was last verified {clock.t - oldest} ago"
        if k * interval >= cycle:  # after the first cycle, by the audit itself, not by the ingest
            with archive.sessions() as s:
                last_pass = dict(s.execute(select(m.FixityCheck.stored_file_id, func.max(m.FixityCheck.checked_at))
                                           .where(m.FixityCheck.outcome == "pass")
                                           .group_by(m.FixityCheck.stored_file_id)).all())
            for u in set(before) - late:
                assert u in last_pass and clock.t - last_pass[u] < cycle, f"day {k}: unit {u} not re-read"

        out = audit_tick(archive, clock, new_urn, monotonic=fake.monotonic, sleep=fake.sleep)
        after = _units(archive)
        with archive.sessions() as s:
            checked = set(s.scalars(select(m.FixityCheck.stored_file_id).where(m.FixityCheck.checked_at == clock.t)))
        assert {o["location"] for o in out} == {"replica-a", "replica-b"} and all(o["intact"] for o in out)
        for o in out:
            loc = o["location"]
            mine = {u for u in checked if before[u][0] == loc}
            with archive.sessions() as s:  # read earlier in this sweep (the same rolling audit)
                swept = set(s.scalars(select(m.FixityCheck.stored_file_id).where(
                    m.FixityCheck.audit_id == o["audit_id"], m.FixityCheck.checked_at < clock.t)))
            rest = {u for u, (l, _, _) in before.items() if l == loc} - mine - swept
            assert 1 <= len(mine) <= o["quota"], (k, loc, len(mine))
            # oldest-verified first: nothing left for this sweep was verified before anything checked now
            assert not rest or max(before[u][1] for u in mine) <= min(before[u][1] for u in rest), (k, loc)
            assert all(after[u][1] == clock.t and after[u][2] is True for u in mine)
            if len(mine) < o["quota"]:  # only the last batch of a sweep is short, and it closes the sweep
                with archive.sessions() as s:
                    assert s.scalar(select(func.count(m.Audit.id)).where(
                        m.Audit.scope == f"due:{loc}", m.Audit.finished_at.is_(None))) == 0, (k, loc)
    assert fake.sleeps == []  # no read cap configured: never throttled
    final = _units(archive)  # until the next tick would run
    assert T0 + (ticks + 1) * interval - min(t for _, t, _ in final.values()) < cycle

    with archive.sessions() as s:
        sweeps = s.scalars(select(m.Audit).where(m.Audit.finished_at.is_not(None))).all()
        assert {a.scope for a in sweeps} == {"due:replica-a", "due:replica-b"}
        assert len(sweeps) >= 4  # each location swept completely at least twice in 180 days
        for a in sweeps:  # a finished sweep read every file of its location exactly once
            loc = a.scope.removeprefix("due:")
            ids = s.scalars(select(m.FixityCheck.stored_file_id).where(m.FixityCheck.audit_id == a.identifier)).all()
            expected = {u for u, (l, _, _) in final.items() if l == loc}
            if a.finished_at < T0 + 100 * interval:  # finished before the late delivery arrived
                expected -= late
            assert len(ids) == len(set(ids)) == a.files_checked and set(ids) == expected, a.scope
            assert a.finished_at - a.started_at < cycle


# -- read-rate cap ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory: pytest.TempPathFactory, astropy_fits: list[Path]) -> Iterator[object]:
    from oais.bootstrap import init_archive, open_archive
    from oais.config import load_settings

    root = tmp_path_factory.mktemp("throttle")
    init_archive(root / "home")
    a = open_archive(load_settings(root / "home"))
    _ingest(a, root, astropy_fits, 4, utc_now)
    yield a
    a.close()


def _stored_bytes(archive) -> int:  # type: ignore[no-untyped-def]
    with archive.sessions() as s:
        return s.scalar(select(func.sum(m.StoredFile.size))) or 0


def test_read_rate_cap_with_a_fake_clock(small_archive) -> None:  # type: ignore[no-untyped-def]
    cap = 2e6
    total = _stored_bytes(small_archive)
    fake = FakeTime()
    r = run_audit(small_archive.engine, small_archive.location_map(), "all", clock=utc_now, new_id=new_urn,
                  policy=AuditPolicy(max_bytes_per_s=cap), monotonic=fake.monotonic, sleep=fake.sleep)
    assert r.intact and r.bytes == total > 2_000_000
    assert fake.sleeps, "the throttle never slept"
    rate = total / fake.t
    assert rate <= cap * 1.001, f"{rate:.0f} B/s over the {cap:.0f} B/s cap"
    assert rate >= cap * 0.5, f"{rate:.0f} B/s: throttled far below the cap"

    free = FakeTime()
    r = run_audit(small_archive.engine, small_archive.location_map(), "all", clock=utc_now, new_id=new_urn,
                  policy=AuditPolicy(max_bytes_per_s=None), monotonic=free.monotonic, sleep=free.sleep)
    assert r.intact and r.bytes == total and free.sleeps == [] and free.t == 0.0


def test_read_rate_cap_in_real_time(small_archive) -> None:  # type: ignore[no-untyped-def]
    cap = 1e6
    total = _stored_bytes(small_archive)
    t = time.monotonic()
    r = run_audit(small_archive.engine, small_archive.location_map(), "all", clock=utc_now, new_id=new_urn,
                  policy=AuditPolicy(max_bytes_per_s=cap))
    elapsed = time.monotonic() - t
    assert r.intact and r.bytes == total
    assert elapsed >= total / cap - 0.05, f"{total} bytes in {elapsed:.2f} s: over {cap:.0f} B/s"


# -- lease -----------------------------------------------------------------------------------------


def _lease_contract(url: str) -> None:
    engines = [make_engine(url), make_engine(url)]
    try:
        a, b = (session_factory(e) for e in engines)
        ttl = timedelta(minutes=5)
        assert acquire_lease(a, "host-a:1", T0, ttl)
        assert not acquire_lease(b, "host-b:2", T0 + timedelta(minutes=1), ttl)
        assert acquire_lease(a, "host-a:1", T0 + timedelta(minutes=2), ttl)  # renewed: now until T0+7
        assert not acquire_lease(b, "host-b:2", T0 + timedelta(minutes=6), ttl)
        assert acquire_lease(b, "host-b:2", T0 + timedelta(minutes=7), ttl)  # expired: taken over
        assert not acquire_lease(a, "host-a:1", T0 + timedelta(minutes=8), ttl)
        release_lease(a, "host-a:1")  # not the holder: no effect
        assert not acquire_lease(a, "host-a:1", T0 + timedelta(minutes=9), ttl)
        release_lease(b, "host-b:2")
        assert acquire_lease(a, "host-a:1", T0 + timedelta(minutes=9), ttl)  # released: free at once
        assert not acquire_lease(b, "host-b:2", T0 + timedelta(minutes=10), ttl)
        assert acquire_lease(b, "host-b:2", T0, ttl, name="other")  # leases are per name
        with a() as s:
            rows = {(x.name, x.holder) for x in s.scalars(select(m.SchedulerLease))}
        assert rows == {("scheduler", "host-a:1"), ("other", "host-b:2")}
    finally:
        for e in engines:
            e.dispose()


def test_lease_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    _lease_contract(url)


@pytest.mark.postgres
def test_lease_on_postgresql(pg_url: str) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    engine.dispose()
    _lease_contract(pg_url)


HOLDER = r"""
import json, random, sys, time
from datetime import datetime, timedelta, timezone
from oais.catalog.db import make_engine, session_factory
from oais.scheduler import acquire_lease, release_lease

url, holder, start_at, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
sessions = session_factory(make_engine(url))
ttl = timedelta(milliseconds=150)
now = lambda: datetime.now(timezone.utc)
rng = random.Random(holder)
windows, attempts = [], 0
while time.time() < start_at:
    time.sleep(0.001)
end = start_at + seconds
while time.time() < end:
    before = now()
    attempts += 1
    if acquire_lease(sessions, holder, before, ttl):
        # held from when the lease was written until the expiry it wrote
        windows.append([now().timestamp(), (before + ttl).timestamp()])
        time.sleep(rng.uniform(0, 0.03))
        if rng.random() < 0.3:
            t = now().timestamp()  # from here on this holder no longer counts on the lease
            windows = [[s, min(e, t)] for s, e in windows]
            release_lease(sessions, holder)
            time.sleep(rng.uniform(0.005, 0.03))  # give the other process its chance
    else:
        time.sleep(rng.uniform(0, 0.01))
print(json.dumps({"holder": holder, "attempts": attempts, "windows": windows}))
"""


def _two_processes(url: str) -> None:
    start_at = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", HOLDER, url, f"proc-{i}", str(start_at), "1.0"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outs.append(json.loads(out))
    held = [[(s, e) for s, e in o["windows"] if s < e] for o in outs]
    assert all(held), f"a process never held the lease: {[(o['attempts'], len(o['windows'])) for o in outs]}"
    for s1, e1 in held[0]:
        for s2, e2 in held[1]:
            assert e1 <= s2 or e2 <= s1, f"both held the lease: [{s1}, {e1}) and [{s2}, {e2})"


def test_two_processes_never_hold_the_lease_together_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    _two_processes(url)


@pytest.mark.postgres
def test_two_processes_never_hold_the_lease_together_postgresql(pg_url: str) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    engine.dispose()
    _two_processes(pg_url)


# -- report ----------------------------------------------------------------------------------------


def test_report_tick_writes_holdings_and_coverage(archive, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                  astropy_fits: list[Path]) -> None:
    clock = Clock(T0)
    ids = _ingest(archive, tmp_path, astropy_fits, 2, clock)
    with archive.sessions() as s:
        files = s.scalar(select(func.count(m.File.id)))
        size = s.scalar(select(func.sum(m.File.size)))
        stored = s.scalar(select(func.count(m.StoredFile.id)))

    def report(at: datetime) -> dict:  # type: ignore[type-arg]
        path = Path(report_tick(archive, lambda: at))
        assert path.parent == archive.settings.home / "reports" and path.name == f"holdings-{at:%Y%m%d}.json"
        assert not list(path.parent.glob("*.tmp"))
        return json.loads(path.read_text("utf-8"))

    r = report(T0 + timedelta(days=1))
    assert (r["aips"], r["files"], r["bytes"]) == (2, files, size) and r["generated"] == "2030-01-02T00:00:00Z"
    assert r["replicas_by_state"] == {"ok": 4} and r["open_incidents"] == 0
    assert r["fixity"]["files"] == r["fixity"]["verified_within_cycle"] == stored
    assert datetime.fromisoformat(r["fixity"]["oldest_check"]) == T0

    later = T0 + timedelta(days=91)  # nothing verified within the 90-day cycle any more
    r = report(later)
    assert r["fixity"]["verified_within_cycle"] == 0 and r["fixity"]["files"] == stored

    # damage one copy, audit: the report shows the damaged replica, the incident and the lost coverage
    assert len(ids) == 2
    victim = sorted((archive.settings.home / "replica-b").rglob("*.fits"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    victim.write_bytes(bytes(data))
    clock.t = later
    res = run_audit(archive.engine, archive.location_map(), "all", clock=clock, new_id=new_urn)
    assert not res.intact and len(res.failed) == 1
    r = report(later)
    assert r["replicas_by_state"] == {"ok": 3, "corrupt": 1} and r["open_incidents"] == 1
    assert r["fixity"]["verified_within_cycle"] == stored - 1
    assert datetime.fromisoformat(r["fixity"]["oldest_check"]) == later
