"""Virus check (``oais.formats.virus``) with the real ClamAV and a signature database of our own.

No signature is downloaded: each test writes, into ``tmp_path``, a database matching the EICAR test
file, which is itself assembled at run time from two halves, so that no scanner flags this
repository. Without clamscan the tests skip with the reason printed (they fail under CI=true).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oais.domain.issues import IssueCode, Severity
from oais.formats.virus import SOCKET_ENV, scan
from tests.conftest import unavailable

SIGNATURE = "OAIS.Test.EICAR"


def eicar() -> bytes:
    first, second = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$", "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    return (first + second).encode("ascii")


@pytest.fixture(autouse=True)
def no_clamd_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SOCKET_ENV, raising=False)
    monkeypatch.delenv("OAIS_CLAMAV_DATABASE", raising=False)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A ClamAV database dir with one MD5 signature (.hdb: md5:size:name) for the EICAR file."""
    if shutil.which("clamscan") is None:
        unavailable("clamscan is not on PATH (Debian package clamav)")
    db = tmp_path / "clamav-db"
    db.mkdir()
    data = eicar()
    (db / "oais-test.hdb").write_text(f"{hashlib.md5(data).hexdigest()}:{len(data)}:{SIGNATURE}\n")
    return db


@pytest.fixture
def delivery(tmp_path: Path) -> dict[Path, str]:
    import astropy

    root = tmp_path / "delivery"
    root.mkdir()
    fits = root / "test0.fits"
    shutil.copyfile(Path(astropy.__file__).parent / "io/fits/tests/data/test0.fits", fits)
    infected = root / "odd: name.com"
    infected.write_bytes(eicar())
    return {fits: "hst/test0.fits", infected: "tools/odd: name.com"}


def test_VIR_E001_eicar_detected(database: Path, delivery: dict[Path, str]) -> None:
    start = time.perf_counter()
    rep = scan(list(delivery), delivery, database=database)
    print(f"clamscan with a one-signature database: {time.perf_counter() - start:.3f} s")
    assert [(str(i.code), i.path) for i in rep.issues] == [("VIR-E001", "tools/odd: name.com")], rep.issues
    assert rep.issues[0].severity is Severity.ERROR and SIGNATURE in rep.issues[0].message
    assert rep.engine is not None and rep.engine.startswith("ClamAV ")
    assert rep.signatures == f"1 signatures from {database}" and rep.scanner == "clamscan"


def test_plain_and_odd_names_each_get_their_own_verdict(database: Path, tmp_path: Path) -> None:
    """Plain paths are listed as they are, odd ones (newline, ": ", non-ASCII) through links: every
    verdict still lands on its own file, whichever way it was listed."""
    root = tmp_path / "mixed"
    root.mkdir()
    files = {root / "plain.com": eicar(), root / "line\nbreak.txt": b"clean", root / "caf\u00e9.com": eicar(),
             root / "a: OK": b"clean too", root / "clean.txt": b"nothing here"}
    for path, data in files.items():
        path.write_bytes(data)
    rep = scan(list(files), {p: p.name for p in files}, database=database)
    assert sorted((str(i.code), i.path) for i in rep.issues) == [
        ("VIR-E001", "caf\u00e9.com"), ("VIR-E001", "plain.com")], rep.issues


def test_clean_fits_passes(database: Path, delivery: dict[Path, str]) -> None:
    clean = [p for p in delivery if p.suffix == ".fits"]
    rep = scan(clean, delivery, database=database)
    assert rep.issues == [] and rep.engine


def test_VIR_E002_unreadable_file_and_bad_database(database: Path, delivery: dict[Path, str],
                                                      tmp_path: Path) -> None:
    missing = tmp_path / "gone.fits"
    rep = scan([*delivery, missing], {**delivery, missing: "gone.fits"}, database=database)
    assert {(str(i.code), i.path) for i in rep.issues} == {("VIR-E002", "gone.fits"),
                                                          ("VIR-E001", "tools/odd: name.com")}
    broken = tmp_path / "broken-db"
    broken.mkdir()
    (broken / "broken.hdb").write_text("this is not a signature\n")
    rep = scan(list(delivery), delivery, database=broken)
    assert [str(i.code) for i in rep.issues] == ["VIR-E002"] and "broken.hdb" in rep.issues[0].message


def test_VIR_W001_clamscan_without_any_database(database: Path, delivery: dict[Path, str],
                                                tmp_path: Path) -> None:
    empty = tmp_path / "empty-db"  # what an install without freshclam looks like
    empty.mkdir()
    rep = scan(list(delivery), delivery, database=empty)
    assert [str(i.code) for i in rep.issues] == ["VIR-W001"] and "freshclam" in rep.issues[0].message


def test_VIR_W001_scanner_missing(delivery: dict[Path, str], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    rep = scan(list(delivery), delivery)
    assert [(str(i.code), i.severity) for i in rep.issues] == [("VIR-W001", Severity.WARNING)]
    assert rep.engine is None and rep.signatures is None


# ---------------------------------------------------------------- clamd (Debian clamav-daemon, installed by make)


@pytest.fixture
def clamd_socket(database: Path) -> Iterator[str]:
    exe = shutil.which("clamd") or ("/usr/sbin/clamd" if Path("/usr/sbin/clamd").exists() else None)
    if exe is None:
        unavailable("clamd is not installed (Debian package clamav-daemon)")
    home = Path(tempfile.mkdtemp(prefix="clamd-"))  # short: a Unix socket path has at most 107 bytes
    sock = home / "clamd.sock"
    conf = home / "clamd.conf"
    conf.write_text(f"LocalSocket {sock}\nDatabaseDirectory {database}\nForeground yes\n"
                    f"TemporaryDirectory {home}\nPidFile {home / 'clamd.pid'}\n")
    proc = subprocess.Popen([exe, f"--config-file={conf}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not sock.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not sock.exists():
            pytest.fail(f"clamd did not start: {proc.stderr.read().decode() if proc.poll() is not None else ''}")
        yield str(sock)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def test_clamd_socket_file_descriptor_passing(clamd_socket: str, delivery: dict[Path, str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SOCKET_ENV, clamd_socket)
    rep = scan(list(delivery), delivery)
    assert [(str(i.code), i.path) for i in rep.issues] == [("VIR-E001", "tools/odd: name.com")], rep.issues
    assert SIGNATURE in rep.issues[0].message and rep.scanner == f"clamd {clamd_socket}"
    assert rep.engine is not None and rep.engine.startswith("ClamAV ")


def test_clamd_verdicts_come_in_the_order_of_the_files(clamd_socket: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Several files are handed to clamd at once (CLAMD_CONNECTIONS); the verdicts keep the files'
    order, whichever connection answers first, with an unreadable file in between."""
    import oais.formats.virus as virus

    root = tmp_path / "many"
    root.mkdir()
    files: dict[Path, str] = {}
    for i in range(40):
        path = root / f"f{i:02d}.dat"
        path.write_bytes(eicar() if i in (3, 4, 17, 39) else bytes([i]) * (1000 + 997 * i))
        files[path] = f"in/f{i:02d}.dat"
    files[root / "gone.dat"] = "in/gone.dat"  # listed, then missing when scanned
    files[root / "last.com"] = "in/last.com"
    (root / "last.com").write_bytes(eicar())
    for connections in (1, 2, 5):
        monkeypatch.setattr(virus, "CLAMD_CONNECTIONS", connections)
        rep = scan(list(files), files, socket=clamd_socket)
        assert [(str(i.code), i.path) for i in rep.issues] == [
            ("VIR-E001", "in/f03.dat"), ("VIR-E001", "in/f04.dat"), ("VIR-E001", "in/f17.dat"),
            ("VIR-E001", "in/f39.dat"), ("VIR-E002", "in/gone.dat"), ("VIR-E001", "in/last.com")], connections


def test_VIR_E002_clamd_unreachable(delivery: dict[Path, str], tmp_path: Path) -> None:
    rep = scan(list(delivery), delivery, socket=str(tmp_path / "no-such.sock"))
    assert [str(i.code) for i in rep.issues] == [IssueCode.VIRUS_SCAN_FAILED.value]


def test_VIR_E001_infected_delivery_is_quarantined_by_ingest(archive, database: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the whole ingest: disposition 'quarantined', a PREMIS quarantine event, nothing stored."""
    from oais.catalog import repository as repo
    from oais.domain.package import Disposition
    from oais.services.ingest import IngestRequest, ingest
    from tests.conftest import tree_snapshot

    import astropy

    monkeypatch.setenv("OAIS_CLAMAV_DATABASE", str(database))
    root = tmp_path / "incoming"
    root.mkdir()
    shutil.copyfile(Path(astropy.__file__).parent / "io/fits/tests/data/test0.fits", root / "test0.fits")
    (root / "readme.com").write_bytes(eicar())
    before = tree_snapshot(root)
    result = ingest(IngestRequest(root, "eit-195"), archive.ingest_context())
    assert result.disposition is Disposition.QUARANTINED
    found = [i for i in result.issues if i.code is IssueCode.VIRUS_FOUND]
    assert [i.path for i in found] == ["readme.com"] and SIGNATURE in found[0].message
    assert tree_snapshot(root) == before
    assert result.quarantine and (Path(result.quarantine) / "readme.com").read_bytes() == eicar()
    assert not list(archive.locations[0].root.rglob("inventory.json"))
    with archive.sessions() as s:
        d = repo.delivery(s, result.delivery_id)
        assert d.disposition == "quarantined" and d.quarantine_path == result.quarantine
        from sqlalchemy import select

        from oais.catalog import models as m

        types = s.scalars(select(m.Event.type).where(m.Event.delivery_id == d.id)).all()
        assert "qua" in types
