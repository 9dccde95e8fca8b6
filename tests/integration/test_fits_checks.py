"""FITS validation (``oais.formats.fits``) on real files from the astropy package, and damaged copies.

Originals are never modified: every damaged file is a copy in ``tmp_path``. fitsverify tests skip
with a printed reason when it is not installed, and fail under CI=true.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import shutil
import time
import tracemalloc
import warnings
from pathlib import Path

import pytest

from oais.domain.issues import IssueCode, Severity
from oais.formats import fits as fits_module
from oais.formats.fits import FitsReport, _reports, check_fits, check_fits_many, header_extract
from tests.conftest import unavailable

DATA = "io/fits/tests/data"
COMPRESSED = "io/fits/hdu/compressed/tests/data"


@pytest.fixture(scope="module")
def astropy_dir() -> Path:
    import astropy

    return Path(astropy.__file__).parent


def real(astropy_dir: Path, rel: str) -> Path:
    path = astropy_dir / rel
    assert path.is_file(), f"astropy package data missing: {path}"
    return path


def copy(astropy_dir: Path, rel: str, tmp_path: Path, name: str | None = None) -> Path:
    dest = tmp_path / (name or Path(rel).name)
    shutil.copyfile(real(astropy_dir, rel), dest)
    return dest


def codes(report) -> set[str]:  # type: ignore[no-untyped-def]
    return {str(i.code) for i in report.issues}


def own(report) -> set[str]:  # type: ignore[no-untyped-def]
    """Codes from our own checks and astropy (fitsverify's E008/W002 excluded)."""
    return codes(report) - {"FITS-E008", "FITS-W002"}


def need_fitsverify() -> None:
    if shutil.which("fitsverify") is None:
        unavailable("fitsverify is not on PATH (Debian package fitsverify)")


def end_card_offset(data: bytes, start: int = 0) -> int:
    for offset in range(start, len(data), 80):
        if data[offset:offset + 8] == b"END     ":
            return offset
    raise AssertionError("no END card")


def replace_card(data: bytearray, keyword: bytes, card: bytes) -> None:
    for offset in range(0, end_card_offset(bytes(data)), 80):
        if data[offset:offset + 8] == keyword.ljust(8):
            data[offset:offset + 80] = card.ljust(80)
            return
    raise AssertionError(f"no {keyword!r} card")


def test_checksum_fits_passes(astropy_dir: Path) -> None:
    path = real(astropy_dir, f"{DATA}/checksum.fits")
    rep = check_fits(path, display_name="aips/checksum.fits")
    assert rep.ok and own(rep) == set(), rep.issues
    assert rep.checksum_status == {0: {"CHECKSUM": "ok", "DATASUM": "ok"}, 1: {"CHECKSUM": "ok", "DATASUM": "ok"}}
    assert [h["name"] for h in rep.hdus] == ["PRIMARY", "RATE"]
    assert rep.hdus[0]["keywords"]["OBJECT"] == "NGC 1316"


def test_FITS_E004_checksum_mismatch(astropy_dir: Path) -> None:
    rep = check_fits(real(astropy_dir, f"{DATA}/checksum_false.fits"), display_name="in/checksum_false.fits")
    e004 = [i for i in rep.issues if i.code is IssueCode.FITS_CHECKSUM]
    e005 = [i for i in rep.issues if i.code is IssueCode.FITS_DATASUM]
    assert len(e004) == 2 and len(e005) == 2, rep.issues
    assert all(i.severity is Severity.ERROR and i.path == "in/checksum_false.fits" for i in e004 + e005)
    assert "HDU 1 (RATE)" in e004[1].message
    assert rep.checksum_status[0] == rep.checksum_status[1] == {"CHECKSUM": "bad", "DATASUM": "bad"}


def test_FITS_E005_datasum_mismatch_chandra_events(astropy_dir: Path) -> None:
    rep = check_fits(real(astropy_dir, f"{DATA}/chandra_time.fits"))
    assert own(rep) == {"FITS-E004", "FITS-E005"}, rep.issues
    assert rep.checksum_status == {0: {"CHECKSUM": "absent", "DATASUM": "absent"},
                                   1: {"CHECKSUM": "bad", "DATASUM": "bad"}}
    assert all("EVENTS" in i.message and i.path == "chandra_time.fits" for i in rep.issues
               if i.code in (IssueCode.FITS_CHECKSUM, IssueCode.FITS_DATASUM))


@pytest.mark.parametrize("name", ["m13.fits", "m13_gzip.fits", "m13_hcomp.fits", "m13_plio.fits",
                                  "m13_rice.fits", "compressed_with_nan.fits"])
def test_tile_compressed_checksums_pass_on_the_stored_hdu(astropy_dir: Path, name: str) -> None:
    # astropy's CompImageHDU.verify_checksum() says 0 (bad) for these; the stored table verifies.
    rep = check_fits(real(astropy_dir, f"{COMPRESSED}/{name}"))
    assert own(rep) == set(), rep.issues
    assert all(v == "ok" for status in rep.checksum_status.values() for v in status.values()
               if v != "absent"), rep.checksum_status
    if name.startswith("m13_"):  # keywords come from the image header, not the compressed table's
        assert {"BITPIX": 16, "NAXIS": 2, "NAXIS1": 300, "NAXIS2": 300}.items() <= rep.hdus[1]["keywords"].items()


def test_FITS_E002_truncated_in_the_data(astropy_dir: Path, tmp_path: Path) -> None:
    src = real(astropy_dir, f"{DATA}/test0.fits")
    cut = tmp_path / "test0.fits"
    cut.write_bytes(src.read_bytes()[:-5000])  # inside HDU 4's data
    rep = check_fits(cut, display_name="hst/test0.fits")
    e002 = [i for i in rep.issues if i.code is IssueCode.FITS_TRUNCATED]
    assert len(e002) == 1 and e002[0].path == "hst/test0.fits" and "HDU 4" in e002[0].message, rep.issues
    assert own(rep) == {"FITS-E002"}, rep.issues
    assert len(rep.hdus) == 5 and rep.checksum_status[4] == {"CHECKSUM": "absent", "DATASUM": "absent"}


def test_FITS_E002_truncated_gzip_stream(astropy_dir: Path, tmp_path: Path) -> None:
    packed = gzip.compress(real(astropy_dir, f"{DATA}/test0.fits").read_bytes())
    path = tmp_path / "test0.fits.gz"
    path.write_bytes(packed[: len(packed) // 2])
    rep = check_fits(path)
    assert own(rep) == {"FITS-E002"} and "gzip" in rep.issues[0].message, rep.issues


def test_FITS_E003_end_card_blanked(astropy_dir: Path, tmp_path: Path) -> None:
    path = copy(astropy_dir, f"{DATA}/test0.fits", tmp_path)
    data = bytearray(path.read_bytes())
    end = end_card_offset(bytes(data))
    data[end:end + 80] = b" " * 80
    path.write_bytes(bytes(data))
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdul:  # the pitfall: astropy merges the headers without a word
            assert hdul[0].header["XTENSION"] == "IMAGE"
    rep = check_fits(path)
    assert own(rep) == {"FITS-E003"}, rep.issues
    assert "HDU 0" in rep.issues[0].message


def test_FITS_E003_single_hdu_without_end(astropy_dir: Path, tmp_path: Path) -> None:
    path = copy(astropy_dir, f"{COMPRESSED}/m13.fits", tmp_path)
    data = bytearray(path.read_bytes())
    end = end_card_offset(bytes(data))
    data[end:end + 80] = b" " * 80
    path.write_bytes(bytes(data))
    assert own(check_fits(path)) == {"FITS-E003"}


def test_FITS_E006_bytes_after_last_hdu(astropy_dir: Path, tmp_path: Path) -> None:
    path = copy(astropy_dir, f"{DATA}/test0.fits", tmp_path)
    with open(path, "ab") as f:
        f.write(bytes(range(100)))
    rep = check_fits(path)
    assert own(rep) == {"FITS-E006"}, rep.issues
    assert "100 bytes after the last HDU" in rep.issues[0].message
    assert len(rep.hdus) == 5  # everything else was still checked


def test_FITS_E006_bytes_after_gzip_stream(astropy_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "test0.fits.gz"
    path.write_bytes(gzip.compress(real(astropy_dir, f"{DATA}/test0.fits").read_bytes()) + b"junk")
    rep = check_fits(path)
    assert own(rep) == {"FITS-E006"} and "gzip" in rep.issues[0].message, rep.issues


def test_FITS_E007_required_keyword_missing(astropy_dir: Path) -> None:
    path = real(astropy_dir, f"{DATA}/test0.fits")
    # INSTRUME is in the primary header, DETECTOR only in the extensions: both satisfy the agreement
    rep = check_fits(path, required_keywords=("INSTRUME", "DETECTOR", "WAVELNTH"), fitsverify=False)
    assert [(str(i.code), i.path) for i in rep.issues] == [("FITS-E007", "test0.fits")]
    assert "WAVELNTH" in rep.issues[0].message


def test_FITS_E001_not_fits(tmp_path: Path) -> None:
    path = tmp_path / "fake.fits"
    path.write_bytes(b"This is not FITS at all.\n" * 200)
    rep = check_fits(path, fitsverify=False)
    assert codes(rep) == {"FITS-E001"} and not rep.hdus


def test_FITS_W001_non_standard_card(astropy_dir: Path, tmp_path: Path) -> None:
    path = copy(astropy_dir, f"{DATA}/test0.fits", tmp_path)
    data = bytearray(path.read_bytes())
    replace_card(data, b"DATE", b"obsmode = 'FULL    '           / lower-case keyword")
    replace_card(data, b"FILETYPE", b"DATE_OBS= 1996/01/15")  # unquoted: astropy reads the integer 1996
    path.write_bytes(bytes(data))
    rep = check_fits(path, fitsverify=False)
    w001 = [i for i in rep.issues if i.code is IssueCode.FITS_VERIFY]
    assert codes(rep) == {"FITS-W001"} and rep.ok, rep.issues
    assert len(w001) == 1 and "obsmode" in w001[0].message and "'FULL    '" in w001[0].message
    assert w001[0].severity is Severity.WARNING
    keywords = rep.hdus[0]["keywords"]
    assert keywords["DATE_OBS"] == 1996 and keywords["DATE-OBS"] == "19/05/94"  # both kept, never renamed


def test_gzip_fits_is_checked_like_plain(astropy_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "test0.fits.gz"
    path.write_bytes(gzip.compress(real(astropy_dir, f"{DATA}/test0.fits").read_bytes()))
    rep = check_fits(path, required_keywords=("INSTRUME",))
    assert rep.ok and own(rep) == set(), rep.issues
    assert len(rep.hdus) == 5 and rep.hdus[0]["keywords"]["INSTRUME"] == "WFPC2"


def test_header_extract(astropy_dir: Path, tmp_path: Path) -> None:
    extracted = header_extract(real(astropy_dir, f"{COMPRESSED}/m13_rice.fits"))
    assert extracted["hdus"][1]["keywords"]["NAXIS1"] == 300
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"\0" * 100)
    assert "error" in header_extract(bad)


def test_originals_are_never_modified(astropy_dir: Path) -> None:
    paths = [real(astropy_dir, rel) for rel in (f"{DATA}/checksum_false.fits", f"{COMPRESSED}/m13_rice.fits",
                                                "wcs/tests/data/dss.14.29.56-62.41.05.fits.gz")]
    before = {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in paths}
    for p in paths:
        check_fits(p)
    assert before == {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in paths}


def test_memory_is_bounded_for_a_big_file(tmp_path: Path) -> None:
    import numpy as np
    from astropy.io import fits

    path = tmp_path / "big.fits"
    data = np.zeros((20, 1000, 1000), dtype=np.float32)  # 80 MB of data
    fits.PrimaryHDU(data).writeto(path, checksum=True)
    del data
    tracemalloc.start()
    try:
        rep = check_fits(path, fitsverify=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rep.ok and rep.checksum_status == {0: {"CHECKSUM": "ok", "DATASUM": "ok"}}, rep.issues
    assert peak < 20 * 2**20, f"peak Python allocations {peak / 2**20:.0f} MB for an 80 MB file"


# ---------------------------------------------------------------- fitsverify


def test_fitsverify_clean_file(astropy_dir: Path) -> None:
    need_fitsverify()
    rep = check_fits(real(astropy_dir, f"{DATA}/checksum.fits"))
    assert rep.fitsverify is not None and rep.fitsverify.version.startswith("fitsverify ")
    assert (rep.fitsverify.errors, rep.fitsverify.warnings) == (0, 0) and rep.issues == []


def test_FITS_E008_fitsverify_errors(astropy_dir: Path, tmp_path: Path) -> None:
    need_fitsverify()
    path = copy(astropy_dir, f"{DATA}/test0.fits", tmp_path, name="[1] -odd @name.fits")  # CFITSIO syntax
    data = bytearray(path.read_bytes())
    replace_card(data, b"FILETYPE", b"DATE_OBS= 1996/01/15")  # silent in astropy, an error for fitsverify
    path.write_bytes(bytes(data))
    rep = check_fits(path)
    e008 = [i for i in rep.issues if i.code is IssueCode.FITS_FITSVERIFY_ERROR]
    assert e008 and all(i.severity is Severity.ERROR for i in e008), rep.issues
    assert any("DATE_OBS" in i.message and "HDU 0" in i.message for i in e008)
    assert rep.fitsverify is not None and rep.fitsverify.errors == len(e008)
    assert own(rep) == set()


def test_FITS_W002_fitsverify_warnings(astropy_dir: Path) -> None:
    need_fitsverify()
    rep = check_fits(real(astropy_dir, f"{DATA}/checksum_false.fits"))
    w002 = [i for i in rep.issues if i.code is IssueCode.FITS_FITSVERIFY]
    assert rep.fitsverify is not None and (rep.fitsverify.errors, rep.fitsverify.warnings) == (0, 4)
    assert len(w002) == 4 and all(i.severity is Severity.WARNING for i in w002)


def test_fitsverify_not_installed(astropy_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    rep = check_fits(real(astropy_dir, f"{DATA}/checksum_false.fits"))
    assert rep.fitsverify is None and codes(rep) == {"FITS-E004", "FITS-E005"}


# ---------------------------------------------------------------- check_fits_many: fitsverify started ahead


def pipeline_inputs(astropy_dir: Path, tmp_path: Path) -> list[tuple[Path, str]]:
    """A clean file, one with fitsverify warnings, one with a fitsverify error, a .gz file and a cut one."""
    bad = copy(astropy_dir, f"{DATA}/test0.fits", tmp_path, name="[1] -odd @name.fits")
    data = bytearray(bad.read_bytes())
    replace_card(data, b"FILETYPE", b"DATE_OBS= 1996/01/15")
    bad.write_bytes(bytes(data))
    gz = tmp_path / "checksum.fits.gz"
    gz.write_bytes(gzip.compress(real(astropy_dir, f"{DATA}/checksum.fits").read_bytes()))
    cut = tmp_path / "cut.fits"
    cut.write_bytes(real(astropy_dir, f"{DATA}/test0.fits").read_bytes()[:-5000])
    return [(real(astropy_dir, f"{DATA}/checksum.fits"), "a/clean.fits"),
            (real(astropy_dir, f"{DATA}/checksum_false.fits"), "a/checksum_false.fits"),
            (bad, "b/bad.fits"), (gz, "b/clean.fits.gz"), (cut, "c/cut.fits")]


def unknown_status(report: FitsReport) -> FitsReport:
    """The report with fitsverify's exit status left out (not known for a file verified among others)."""
    assert report.fitsverify is not None
    return dataclasses.replace(report, fitsverify=dataclasses.replace(report.fitsverify, exit_status=None))


@pytest.mark.parametrize(("ahead", "batch"), [(0, 32), (1, 32), (3, 1), (3, 2), (8, 32)])
def test_check_fits_many_reports_as_check_fits_does_in_order(astropy_dir: Path, tmp_path: Path, ahead: int,
                                                             batch: int) -> None:
    need_fitsverify()
    files = pipeline_inputs(astropy_dir, tmp_path)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p, _ in files}
    work = tmp_path / "work"
    work.mkdir()
    one_by_one = [check_fits(p, display_name=n, required_keywords=("BITPIX",), workdir=work) for p, n in files]
    many = list(check_fits_many(files, required_keywords=("BITPIX",), workdir=work, ahead=ahead, batch=batch))
    assert [unknown_status(r) for r in many] == [unknown_status(r) for r in one_by_one]
    if ahead == 0 or batch == 1:  # every file verified alone: the exit status too
        assert many == one_by_one
    else:  # not known for a file verified with others; the .gz file is decompressed and verified at its turn
        together = {1: [None, None, 2, 0, 2],  # 1 and 2 together when 1 is read, then 3 and 5 alone at their turn
                    3: [None, None, None, 0, None],  # batches of two: 1 and 2 when 2 is looked at, 3 and 5 at 3's turn
                    8: [None, None, None, 0, None]}[ahead]  # the four plain files together
        assert [r.fitsverify.exit_status for r in many if r.fitsverify] == together
    assert [codes(r) for r in many] == [set(), {"FITS-E004", "FITS-E005", "FITS-W002"}, {"FITS-E008"}, set(),
                                        {"FITS-E002", "FITS-E008"}]
    assert all(r.fitsverify is not None for r in many)
    assert [i.path for i in many[2].issues] == ["b/bad.fits"] * len(many[2].issues)
    assert list(work.iterdir()) == []  # links, outputs and the decompressed copy are gone
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p, _ in files} == before


def logging_fitsverify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str = "") -> Path:
    """A stand-in on PATH that logs how many files each run is given, runs ``body`` (shell), then the
    real fitsverify. Returns the log."""
    real_tool = shutil.which("fitsverify")
    assert real_tool is not None
    tools = tmp_path / "bin"
    tools.mkdir()
    log = tmp_path / "runs.log"
    script = tools / "fitsverify"
    script.write_text(f'#!/bin/sh\necho $# >> {log}\n{body}\nexec {real_tool} "$@"\n', encoding="ascii")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    return log


def test_check_fits_many_verifies_plain_files_in_batches(astropy_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    need_fitsverify()
    files = pipeline_inputs(astropy_dir, tmp_path)
    files = [files[0], files[1], files[2], files[0], files[2], files[3], files[4], files[1]]  # 7 plain, 1 .gz
    work = tmp_path / "work"
    work.mkdir()
    log = logging_fitsverify(tmp_path, monkeypatch)
    many = list(check_fits_many(files, workdir=work, ahead=4, batch=3))
    # batches of 3 plain files as they are looked at; the .gz file alone at its turn; the last two plain
    # files, fewer than a batch, when the first of them comes
    assert log.read_text().split() == ["3", "3", "1", "1"]
    log.unlink()
    assert [unknown_status(r) for r in many] == [unknown_status(check_fits(p, display_name=n, workdir=work))
                                                 for p, n in files]
    assert list(work.iterdir()) == []


def test_check_fits_many_puts_a_large_file_in_a_run_of_its_own(astropy_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    need_fitsverify()
    small = real(astropy_dir, f"{DATA}/checksum.fits")
    large = real(astropy_dir, f"{DATA}/test0.fits")
    assert large.stat().st_size > 2 * small.stat().st_size
    monkeypatch.setattr(fits_module, "FITSVERIFY_BATCH_BYTES", 2 * small.stat().st_size)
    log = logging_fitsverify(tmp_path, monkeypatch)
    files = [(small, "a.fits"), (small, "b.fits"), (small, "c.fits"), (large, "d.fits"), (small, "e.fits")]
    many = list(check_fits_many(files, ahead=8, workdir=tmp_path))
    # two small ones fill a run; c, d and e alone (the first three runs start together: their lines come in any order)
    assert sorted(log.read_text().split()) == ["1", "1", "1", "2"]
    assert [codes(r) for r in many] == [set()] * 5


def test_a_file_without_a_verdict_in_a_batch_is_verified_again_alone(astropy_dir: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    need_fitsverify()
    files = pipeline_inputs(astropy_dir, tmp_path)[:3] + [(real(astropy_dir, f"{DATA}/test0.fits"), "d.fits")]
    work = tmp_path / "work"
    work.mkdir()
    expected = [unknown_status(check_fits(p, display_name=n, workdir=work)) for p, n in files]
    # given several files, the stand-in verifies the first two, then dies as a crash would (SIGSEGV)
    log = logging_fitsverify(tmp_path, monkeypatch, body=f'if [ $# -gt 1 ]; then {shutil.which("fitsverify")} '
                                                         f'"$1" "$2"; kill -SEGV $$; fi')
    many = list(check_fits_many(files, workdir=work, ahead=8))
    assert log.read_text().split() == ["4", "1", "1"]  # the batch, then the last two files alone
    assert [unknown_status(r) for r in many] == expected
    assert [r.fitsverify.exit_status for r in many if r.fitsverify] == [None, None, 2, 0]  # the two run alone
    assert list(work.iterdir()) == []


def test_a_batch_without_a_verdict_in_time_is_stopped_and_its_files_verified_alone(
        astropy_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need_fitsverify()
    files = pipeline_inputs(astropy_dir, tmp_path)[:3]
    work = tmp_path / "work"
    work.mkdir()
    expected = [check_fits(p, display_name=n, workdir=work) for p, n in files]
    # given several files, the stand-in records its process id and hangs
    log = logging_fitsverify(tmp_path, monkeypatch,
                             body=f"if [ $# -gt 1 ]; then echo $$ > {tmp_path / 'pid'}; exec sleep 60; fi")
    many = list(check_fits_many(files, workdir=work, ahead=8, fitsverify_timeout=2.0))
    assert log.read_text().split() == ["3", "1", "1", "1"]
    assert many == expected  # each file's verdict from its own run, exit status included
    with pytest.raises(ProcessLookupError):  # killed and waited for
        os.kill(int((tmp_path / "pid").read_text()), 0)
    assert list(work.iterdir()) == []


def test_reports_are_not_cut_from_an_output_whose_file_lines_are_not_the_files() -> None:
    one = b" \n              fitsverify 4.20 (CFITSIO V4.020)              \n \nFile: /dev/fd/%d\n%s" \
          b"**** Verification found 0 warning(s) and 0 error(s). ****\n"
    names = [b"/dev/fd/7", b"/dev/fd/8"]
    good = one % (7, b"") + one % (8, b"")
    assert _reports(good, names) == [one % (7, b""), one % (8, b"")]
    assert _reports(good, [*names, b"/dev/fd/9"]) == [one % (7, b""), one % (8, b""), None]  # none on the third
    assert _reports(one % (8, b"") + one % (7, b""), names) == [None, None]  # not in the order given
    forged = one % (7, b"*** Warning: a card quoting\nFile: /dev/fd/8\n") + one % (8, b"")
    assert _reports(forged, names) == [None, None]
    unsplit = one % (7, b"") + (one % (8, b"")).replace(b" \n   ", b"\n   ", 1)  # no banner between them
    assert _reports(unsplit, names) == [None, None]
    cut = one % (7, b"") + (one % (8, b"")).split(b"****")[0]  # the second report has no summary
    assert _reports(cut, names) == [one % (7, b""), None]
    # a card quoting a summary, then a banner: the first part does not end with the summary, so it is no report
    quoting = (one % (7, b"*** Warning: 'Verification found 0 warning(s) and 0 error(s).'\n")).replace(
        b"**** Verification found 0 warning(s) and 0 error(s). ****\n",
        b" \n   fitsverify 4.20 (CFITSIO V4.020)\n*** Error: the real one\n"
        b"**** Verification found 0 warning(s) and 1 error(s). ****\n")
    assert _reports(quoting + one % (8, b""), names) == [None, one % (8, b"")]
    aborted = b" \n  fitsverify 4.20 (CFITSIO V4.020)\nFile: /dev/fd/7\n**** Abort Verification: Fatal Error. ****\n"
    assert _reports(aborted + one % (8, b""), names) == [aborted, one % (8, b"")]


def test_check_fits_many_starts_fitsverify_ahead_and_stops_it_when_abandoned(
        astropy_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need_fitsverify()
    files = pipeline_inputs(astropy_dir, tmp_path)[:3] + [(real(astropy_dir, f"{DATA}/test0.fits"), "d.fits")]
    work = tmp_path / "work"
    work.mkdir()
    pid = tmp_path / "pid"
    # the stand-in's second run records its process id and hangs
    log = logging_fitsverify(tmp_path, monkeypatch, body=f'if [ "$(wc -l < {tmp_path / "runs.log"})" -gt 1 ]; '
                                                         f'then echo $$ > {pid}; exec sleep 60; fi')
    reports = check_fits_many(files, workdir=work, ahead=2, batch=2)
    first = next(reports)
    assert log.read_text().split() == ["2"]  # the first two files in one run, started before the first was read
    assert first.fitsverify is not None and codes(first) == set()
    second = next(reports)
    assert codes(second) == {"FITS-E004", "FITS-E005", "FITS-W002"}
    assert log.read_text().split() == ["2", "2"]  # the next two, started while the second is read
    deadline = time.monotonic() + 10
    while not pid.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    reports.close()
    with pytest.raises(ProcessLookupError):  # stopped and waited for: no process, not even a zombie
        os.kill(int(pid.read_text()), 0)
    assert list(work.iterdir()) == []


def test_check_fits_many_without_look_ahead_starts_nothing_early(astropy_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    need_fitsverify()
    work = tmp_path / "work"
    work.mkdir()
    log = logging_fitsverify(tmp_path, monkeypatch)
    reports = check_fits_many(pipeline_inputs(astropy_dir, tmp_path)[:2], workdir=work, ahead=0)
    next(reports)
    assert log.read_text().split() == ["1"]  # the first file alone, the second not started
    assert codes(next(reports)) == {"FITS-E004", "FITS-E005", "FITS-W002"}
    assert log.read_text().split() == ["1", "1"]
    reports.close()
    assert list(work.iterdir()) == []


def test_check_fits_many_raises_at_the_turn_of_a_missing_file(astropy_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    files = [(real(astropy_dir, f"{DATA}/checksum.fits"), "a.fits"), (tmp_path / "gone.fits", "gone.fits"),
             (real(astropy_dir, f"{DATA}/test0.fits"), "c.fits")]
    reports = check_fits_many(files, workdir=work)
    assert own(next(reports)) == set()  # its report comes first, although the next file was already tried
    with pytest.raises(FileNotFoundError):
        next(reports)
    assert list(work.iterdir()) == []  # the third file's fitsverify, started ahead, is stopped and removed


def test_fitsverify_without_a_verdict_in_time_is_stopped(astropy_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in for a fitsverify that hangs on a file: it records its process id, then sleeps.
    tools = tmp_path / "bin"
    tools.mkdir()
    script = tools / "fitsverify"
    script.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'pid'}\nexec sleep 60\n", encoding="ascii")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    work = tmp_path / "work"
    work.mkdir()
    # 2 s: ample for the shell to start and write its process id before the timeout
    rep = check_fits(real(astropy_dir, f"{DATA}/checksum.fits"), fitsverify_timeout=2.0, workdir=work)
    assert rep.fitsverify is not None and rep.fitsverify.messages == (("warning", "no verdict within 2 s"),)
    assert [(str(i.code), i.message) for i in rep.issues] == [("FITS-W002", "fitsverify: no verdict within 2 s")]
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):  # killed and waited for: no process, not even a zombie
        os.kill(pid, 0)
    assert list(work.iterdir()) == []
