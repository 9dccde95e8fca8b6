"""A fixity audit killed part-way (a real SIGKILL of the ``oais audit`` process) is resumed exactly:
no file skipped, none counted twice, one PREMIS fixity-check event per AIP replica."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from oais.catalog import models as m
from oais.catalog.db import make_engine, session_factory
from oais.domain.package import Disposition
from oais.domain.premis import EventType
from oais.services.ingest import IngestRequest, ingest
from tests.conftest import REPO


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("OAIS_HOME", "OAIS_CATALOG_URL")}


def _build(home: Path, tmp: Path, fits: list[Path], n: int) -> None:
    from oais.bootstrap import init_archive, open_archive
    from oais.config import load_settings

    init_archive(home)
    archive = open_archive(load_settings(home))
    try:
        for i in range(n):
            src = tmp / f"delivery-{i}"
            src.mkdir()
            for f in fits:
                shutil.copyfile(f, src / f.name)
            (src / "README.txt").write_text(f"delivery {i}\n", encoding="utf-8")
            r = ingest(IngestRequest(src, "eit-195", "SOHO/EIT team"), archive.ingest_context())
            assert r.disposition is Disposition.ACCEPTED, r.issues
    finally:
        archive.close()


def _set_rate(home: Path, mb_per_s: float) -> None:
    cfg = home / "oais.toml"
    lines = [f"max_mb_per_s = {mb_per_s}" if line.startswith("max_mb_per_s") else line
             for line in cfg.read_text("utf-8").splitlines()]
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_killed_audit_resumes_exactly(tmp_path: Path, astropy_fits: list[Path]) -> None:
    home = tmp_path / "home"
    _build(home, tmp_path, astropy_fits, 10)
    engine = make_engine(f"sqlite:///{home / 'catalog.sqlite'}")
    sessions = session_factory(engine)
    try:
        with sessions() as s:
            total = s.scalar(select(func.count(m.StoredFile.id)))
            total_bytes = s.scalar(select(func.sum(m.StoredFile.size)))
            replicas = s.execute(select(m.Replica.id, m.Replica.aip_id, m.Replica.location)).all()
        assert total >= 250 and len(replicas) == 20

        # about 6.5 MB at 2 MB/s: several seconds, committed in chunks of 64 files
        _set_rate(home, 2)
        proc = subprocess.Popen([sys.executable, "-m", "oais.cli", "audit", "--all", "--home", str(home), "--json"],
                                cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        audit_id, done = None, 0
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                assert proc.poll() is None, f"the audit ended before it could be killed: {proc.communicate()}"
                with sessions() as s:
                    audit = s.scalar(select(m.Audit).where(m.Audit.finished_at.is_(None)))
                    if audit is not None:
                        audit_id = audit.identifier
                        done = s.scalar(select(func.count(m.FixityCheck.id))
                                        .where(m.FixityCheck.audit_id == audit_id)) or 0
                if 0 < done < total:
                    break
                time.sleep(0.02)
            else:
                raise AssertionError("no progress seen in 60 s")
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            out, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL and out == b""

        with sessions() as s:  # what the killed run left: some files checked, the audit open
            before_kill = dict(s.execute(select(m.FixityCheck.id, m.FixityCheck.stored_file_id)
                                         .where(m.FixityCheck.audit_id == audit_id)).all())
            audit = s.scalar(select(m.Audit).where(m.Audit.identifier == audit_id))
            assert audit is not None and audit.finished_at is None
            assert 0 < len(before_kill) == audit.files_checked < total

        _set_rate(home, 0)
        r = subprocess.run([sys.executable, "-m", "oais.cli", "audit", "--all", "--home", str(home), "--json"],
                           cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        result = json.loads(r.stdout)
        assert result["resumed"] is True and result["audit_id"] == audit_id and result["scope"] == "all"
        assert result["files"] == result["passed"] == total and result["bytes"] == total_bytes
        assert result["intact"] is True and result["failed"] == []

        with sessions() as s:
            audits = s.scalars(select(m.Audit)).all()
            assert [a.identifier for a in audits] == [audit_id]  # resumed, not restarted
            a = audits[0]
            assert a.finished_at is not None and a.started_at <= a.finished_at
            assert (a.files_checked, a.bytes_checked, a.failures) == (total, total_bytes, 0)
            per_file = dict(s.execute(select(m.FixityCheck.stored_file_id, func.count(m.FixityCheck.id))
                                      .where(m.FixityCheck.audit_id == audit_id)
                                      .group_by(m.FixityCheck.stored_file_id)).all())
            all_units = set(s.scalars(select(m.StoredFile.id)))
            assert set(per_file) == all_units, "a stored file was skipped"
            assert set(per_file.values()) == {1}, "a stored file was checked twice"
            # the checks made before the kill were kept, not redone
            kept = dict(s.execute(select(m.FixityCheck.id, m.FixityCheck.stored_file_id)
                                  .where(m.FixityCheck.id.in_(before_kill))).all())
            assert kept == before_kill
            assert s.scalar(select(func.count(m.FixityCheck.id)).where(m.FixityCheck.outcome != "pass")) == 0

            events = s.execute(select(m.Event.aip_id, m.Event.detail, m.Event.outcome)
                               .where(m.Event.type == str(EventType.FIXITY_CHECK),
                                      m.Event.detail.contains(audit_id))).all()
            assert len(events) == len(replicas)
            for _rid, aip_id, location in replicas:
                mine = [e for e in events if e.aip_id == aip_id and f"in {location!r}" in e.detail]
                assert len(mine) == 1, (aip_id, location, mine)
                assert mine[0].outcome == "suc"
            states = s.execute(select(m.Replica.state, m.Replica.last_verified_ok)).all()
            assert set(states) == {("ok", True)}
    finally:
        engine.dispose()
