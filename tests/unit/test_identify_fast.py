"""The indexed PRONOM matcher (``oais.formats.pronom_match``) gives fido's results, file by file.

Each test runs fido's own, untouched ``Fido`` the way ``identify_many`` ran it before the index
(``_Fido(indexed=False)``: PRONOM signatures only, no extension matching, containers looked into) and
the indexed one, on real files: random bytes of many sizes (seeded), a deterministic sample of the
files that Python, numpy, astropy, matplotlib and the other installed packages ship (images, PDF, XML,
JSON, gzip, ZIP and wheels, ELF libraries, bytecode, fonts, FITS, ...), an empty and a one-byte file;
then on buffers built to contain each signature's literals, so that the regexes behind the index run;
then on a small signature file with the cases fido handles specially (a pattern that fails to compile,
an unknown position, priorities between formats).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import random
import sysconfig
from dataclasses import replace
from pathlib import Path
from re import _parser
from typing import Any

import pytest
from fido.fido import Fido

from oais.formats import identify as ident
from oais.formats.pronom_match import IndexedFido, Literal, pattern_literals

# files per extension taken from the installed Python and packages (evenly spaced in sorted order)
SAMPLE = {"png": 12, "gif": 6, "jpg": 5, "pdf": 8, "xml": 12, "xsd": 5, "json": 10, "txt": 12, "csv": 4,
          "html": 6, "svg": 5, "gz": 8, "bz2": 3, "xz": 3, "zip": 4, "whl": 2, "npz": 2, "tar": 2, "so": 8,
          "pyc": 10, "py": 12, "ttf": 6, "afm": 4, "npy": 4, "fits": 14, "wav": 5, "bmp": 2, "tiff": 2,
          "ico": 1, "hdf5": 1, "mat": 5, "dat": 5, "toml": 2, "cfg": 2}
RANDOM_SIZES = [2, 3, 7, 64, 511, 2880, 4096, 4097, 65535, 65536, 131071, 131072, 131073, 262145, 300001]
# put before random bytes: the index lets these signatures through, the regexes decide (the ZIP and OLE2
# ones go on to fido's container step)
MAGIC = [b"%PDF-1.4\n", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff\xe0", b"PK\x03\x04", b"\x1f\x8b\x08",
         b'<?xml version="1.0"?>', b"SIMPLE  =", b"\x7fELF\x02\x01\x01", b"RIFF\x00\x10\x00\x00WAVEfmt ",
         b"II*\x00", b'{"a": 1}', b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"]


def matches_of(found: tuple[list[Any], str] | None) -> tuple[list[tuple[str, str | None]], str] | None:
    """fido's handler arguments as PUIDs and signature names, and the kind of match."""
    if found is None:
        return None
    return [(f.findtext("puid"), name) for f, name in found[0]], found[1]


@pytest.fixture(scope="module")
def reference() -> ident._Fido:
    """fido's own Fido, as identify_many ran it before the index."""
    return ident._Fido(indexed=False)


@pytest.fixture(scope="module")
def indexed() -> ident._Fido:
    matcher = ident._fido()
    assert matcher is not None and isinstance(matcher._fido, IndexedFido)
    return matcher


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Random files (seeded), an empty and a one-byte file, and installed files of many formats."""
    folder = tmp_path_factory.mktemp("corpus")
    rnd = random.Random(20240611)
    sizes = RANDOM_SIZES + [rnd.randint(4096, 65536) for _ in range(40)]
    paths = []
    for n, size in enumerate([0, 1, *sizes]):
        paths.append(folder / f"random-{n:03d}.bin")
        paths[-1].write_bytes(rnd.randbytes(size))
    for n, magic in enumerate(MAGIC):
        paths.append(folder / f"magic-{n:02d}.bin")
        paths[-1].write_bytes(magic + rnd.randbytes(rnd.randint(0, 70000)))
    paths.append(folder / "text.fits.gz")
    paths[-1].write_bytes(gzip.compress(b"SIMPLE  =                    T" + b" " * 2850, mtime=0))
    wanted: dict[str, list[Path]] = {ext: [] for ext in SAMPLE}
    for root in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"]}:
        for folder_name, _, names in os.walk(root):
            for name in names:
                ext = name.rsplit(".", 1)[-1]
                if ext in wanted and "." in name:
                    wanted[ext].append(Path(folder_name, name))
    for ext, count in SAMPLE.items():
        found = sorted(set(wanted[ext]))
        step = max(len(found) / count, 1)
        paths += [p for p in (found[int(i * step)] for i in range(min(count, len(found)))) if p.is_file()]
    return paths


def test_same_matches_and_results_as_fido_file_by_file(corpus: list[Path], reference: ident._Fido,
                                                         indexed: ident._Fido) -> None:
    assert len(corpus) > 250
    mismatches = []
    puids: set[str] = set()
    old_results: dict[Path, ident.FormatId] = {}
    for path in corpus:
        expected, got = reference.matches(path), indexed.matches(path)
        if matches_of(expected) != matches_of(got):
            mismatches.append((str(path), matches_of(expected), matches_of(got)))
        chosen = reference.format_id(expected[0]) if expected else None
        if chosen != (indexed.format_id(got[0]) if got else None):
            mismatches.append((str(path), chosen, "chosen result differs"))
        puids.update(p for p, _ in (matches_of(expected) or ([], ""))[0])
        # identify_many before the index: FITS by the built-in table, else fido, else the built-in table
        quick = ident.identify(path)
        if quick.puid != ident.FITS.puid and chosen is not None:
            quick = replace(chosen, inner=ident._gzip_inner(path)) if chosen.puid == ident.GZIP.puid else chosen
        old_results[path] = quick
    assert not mismatches, mismatches[:5]
    assert len(puids) >= 15, sorted(puids)  # the corpus exercises many signatures, containers included
    assert ident.identify_many(corpus) == old_results


def planted(signature: Any, rnd: random.Random) -> tuple[bytes, bytes]:
    """fido's first and last buffers for a random file holding each literal of the signature's
    patterns at the first place its bounds allow, so that the signature's regexes run (and often
    match). The buffers are one and the same below fido's 128 KiB, as fido reads them."""
    size = rnd.choice([600, 5000, 40000, 131072, 400000])
    bof = bytearray(rnd.randbytes(min(size, 131072)))
    eof = bytearray(rnd.randbytes(131072)) if size > 131072 else bof
    for pattern in signature.patterns:
        for lit in pattern.literals:
            buf = eof if lit.in_eof else bof
            start = lit.bounds()[0]
            pos = start if start >= 0 else len(buf) + start
            if 0 <= pos <= len(buf) - len(lit.data):
                buf[pos:pos + len(lit.data)] = lit.data
    return bytes(bof), bytes(eof)


def test_same_matches_as_fido_on_buffers_holding_the_literals(reference: ident._Fido,
                                                              indexed: ident._Fido) -> None:
    fido, ours = reference._fido, indexed._fido
    assert isinstance(ours, IndexedFido)
    signatures = ours.signature_index().signatures
    rnd = random.Random(7)
    mismatches, matched = [], 0
    for sig in signatures[::9]:
        bof, eof = planted(sig, rnd)
        with contextlib.redirect_stderr(io.StringIO()):
            expected = [(fido.get_puid(f), name) for f, name in fido.match_formats(bof, eof)]
            got = [(ours.get_puid(f), name) for f, name in ours.match_formats(bof, eof)]
        matched += bool(expected)
        if expected != got:
            mismatches.append((sig.name, expected, got))
    assert not mismatches, mismatches[:5]
    assert matched >= 40  # the regexes behind the index did run and match


FORMATS = """<formats>
  <format><puid>t/1</puid><name>compiles, then not</name>
    <signature><name>ab</name><pattern><position>BOF</position><regex>(?s)\\AAB</regex></pattern></signature>
    <signature><name>bad</name><pattern><position>BOF</position><regex>(?s)\\A[</regex></pattern></signature>
    <signature><name>ac</name><pattern><position>BOF</position><regex>(?s)\\AAC</regex></pattern></signature>
  </format>
  <format><puid>t/2</puid><name>bad after a literal</name>
    <signature><name>x</name>
      <pattern><position>BOF</position><regex>(?s)\\AX</regex></pattern>
      <pattern><position>EOF</position><regex>(?s)(?&lt;=a+)Z</regex></pattern></signature>
  </format>
  <format><puid>t/3</puid><name>unknown position, no regex text</name>
    <signature><name>odd</name><pattern><position>SOMEWHERE</position><regex>(?s)\\A[</regex></pattern>
      <pattern><position>BOF</position><regex>(?s)\\AOD</regex></pattern></signature>
    <signature><name>none</name><pattern><position>BOF</position><regex /></pattern></signature>
  </format>
  <format><puid>t/4</puid><name>inferior</name>
    <signature><name>pq</name>
      <pattern><position>BOF</position><regex>(?s)\\AP.{0,3}Q</regex></pattern></signature>
  </format>
  <format><puid>t/5</puid><name>superior</name><has_priority_over>t/4</has_priority_over>
    <has_priority_over>t/8</has_priority_over>
    <signature><name>pqr</name><pattern><position>VAR</position><regex>(?s)PQR</regex></pattern>
      <pattern><position>EOF</position><regex>(?s)END.{0,2}\\Z</regex></pattern></signature>
  </format>
  <format><puid>t/6</puid><name>case-insensitive, no literal</name>
    <signature><name>ci</name><pattern><position>IFB</position><regex>(?i)hello</regex></pattern></signature>
  </format>
  <format><puid>t/7</puid><name>no signature</name></format>
  <format><puid>t/8</puid><name>not tried after t/5</name>
    <signature><name>qr</name><pattern><position>VAR</position><regex>(?s)QR</regex></pattern></signature>
  </format>
</formats>
"""


def test_pattern_errors_and_priorities_as_fido(tmp_path: Path) -> None:
    (tmp_path / "formats.xml").write_text(FORMATS)
    kwargs = dict(quiet=True, handle_matches=lambda *a: None, conf_dir=str(tmp_path),
                  format_files=["formats.xml"])
    fido, ours = Fido(**kwargs), IndexedFido(**kwargs)
    buffers = [b"", b"AB", b"AC", b"XaZ", b"X", b"OD", b"PxQR..END", b"PQ", b"PQR END\n", b"hello", b"HeLLo",
               b"P12QPQR", b"ODEND"]
    for bof in buffers:
        for eof in (bof, b"..END", b"aaZ"):
            out: list[Any] = []
            for matcher in (fido, ours):
                with contextlib.redirect_stderr(io.StringIO()) as err:
                    found = matcher.match_formats(bof, eof)
                out.append(([(matcher.get_puid(f), name) for f, name in found], err.getvalue()))
            assert out[0] == out[1], (bof, eof, out)
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert [(ours.get_puid(f), n) for f, n in ours.match_formats(b"AB", b"..END")] == [("t/1", "ab")]
    assert "unterminated character set" in err.getvalue()  # fido's message: t/1 abandoned at "bad"
    # formats loaded again (new elements in place), or chosen after loading (fido's -useformats): the
    # index follows
    for matcher in (fido, ours):
        matcher.load_fido_xml(str(tmp_path / "formats.xml"))
    with contextlib.redirect_stderr(io.StringIO()):
        found = [[(m.get_puid(f), n) for f, n in m.match_formats(b"PQR END", b"PQR END")] for m in (fido, ours)]
    assert found[0] == found[1] == [("t/5", "pqr")]
    assert all(f in ours.formats for f, _ in ours.match_formats(b"PQR END", b"PQR END"))
    for matcher in (fido, ours):
        matcher.formats = [f for f in matcher.formats if matcher.get_puid(f) in ("t/4", "t/8")]
    assert [(ours.get_puid(f), n) for f, n in ours.match_formats(b"PQR", b"PQR")] == [("t/4", "pq"), ("t/8", "qr")]


@pytest.mark.parametrize("regex, position, expected", [
    (rb"(?s)\A\x89PNG\r\n\x1a\n", "BOF", [Literal(b"\x89PNG\r\n\x1a\n", False, 0, 0)]),
    (rb"(?s)\A.{8}WAVE", "BOF", [Literal(b"WAVE", False, 8, 8)]),
    (rb"(?s)\A.{0,3}<\?xml version=(?:1|2)x", "BOF", [Literal(b"<?xml version=", False, 0, 3),
                                                  Literal(b"x", False, 15, 18)]),
    (rb"(?s)%%EOF.{0,1024}\Z", "EOF", [Literal(b"%%EOF", True, 0, None, 5, 1029)]),
    (rb"(?s)ab.*cd", "VAR", [Literal(b"ab", False, 0, None), Literal(b"cd", False, 2, None)]),
    (rb"(?s)\A(?:ab|cd)ef", "BOF", [Literal(b"ef", False, 2, 2)]),
    (rb"(?s)\A(?:abX|abY)", "BOF", [Literal(b"ab", False, 0, 0)]),  # the parser takes the common prefix out
    (rb"(?i)\Aabc", "BOF", []),
    (rb"(?s)\Aa(?i:b)c", "BOF", [Literal(b"a", False, 0, 0), Literal(b"c", False, 2, 2)]),
    (rb"(?s)\A(?=xy)ab", "BOF", [Literal(b"ab", False, 0, 0)]),
    (rb"(?s)\Aab", "SOMEWHERE", []),  # a position fido does not apply
])
def test_pattern_literals(regex: bytes, position: str, expected: list[Literal]) -> None:
    assert pattern_literals(_parser.parse(regex), position) == expected
