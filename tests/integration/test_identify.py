"""Format identification (``oais.formats.identify``): fido (opf-fido) in-process, the built-in table
as fallback, and the agreement's accepted formats (FMT-E001) and unidentified files (FMT-W001)."""

from __future__ import annotations

import gzip
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from oais.formats.identify import (BUILTIN_TOOL, FITS, FormatId, check_formats, fido_tool, identify,
                                   identify_many, is_fits)
from tests.conftest import unavailable

FITS_PUID, GZIP_PUID, TEXT_PUID = "x-fmt/383", "x-fmt/266", "x-fmt/111"


@pytest.fixture(scope="module")
def astropy_dir() -> Path:
    import astropy

    return Path(astropy.__file__).parent


def need_fido() -> str:
    tool = fido_tool()
    if tool is None:
        unavailable("fido is not installed (pip install opf-fido==1.6.1)")
    assert tool is not None
    return tool


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([0, 64, 128, 255]) for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def pdf_bytes() -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>"]
    out, offsets = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


@pytest.fixture
def samples(tmp_path: Path, astropy_dir: Path) -> dict[str, Path]:
    test0 = astropy_dir / "io/fits/tests/data/test0.fits"
    files = {
        "fits": tmp_path / "test0.fits",
        "fits.gz": tmp_path / "test0.fits.gz",
        "png": tmp_path / "preview.png",
        "pdf": tmp_path / "report.pdf",
        "xml": tmp_path / "label.xml",
        "text": tmp_path / "README.txt",
        "binary": tmp_path / "blob.dat",
        "empty": tmp_path / "empty.dat",
    }
    shutil.copyfile(test0, files["fits"])
    files["fits.gz"].write_bytes(gzip.compress(test0.read_bytes()))
    files["png"].write_bytes(png_bytes())
    files["pdf"].write_bytes(pdf_bytes())
    files["xml"].write_text('<?xml version="1.0" encoding="UTF-8"?>\n<label><target>Sun</target></label>\n')
    files["text"].write_text("EIT 195 images, level 1.\nSee the PDF for details.\n", encoding="utf-8")
    files["binary"].write_bytes(bytes((i * 7 + 3) % 256 for i in range(4096)))
    files["empty"].write_bytes(b"")
    return files


def test_fido_identifies_fits_png_pdf_xml(samples: dict[str, Path]) -> None:
    tool = need_fido()
    assert tool.startswith("fido 1.6.1 (PRONOM v")
    found = identify_many(samples.values())
    expected = {"png": ("fmt/11", "image/png"), "pdf": ("fmt/18", "application/pdf"),
                "xml": ("fmt/101", "application/xml")}
    for kind, (puid, mime) in expected.items():
        fmt = found[samples[kind]]
        assert (fmt.puid, fmt.mime, fmt.tool) == (puid, mime, tool), (kind, fmt)
    # FITS is recognised by its definitive signature without running fido; fido agrees when asked
    fits = found[samples["fits"]]
    assert (fits.puid, fits.mime, fits.tool) == ("x-fmt/383", "application/fits", BUILTIN_TOOL)
    from oais.formats.identify import _fido

    matcher = _fido()
    assert matcher is not None and matcher.identify(samples["fits"]).puid == "x-fmt/383"


def test_fits_gz_is_gzip_with_fits_inside(samples: dict[str, Path], astropy_dir: Path) -> None:
    dss = astropy_dir / "wcs/tests/data/dss.14.29.56-62.41.05.fits.gz"
    for path in (samples["fits.gz"], dss):
        for fmt in (identify_many([path])[path], identify(path)):
            assert fmt.puid == GZIP_PUID and fmt.inner is not None and fmt.inner.puid == FITS_PUID, fmt
            assert is_fits(fmt) and "containing x-fmt/383" in fmt.label


def test_plain_text_falls_back_to_builtin_table(samples: dict[str, Path]) -> None:
    fmt = identify_many([samples["text"]])[samples["text"]]
    assert (fmt.puid, fmt.mime, fmt.tool) == (TEXT_PUID, "text/plain", BUILTIN_TOOL)  # no PRONOM signature


def test_fits_fido_misses_is_found_by_builtin_table(astropy_dir: Path) -> None:
    need_fido()
    path = astropy_dir / "io/fits/tests/data/verify.fits"  # NAXIS before BITPIX: fido's pattern fails
    fmt = identify_many([path])[path]
    assert (fmt.puid, fmt.tool) == (FITS_PUID, BUILTIN_TOOL)


def test_FMT_W001_unknown_binary_and_empty_file(samples: dict[str, Path]) -> None:
    found = identify_many([samples["binary"], samples["empty"]])
    assert all(f.puid is None for f in found.values())
    issues = check_formats({"blob.dat": found[samples["binary"]], "empty.dat": found[samples["empty"]]},
                           {FITS_PUID})
    assert [(str(i.code), str(i.severity), i.path) for i in issues] == [
        ("FMT-W001", "warning", "blob.dat"), ("FMT-W001", "warning", "empty.dat")]


def test_FMT_E001_format_not_accepted(samples: dict[str, Path]) -> None:
    found = identify_many(samples.values())
    named = {f"data/{p.name}": found[p] for p in samples.values()}
    issues = check_formats(named, frozenset({FITS_PUID, TEXT_PUID}))
    by_code = {(str(i.code), i.path) for i in issues}
    assert by_code == {("FMT-E001", "data/preview.png"), ("FMT-E001", "data/report.pdf"),
                       ("FMT-E001", "data/label.xml"), ("FMT-W001", "data/blob.dat"),
                       ("FMT-W001", "data/empty.dat")}, issues  # FITS, .fits.gz (FITS inside), text accepted
    pdf = next(i for i in issues if i.path == "data/report.pdf")
    assert "fmt/18" in pdf.message and str(pdf.severity) == "error"
    assert [str(i.code) for i in check_formats(named, None)] == ["FMT-W001", "FMT-W001"]  # None: any format


def test_gzip_of_unaccepted_content_is_refused() -> None:
    inner_pdf = FormatId("x-fmt/266", "application/gzip", "GZIP Format",
                         inner=FormatId("fmt/18", "application/pdf", "PDF 1.4"))
    assert [str(i.code) for i in check_formats({"a.pdf.gz": inner_pdf}, {FITS_PUID})] == ["FMT-E001"]


def test_identify_keeps_working_with_constants(samples: dict[str, Path]) -> None:
    assert identify(samples["fits"]) is FITS
    builtin = identify_many(samples.values(), use_fido=False)
    assert {f.tool for f in builtin.values()} == {BUILTIN_TOOL}
    assert builtin[samples["pdf"]].puid == "fmt/18" and builtin[samples["png"]].puid == "fmt/11"
    assert builtin[samples["binary"]].puid is None


def test_signatures_are_loaded_at_the_first_file_that_is_not_fits(tmp_path: Path, astropy_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """fido's signatures cost about a second to load: a delivery of FITS files never loads them; any
    other file loads them once (``identify_many``)."""
    from oais.formats import identify as module

    tool = need_fido()
    loads: list[int] = []
    load = module._fido

    def counted() -> object:
        loads.append(1)
        return load()

    monkeypatch.setattr(module, "_fido", counted)
    src = astropy_dir / "io/fits/tests/data/test0.fits"
    paths = []
    for n in range(3):
        paths.append(tmp_path / f"f{n:03d}.fits")
        shutil.copyfile(src, paths[-1])
    found = identify_many(paths)
    assert {(f.puid, f.tool) for f in found.values()} == {(FITS_PUID, BUILTIN_TOOL)}
    assert loads == []
    png = tmp_path / "preview.png"
    png.write_bytes(png_bytes())
    text = tmp_path / "README.txt"
    text.write_text("EIT 195 images, level 1.\n", encoding="utf-8")
    found = identify_many([paths[0], png, text, paths[1]])
    assert loads == [1]
    assert (found[png].puid, found[png].tool) == ("fmt/11", tool)
    assert found[text].puid == "x-fmt/111" and found[paths[1]].puid == FITS_PUID
