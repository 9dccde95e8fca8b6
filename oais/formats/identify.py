"""Format identification as PRONOM identifiers (PUIDs).

``identify_many(paths)`` uses fido (PyPI ``opf-fido``, the Open Preservation Foundation's PRONOM
matcher, signature file v109 shipped in the wheel, no network) in-process: one instance is built
once and reused (about 0.5 s: 2246 formats, 1939 signatures, every pattern compiled). It is fido's
own ``Fido`` with its signature loop replaced by ``oais.formats.pronom_match.IndexedFido``, which
gives the same matches but skips the signatures whose literal bytes are not in the file: about
0.25 ms per random 4-64 KiB file in all (reading included) instead of 4 ms or more
(tests/unit/test_identify_fast.py compares the two file by file). Files fido leaves unidentified
go to the built-in signature table below; ``FormatId.tool`` says which one answered. Choices:

* fido runs with PRONOM signatures only (not fido's own ``fido-fmt/...`` extension records) and
  without extension matching: a name is not evidence (fido offers three formats for ``a.txt`` and
  "MacBinary" for random bytes named ``.bin``). Plain text has no PRONOM signature: the built-in
  table recognises it (x-fmt/111) by content.
* A gzip stream (x-fmt/266) gets ``inner``: the format of its first decompressed bytes (at most
  64 KiB are decompressed), so ``.fits.gz`` is GZIP with FITS inside. ``check_formats`` accepts a
  gzip stream when its content's PUID is accepted (CFITSIO and astropy read .fits.gz natively).
* ``identify(path)`` is the built-in table alone and returns the module constants (``identify(p)
  is FITS`` holds for any FITS file).
"""

from __future__ import annotations

import contextlib
import io
import threading
import zlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from oais.domain.issues import Issue, IssueCode, issue

BUILTIN_TOOL = "oais-archive signatures"
GZIP_PEEK = 64 * 1024


@dataclass(frozen=True, slots=True)
class FormatId:
    puid: str | None
    mime: str | None
    name: str
    tool: str = BUILTIN_TOOL  # what identified it: "fido 1.6.1 (PRONOM v109)" or "oais-archive signatures"
    inner: FormatId | None = None  # for a gzip stream: the format of its content
    alternatives: tuple[str, ...] = ()  # other PUIDs fido found equally good

    @property
    def label(self) -> str:
        what = f"{self.puid} ({self.name})" if self.puid else "unidentified"
        return what + (f" containing {self.inner.label}" if self.inner else "")


UNKNOWN = FormatId(None, None, "unknown")
FITS = FormatId("x-fmt/383", "application/fits", "Flexible Image Transport System (FITS)")
GZIP = FormatId("x-fmt/266", "application/gzip", "GZIP Format")
ZIP = FormatId("x-fmt/263", "application/zip", "ZIP Format")
TAR = FormatId("x-fmt/265", "application/x-tar", "Tape Archive Format")
PDF = FormatId("fmt/276", "application/pdf", "Acrobat PDF 1.7 - Portable Document Format")
PNG = FormatId("fmt/11", "image/png", "Portable Network Graphics")
XML = FormatId("fmt/101", "text/xml", "Extensible Markup Language")
JSON_ = FormatId("fmt/817", "application/json", "JSON Data Interchange Format")
TEXT = FormatId("x-fmt/111", "text/plain", "Plain Text File")
_PDF_VERSIONS = {b"1.0": "fmt/14", b"1.1": "fmt/15", b"1.2": "fmt/16", b"1.3": "fmt/17", b"1.4": "fmt/18",
                 b"1.5": "fmt/19", b"1.6": "fmt/20", b"1.7": "fmt/276", b"2.0": "fmt/1129"}


def is_fits(fmt: FormatId) -> bool:
    """FITS, plain or inside a gzip stream."""
    return fmt.puid == FITS.puid or (fmt.inner is not None and fmt.inner.puid == FITS.puid)


def identify(path: Path) -> FormatId:
    """Identify ``path`` with the built-in table, from its first bytes (and its name for JSON)."""
    with open(path, "rb") as f:
        head = f.read(2880)
    fmt = _builtin(head, path.suffix.lower())
    if fmt is GZIP:
        return replace(GZIP, inner=_gzip_inner(path))
    return fmt


def identify_many(paths: Iterable[Path], *, use_fido: bool = True) -> dict[Path, FormatId]:
    """Identify every path: FITS by its definitive signature; others with fido first (when installed and
    ``use_fido``), then the built-in table (already computed: the FITS check is its first step). fido's
    signatures are loaded at the first file that is not FITS, so never for a delivery of FITS files."""
    matcher: _Fido | None = None
    out: dict[Path, FormatId] = {}
    for path in paths:
        quick = identify(path)
        if quick.puid == FITS.puid:  # the FITS signature is definitive: no need to run every PRONOM pattern
            out[path] = quick
            continue
        if matcher is None and use_fido:
            matcher = _fido()
            use_fido = matcher is not None  # not installed: asked once
        fmt = matcher.identify(path) if matcher else None
        if fmt is None:
            fmt = quick
        elif fmt.puid == GZIP.puid:
            fmt = replace(fmt, inner=_gzip_inner(path))
        out[path] = fmt
    return out


def fido_tool() -> str | None:
    """``fido 1.6.1 (PRONOM v109)`` when fido is installed, else None."""
    matcher = _fido()
    return matcher.tool if matcher else None


def check_formats(files: Mapping[str, FormatId], accepted: Collection[str] | None) -> list[Issue]:
    """FMT-W001 for each unidentified file; FMT-E001 for each format the agreement does not accept
    (``accepted`` None: any format). A gzip stream is accepted when it or its content is."""
    issues: list[Issue] = []
    for name, fmt in files.items():
        if fmt.puid is None:
            issues.append(issue(IssueCode.FORMAT_UNIDENTIFIED, f"format not identified by {fmt.tool}", name))
        elif accepted is not None and fmt.puid not in accepted and not (
                fmt.inner is not None and fmt.inner.puid in accepted):
            issues.append(issue(IssueCode.FORMAT_NOT_ACCEPTED, f"format {fmt.label} is not accepted by the "
                                f"agreement (accepted: {', '.join(sorted(accepted)) or 'none'})", name))
    return issues


# ---------------------------------------------------------------- built-in table


def _builtin(head: bytes, suffix: str) -> FormatId:
    if head.startswith(b"SIMPLE  =") and len(head) >= 30 and head[29:30] == b"T":
        return FITS
    if head.startswith(b"\x1f\x8b"):
        return GZIP
    if head.startswith(b"PK\x03\x04"):
        return ZIP
    if head.startswith(b"%PDF-"):
        puid = _PDF_VERSIONS.get(head[5:8])
        if puid and puid != PDF.puid:
            version = head[5:8].decode()
            return FormatId(puid, "application/pdf", f"Acrobat PDF {version} - Portable Document Format")
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(head) > 262 and head[257:262] == b"ustar":
        return TAR
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<?xml"):
        return XML
    if _is_text(head):
        if suffix == ".json" and stripped[:1] in (b"{", b"["):
            return JSON_
        return TEXT
    return UNKNOWN


def _is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a multibyte char cut at the end of the sample is fine
            return False
    return True


def _gzip_inner(path: Path) -> FormatId | None:
    """The built-in identification of the first decompressed bytes (bounded), or None if unreadable."""
    z = zlib.decompressobj(wbits=31)
    out = b""
    try:
        with open(path, "rb") as f:
            while len(out) < GZIP_PEEK and not z.eof and (chunk := f.read(16384)):
                out += z.decompress(chunk, GZIP_PEEK - len(out))
    except zlib.error:
        return None
    return _builtin(out[:2880], Path(path.stem).suffix.lower()) if out else None


# ---------------------------------------------------------------- fido, in-process


class _Fido:
    """One fido instance, reused (it loads 2246 PRONOM formats and compiles their patterns at start);
    calls are serialised. It is fido's ``Fido`` with an indexed ``match_formats``
    (``oais.formats.pronom_match``): same results, only the signatures that can match are tried
    (``indexed=False``: fido's own class, as before; the tests compare the two). Used as fido's
    command line ``-pronom_only -noextension`` would: fido's own container step (ZIP and OLE2
    container signatures) and its rules (a zero-byte file has no signature match)."""

    def __init__(self, *, indexed: bool = True) -> None:
        from fido import CONFIG_DIR, __version__
        from fido.fido import Fido
        from fido.versions import get_local_versions

        from oais.formats.pronom_match import IndexedFido

        versions = get_local_versions(CONFIG_DIR)
        self.tool = f"fido {__version__} (PRONOM v{versions.pronom_version})"
        self._lock = threading.Lock()
        self._found: tuple[list[Any], str] | None = None
        with contextlib.redirect_stderr(io.StringIO()):
            self._fido = (IndexedFido if indexed else Fido)(quiet=True, handle_matches=self._handle,
                                                             conf_dir=CONFIG_DIR,
                                                             format_files=[versions.pronom_signature])
            if isinstance(self._fido, IndexedFido):
                self._fido.signature_index()  # compile the patterns now (about 0.3 s), not on the first file

    def _handle(self, fullname: str, matches: list[Any], delta_t: float, matchtype: str = "") -> None:
        self._found = (matches, matchtype)

    def matches(self, path: Path) -> tuple[list[Any], str] | None:
        """What fido hands its match handler for ``path``: the (format element, signature name)
        matches and their kind ("signature", "container"); None if it hands nothing."""
        with self._lock:
            self._found = None
            with contextlib.redirect_stderr(io.StringIO()):  # fido prints notes ("Zero byte file") there
                self._fido.identify_file(str(path), extension=False)
            found, self._found = self._found, None
        return found

    def identify(self, path: Path) -> FormatId | None:
        found = self.matches(path)
        return self.format_id(found[0]) if found else None

    def format_id(self, matches: list[Any]) -> FormatId | None:
        """The first of fido's matches, the PUIDs of the others as alternatives."""
        if not matches:
            return None
        puids = [self._fido.get_puid(f) for f, _ in matches]
        first = matches[0][0]
        mimes = [m.text for m in first.findall("mime") if m.text]
        version = (first.findtext("version") or "").strip()
        name = (first.findtext("name") or "").strip() + (f" {version}" if version and version not in
                                                            (first.findtext("name") or "") else "")
        return FormatId(puids[0], mimes[0] if mimes else None, name, self.tool,
                        alternatives=tuple(dict.fromkeys(p for p in puids[1:] if p != puids[0])))


_FIDO: _Fido | None = None
_FIDO_TRIED = False
_FIDO_LOCK = threading.Lock()


def _fido() -> _Fido | None:
    global _FIDO, _FIDO_TRIED
    with _FIDO_LOCK:
        if not _FIDO_TRIED:
            _FIDO_TRIED = True
            try:
                _FIDO = _Fido()
            except ImportError:
                _FIDO = None
        return _FIDO


__all__ = ["FormatId", "UNKNOWN", "FITS", "GZIP", "ZIP", "TAR", "PDF", "PNG", "XML", "JSON_", "TEXT",
           "BUILTIN_TOOL", "identify", "identify_many", "is_fits", "check_formats", "fido_tool"]
