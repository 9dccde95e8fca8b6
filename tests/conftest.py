"""Shared fixtures: real archives in temporary folders, real FITS files, the real PostgreSQL server.

Services that tests need (PostgreSQL at 127.0.0.1:5432, database ``test``) are used for real. When
one is missing, the test is skipped with the reason printed, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IN_CI = os.environ.get("CI") == "true"
PG_ADMIN_URL = os.environ.get("OAIS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Real FITS files that astropy ships in its package data (HST, DSS, AIPS, ...).
ASTROPY_FITS = (
    "io/fits/tests/data/test0.fits",
    "io/fits/tests/data/checksum.fits",
    "io/fits/tests/data/o4sp040b0_raw.fits",
    "wcs/tests/data/j94f05bgq_flt.fits",
    "nddata/tests/data/sip-wcs.fits",
)


def unavailable(reason: str) -> None:
    """Skip with a printed reason, or fail under CI=true (where everything must be present)."""
    if IN_CI:
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


_FS_IOC_FIEMAP = 0xC020660B
_EXTENT_DELALLOC = 0x4  # FIEMAP_EXTENT_DELALLOC: written to memory, no place on the disk yet


def delayed_extents(path: Path) -> int | None:
    """How many of the file's extents wait for the disk (delayed allocation: the kernel gives them a
    place on the disk only when it writes them out), from the FIEMAP ioctl; None if it is refused."""
    import fcntl
    import struct

    count = 512
    request = bytearray(struct.pack("=QQLLLL", 0, 2**64 - 1, 0, 0, count, 0) + bytes(56 * count))
    try:
        with open(path, "rb") as f:
            fcntl.ioctl(f.fileno(), _FS_IOC_FIEMAP, request)
    except OSError:
        return None
    mapped = struct.unpack_from("=L", request, 20)[0]
    flags = [struct.unpack_from("=L", request, 32 + 56 * i + 40)[0] for i in range(mapped)]
    return sum(1 for f in flags if f & _EXTENT_DELALLOC)


def corpus(*parts: str) -> Path:
    path = SHARED.joinpath("corpora", *parts)
    if not path.exists():
        unavailable(f"third-party corpus not found at {path}")
    return path


@pytest.fixture(scope="session")
def astropy_fits() -> list[Path]:
    import astropy

    base = Path(astropy.__file__).parent
    files = [base / rel for rel in ASTROPY_FITS]
    missing = [str(p) for p in files if not p.is_file()]
    assert not missing, f"astropy package data missing: {missing}"
    return files


@pytest.fixture
def fits_delivery(tmp_path: Path, astropy_fits: list[Path]) -> Path:
    """A plain folder delivery of real FITS files, with a subfolder and a README."""
    root = tmp_path / "delivery"
    (root / "hst").mkdir(parents=True)
    for i, src in enumerate(astropy_fits):
        dest = root / ("hst" if i % 2 else "") / src.name
        shutil.copyfile(src, dest)
    (root / "README.txt").write_text("Sample delivery of real FITS files.\n", encoding="utf-8")
    return root


@pytest.fixture
def home(tmp_path: Path) -> Path:
    from oais.bootstrap import init_archive

    h = tmp_path / "archive"
    init_archive(h)
    return h


@pytest.fixture
def archive(home: Path) -> Iterator[object]:
    from oais.bootstrap import open_archive
    from oais.config import load_settings

    a = open_archive(load_settings(home))
    yield a
    a.close()


@contextlib.contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the real server (its URL), dropped afterwards."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"oais_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server"
        admin.dispose()
        unavailable(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the real server, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


def tree_snapshot(root: Path) -> dict[str, tuple[str, int, int, int]]:
    """Every entry under ``root``: (sha256 or 'dir', size, mode, mtime_ns) — to prove input is untouched."""
    import hashlib

    snap: dict[str, tuple[str, int, int, int]] = {}
    paths = [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]
    for p in paths:
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        snap[p.relative_to(root).as_posix() if p != root else "."] = (digest, st.st_size if p.is_file() else 0,
                                                                       st.st_mode, st.st_mtime_ns)
    return snap


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def ocfl_py_errors(object_root: Path) -> tuple[int, int, str]:
    """(errors, warnings, report) from the ocfl-py validator, digests checked."""
    from ocfl.validator import Validator

    v = Validator(log_warnings=True, check_digests=True)
    v.validate_object(str(object_root))
    return v.log.num_errors, v.log.num_warnings, v.status_str()


class Tick:
    """A clock that moves one second per reading: every step of a test has its own time."""

    def __init__(self) -> None:
        from oais.bootstrap import utc_now

        self.now = utc_now()

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now
