"""FITS validation and header keywords (astropy is imported lazily, inside the functions).

``check_fits(path)`` reports coded issues (FITS-E001..E008, W001/W002), the catalog keywords per HDU
and the CHECKSUM/DATASUM status per HDU. The file is only ever read. Choices (astropy 8.0.2,
Debian fitsverify 4.20):

* Structure (E001 not FITS, E002 truncated, E003 missing END, E006 bytes after the last HDU) comes
  from our own walk over the 2880-byte header blocks, data sizes from BITPIX/NAXISn/PCOUNT/GCOUNT:
  astropy silently merges a header whose END card is blanked with the next HDU's header, and only
  warns about trailing bytes or a short last block.
* astropy then reads every complete HDU with ``memmap=True`` (bounded memory: table columns one at
  a time, tile-compressed images decompressed in slabs of at most 64 MB through ``.section``); any
  astropy exception is FITS-E001 naming the HDU.
* A .gz file is first stream-decompressed to a private temporary file (at most
  ``max_uncompressed`` bytes): astropy and CFITSIO both hold a whole decompressed .gz in memory.
* CHECKSUM/DATASUM are verified on the HDU as stored (``disable_image_compression=True``): astropy's
  ``CompImageHDU.verify_checksum()`` checks the decompressed image and says 0 (bad) for the valid
  tile-compressed m13_*.fits files, whose stored binary tables verify 1 (ok).
* ``required_keywords`` are satisfied by a value in any HDU (the image header for a compressed
  image): EIT and HST put them in the primary header, JSOC's compressed AIA/HMI files in HDU 1.
* FITS-W001: astropy ``verify('warn')`` messages with the card text. fitsverify (when on PATH) reads
  the file as ``/dev/fd/<n>`` (CFITSIO interprets ``[``, ``@``, ``-`` in names), several files per
  run; each ``*** Error`` is FITS-E008, each ``*** Warning`` FITS-W002 (checksum mismatches are warnings there).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import tempfile
import time
import warnings
import zlib
from collections import deque
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from oais.domain.issues import Issue, IssueCode, Severity, issue

SEARCH_KEYWORDS = (
    "TELESCOP", "OBSRVTRY", "INSTRUME", "DETECTOR", "DATE-OBS", "DATE_OBS", "DATE-BEG", "DATE-END",
    "DATE-AVG", "EXPTIME", "XPOSURE", "WAVELNTH", "WAVEUNIT", "FILTER", "OBJECT", "OBS_MODE", "LEVEL",
    "VERSION", "BITPIX", "NAXIS", "BUNIT", "QUALITY", "DSUN_OBS", "HGLN_OBS", "HGLT_OBS", "ORIGIN",
)  # plus NAXIS1..NAXISn
BLOCK = 2880
MAX_MESSAGES = 20  # per file and per code for fitsverify messages; the rest is counted
SLAB_BYTES = 64 * 2**20
DEFAULT_MAX_UNCOMPRESSED = 16 * 2**30
FITSVERIFY_TIMEOUT = 600.0
FITSVERIFY_AHEAD = 64  # check_fits_many: files looked at (their fitsverify started) before one is read
FITSVERIFY_BATCH = 32  # check_fits_many: files per fitsverify process...
FITSVERIFY_BATCH_BYTES = 256 * 2**20  # ...and at most about this many bytes (a larger file runs alone)
_SUMMARY = re.compile(rb"Verification found (\d+) warning\(s\) and (\d+) error\(s\)")
_FV_VERSION = re.compile(rb"fitsverify (\S+) \(CFITSIO V(\S+)\)")
_FV_HDU = re.compile(rb"^=+ HDU (\d+):")


@dataclass(frozen=True, slots=True)
class FitsVerifyResult:
    """What fitsverify said: counts from its summary line (None when it gave none) and its messages."""

    version: str
    errors: int | None
    warnings: int | None
    messages: tuple[tuple[str, str], ...]  # ("error"|"warning", text)
    exit_status: int | None


@dataclass(frozen=True)
class FitsReport:
    issues: list[Issue]
    hdus: list[dict[str, Any]]  # {"index", "name", "keywords"}; the image header for compressed images
    checksum_status: dict[int, dict[str, str]]  # HDU index -> {"CHECKSUM"|"DATASUM": ok|bad|absent|unverified}
    fitsverify: FitsVerifyResult | None = None  # None: not run (not installed, or not asked)

    @property
    def ok(self) -> bool:
        return not any(i.severity is Severity.ERROR for i in self.issues)


def check_fits(path: Path, *, required_keywords: Sequence[str] = (), display_name: str | None = None,
               fitsverify: bool = True, max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
               fitsverify_timeout: float = FITSVERIFY_TIMEOUT, workdir: Path | None = None) -> FitsReport:
    """Validate one FITS file (plain or gzip-compressed); never modifies it, never raises for a bad file.

    Temporary files (a decompressed copy, the output of fitsverify) go to ``workdir``
    (default: $TMPDIR). fitsverify runs while astropy reads the file (see ``check_fits_many``).
    """
    options = _Options.make(required_keywords, fitsverify, max_uncompressed, fitsverify_timeout, workdir)
    check = _Check(path, display_name or path.name, options)
    if check.eligible():
        run = _FitsverifyRun(options)
        check.join(run)
        run.start()
    return check.finish()


def check_fits_many(files: Iterable[tuple[Path, str]], *, required_keywords: Sequence[str] = (),
                    fitsverify: bool = True, max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
                    fitsverify_timeout: float = FITSVERIFY_TIMEOUT, workdir: Path | None = None,
                    ahead: int = FITSVERIFY_AHEAD, batch: int = FITSVERIFY_BATCH) -> Generator[FitsReport, None, None]:
    """``check_fits`` of every ``(path, display name)``, the reports in the same order.

    fitsverify is another process, started ahead: the next ``ahead`` files are looked at before a file
    is read here, and their fitsverify starts, so that it runs on one core while the checks in Python
    run on the other. One fitsverify process verifies up to ``batch`` plain files (and at most
    ``FITSVERIFY_BATCH_BYTES``): started once per file, fitsverify spent about 9 ms of CPU starting
    for about 0.5 ms of verifying a 1 MiB file (docs/performance.md). Its report on each file is the
    one it gives that file alone (the same text, cut at each file's banner); a file it gave no verdict
    on within a batch (a crash, a timeout, output it could not have written for that file) is verified
    again alone. A gzip-compressed file's fitsverify starts only once that file is decompressed, when
    its turn comes, so that no more than one decompressed copy exists at a time. A file that cannot be
    read raises ``OSError`` at its turn, as ``check_fits`` does; fitsverify processes not waited for
    are stopped when the iteration ends or is abandoned.
    """
    options = _Options.make(required_keywords, fitsverify, max_uncompressed, fitsverify_timeout, workdir)
    pending: deque[_Check] = deque()
    runs: list[_FitsverifyRun] = []
    filling: _FitsverifyRun | None = None

    def next_report() -> FitsReport:
        nonlocal filling
        check = pending.popleft()
        if check.run is not None and not check.run.started:
            check.run.start()  # its batch is not full yet: the file's turn has come
            if check.run is filling:
                filling = None
        return check.finish()

    try:
        for path, name in files:
            check = _Check(path, name, options)
            if check.eligible():
                if filling is not None and filling.size + check.size > FITSVERIFY_BATCH_BYTES:
                    filling.start()  # a large file goes to a run of its own
                    filling = None
                if filling is None:
                    filling = _FitsverifyRun(options)
                    runs.append(filling)
                check.join(filling)
                if len(filling.paths) >= max(1, batch) or filling.size >= FITSVERIFY_BATCH_BYTES:
                    filling.start()
                    filling = None
            pending.append(check)
            if len(pending) > ahead:
                yield next_report()
            runs = [r for r in runs if not r.closed]
        while pending:
            yield next_report()
    finally:
        for run in runs:
            run.close()


@dataclass(frozen=True, slots=True)
class _Options:
    required: tuple[str, ...]
    executable: str | None  # fitsverify, when asked for and on PATH (looked up once per call)
    max_uncompressed: int
    timeout: float
    workdir: Path | None

    @property
    def fitsverify(self) -> bool:
        return self.executable is not None

    @staticmethod
    def make(required: Sequence[str], fitsverify: bool, max_uncompressed: int, timeout: float,
             workdir: Path | None) -> _Options:
        return _Options(tuple(required), shutil.which("fitsverify") if fitsverify else None, max_uncompressed,
                        timeout, workdir)


class _Check:
    """One file's check in two steps. Making it looks at the file (its size, whether it is gzip); a
    plain file's fitsverify is then run by a ``_FitsverifyRun`` it joins. ``finish()`` decompresses a
    .gz file into a temporary folder (then runs its fitsverify), walks the headers, runs the astropy
    checks, collects fitsverify's verdict and returns the report, removing the temporary folder. An
    error met while looking at the file (it cannot be read) is raised by ``finish()``."""

    def __init__(self, path: Path, name: str, options: _Options) -> None:
        self.path, self.name, self.options = path, name, options
        self.run: _FitsverifyRun | None = None
        self.index = 0  # in ``run``
        self.size = 0
        self.gzip = False
        self.failed: OSError | None = None
        try:
            self.size = path.stat().st_size
            self.gzip = _is_gzip(path)
        except OSError as exc:
            self.failed = exc

    def eligible(self) -> bool:
        """Whether fitsverify should read the file as it is (asked for, readable, not gzip)."""
        return self.options.fitsverify and self.failed is None and not self.gzip

    def join(self, run: _FitsverifyRun) -> None:
        self.run, self.index = run, run.add(self.path, self.size)

    def finish(self) -> FitsReport:
        if self.failed is not None:
            raise self.failed
        if not self.gzip:
            return self._finish(self.path, [], None)
        with tempfile.TemporaryDirectory(prefix="oais-fits-", dir=self.options.workdir) as tmp:
            target = Path(tmp, "decompressed.fits")
            gz = _gunzip(self.path, target, self.options.max_uncompressed)
            issues = [issue(gz[0], gz[1], self.name)] if gz else []
            if gz and gz[0] is IssueCode.FITS_UNREADABLE:  # truncated or followed by junk: check the rest
                return FitsReport(issues, [], {})
            if self.options.fitsverify:
                self.run = _FitsverifyRun(self.options)
                self.index = self.run.add(target, target.stat().st_size)
                self.run.start()
            return self._finish(target, issues, gz)

    def _finish(self, target: Path, issues: list[Issue], gz: tuple[IssueCode, str] | None) -> FitsReport:
        name, options = self.name, self.options
        try:
            spans, problem, sound = _walk(target)
            if problem and not (gz and gz[0] is IssueCode.FITS_TRUNCATED):  # a cut stream explains it all
                issues.append(issue(problem[0], problem[1], name))
            hdus: list[dict[str, Any]] = []
            sums: dict[int, dict[str, str]] = {}
            if spans:
                issues.extend(_astropy_checks(target, spans, sound, options.required, name, hdus, sums,
                                              structure_known_bad=problem is not None))
            result = None
            if self.run is not None:
                result = self.run.result(self.index)
                issues.extend(_fitsverify_issues(result, name))
            return FitsReport(issues, hdus, sums, result)
        finally:
            if self.run is not None:
                self.run.done(self.index)


def header_extract(path: Path) -> dict[str, Any]:
    """Keywords worth searching, per HDU, as JSON-ready values. Never raises for a bad file:
    returns ``{"error": ..., "hdus": [...]}`` instead (validation is ``check_fits``)."""
    from astropy.io import fits

    hdus: list[dict[str, Any]] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False, lazy_load_hdus=True, disable_image_compression=True,
                           do_not_scale_image_data=True) as hdul:
                for index, hdu in enumerate(hdul):
                    try:
                        image = _headers(hdu)[1]
                    except Exception:  # noqa: BLE001 - an undecodable compressed header: keep the stored one
                        image = hdu.header
                    hdus.append({"index": index, "name": hdu.name, "keywords": extract_keywords(image)})
    except Exception as exc:  # noqa: BLE001 - any astropy failure is reported, not raised
        return {"error": f"{type(exc).__name__}: {exc}", "hdus": hdus}
    return {"hdus": hdus}


def extract_keywords(header: Any) -> dict[str, Any]:
    """The catalog keywords of one astropy ``Header`` (names kept as written: DATE_OBS stays DATE_OBS)."""
    keys = list(SEARCH_KEYWORDS)
    naxis = header.get("NAXIS")
    if isinstance(naxis, int) and not isinstance(naxis, bool):
        keys += [f"NAXIS{n}" for n in range(1, min(naxis, 999) + 1)]
    return {k: _jsonable(header[k]) for k in keys if k in header}


# ---------------------------------------------------------------- structure, our own walk


def _walk(path: Path) -> tuple[int, tuple[IssueCode, str] | None, int]:
    """HDUs with a complete header, the first structural problem, and how many HDUs are complete."""
    size = path.stat().st_size
    spans = 0  # HDUs whose header was read

    def stop(code: IssueCode, message: str, sound: int) -> tuple[int, tuple[IssueCode, str], int]:
        return spans, (code, message), sound

    with open(path, "rb") as f:
        pos = 0
        while pos < size:
            index = spans
            f.seek(pos)
            block = f.read(BLOCK)
            if index == 0 and block.startswith(b"SIMPLE  =") and block[10:30].strip() != b"T":
                return stop(IssueCode.FITS_UNREADABLE, "SIMPLE is not T: not conforming to the FITS standard", 0)
            if not block.startswith(b"SIMPLE  =" if index == 0 else b"XTENSION="):
                if index == 0:
                    return stop(IssueCode.FITS_UNREADABLE, "not a FITS file: it does not begin with SIMPLE", 0)
                return stop(IssueCode.FITS_TRAILING_BYTES, f"{size - pos} bytes after the last HDU (HDU "
                            f"{index - 1} ends at byte {pos}, the file at byte {size})", index)
            cards: dict[str, str] = {}
            hpos = pos
            while not _scan_block(block, cards):
                if len(block) < BLOCK:
                    return stop(IssueCode.FITS_TRUNCATED, f"HDU {index}: the file ends inside the header, "
                                f"in a partial block (byte {size})", index)
                hpos += BLOCK
                block = f.read(BLOCK)
                if not block:
                    return stop(IssueCode.FITS_MISSING_END, f"HDU {index}: header missing END card (none "
                                f"before the end of the file, byte {size})", index)
                if block.startswith((b"XTENSION=", b"SIMPLE  =")):
                    return stop(IssueCode.FITS_MISSING_END, f"HDU {index}: header missing END card (the header "
                                f"from byte {pos} runs into another header at byte {hpos})", index)
            if len(block) < BLOCK:
                return stop(IssueCode.FITS_TRUNCATED, f"HDU {index}: the file ends inside the header's last "
                            f"block (byte {size})", index)
            try:
                nbytes = _data_size(cards, primary=index == 0)
            except ValueError as exc:
                return stop(IssueCode.FITS_UNREADABLE, f"HDU {index}: {exc}", index)
            spans += 1
            end = hpos + BLOCK + nbytes
            if end > size:
                return stop(IssueCode.FITS_TRUNCATED, f"HDU {index}: truncated data unit: {nbytes} bytes from "
                            f"byte {hpos + BLOCK}, the file ends at byte {size} ({end - size} missing)", index)
            pos = end + (-end % BLOCK)
            if pos > size:
                return stop(IssueCode.FITS_TRUNCATED, f"HDU {index}: the last block is not padded to {BLOCK} "
                            f"bytes ({pos - size} bytes missing; the data are complete)", index + 1)
    return spans, None, spans


def _scan_block(block: bytes, cards: dict[str, str]) -> bool:
    """Collect the mandatory keywords of a header block; True when it holds the END card."""
    for i in range(0, len(block) - 79, 80):
        key = block[i:i + 8]
        if key == b"END     ":
            return True
        if block[i + 8:i + 10] == b"= ":
            k = key.decode("ascii", "replace").strip()
            if k in ("BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "GROUPS") or k.startswith("NAXIS"):
                cards.setdefault(k, block[i + 10:i + 80].split(b"/", 1)[0].decode("ascii", "replace").strip())
    return False


def _data_size(cards: dict[str, str], *, primary: bool) -> int:
    """Data bytes of an HDU (FITS 4.0 §4.4.1.1 and §6): |BITPIX|×GCOUNT×(PCOUNT+NAXIS1×…×NAXISm)/8."""
    def integer(key: str, default: int | None = None) -> int:
        if key not in cards:
            if default is None:
                raise ValueError(f"mandatory keyword {key} missing")
            return default
        try:
            return int(cards[key])
        except ValueError:
            raise ValueError(f"mandatory keyword {key} has no integer value: {cards[key]!r}") from None

    bitpix, naxis = integer("BITPIX"), integer("NAXIS")
    if bitpix not in (8, 16, 32, 64, -32, -64) or not 0 <= naxis <= 999:
        raise ValueError(f"illegal BITPIX {bitpix} or NAXIS {naxis}")
    if naxis == 0:
        return 0
    axes = [integer(f"NAXIS{n}") for n in range(1, naxis + 1)]
    if any(a < 0 for a in axes):
        raise ValueError(f"negative axis length in {axes}")
    groups = primary and axes[0] == 0 and cards.get("GROUPS") == "T"
    count = 1
    for a in axes[1:] if groups else axes:
        count *= a
    pcount, gcount = integer("PCOUNT", 0), integer("GCOUNT", 1)
    if primary and not groups:
        pcount, gcount = 0, 1
    return abs(bitpix) // 8 * gcount * (pcount + count)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _gunzip(path: Path, target: Path, limit: int) -> tuple[IssueCode, str] | None:
    """Stream-decompress (concatenated members allowed); defects of the stream are returned as issues,
    local I/O errors are raised."""
    done = 0
    z = zlib.decompressobj(wbits=31)
    with open(path, "rb") as src, open(target, "wb") as dst:
        while chunk := z.unused_data or src.read(2**20):
            if z.eof:  # a member ended: another member, or bytes that are no gzip at all
                if not chunk.startswith(b"\x1f\x8b"):
                    rest = len(chunk) + len(src.read())
                    dst.close()
                    return IssueCode.FITS_TRAILING_BYTES, f"{rest} bytes after the end of the gzip stream"
                z = zlib.decompressobj(wbits=31)
            try:
                out = z.decompress(chunk, 2**20)
                while out:
                    done += len(out)
                    if done > limit:
                        return IssueCode.FITS_UNREADABLE, f"gzip stream expands past {limit} bytes; not checked"
                    dst.write(out)
                    out = z.decompress(z.unconsumed_tail, 2**20) if z.unconsumed_tail else b""
            except zlib.error as exc:
                return IssueCode.FITS_UNREADABLE, f"unreadable gzip stream after {done} bytes: {exc}"
    if not z.eof:
        return IssueCode.FITS_TRUNCATED, f"truncated gzip stream (ends after {done} decompressed bytes)"
    return None


# ---------------------------------------------------------------- astropy: headers, checksums, data, verify


def _astropy_checks(path: Path, n_headers: int, sound: int, required: Sequence[str], name: str,
                    hdus: list[dict[str, Any]], sums: dict[int, dict[str, str]], *,
                    structure_known_bad: bool) -> list[Issue]:
    from astropy.io import fits

    issues: list[Issue] = []
    present: set[str] = set()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            hdul = fits.open(path, mode="readonly", memmap=True, checksum=False, lazy_load_hdus=True,
                             disable_image_compression=True, do_not_scale_image_data=True)
        except Exception as exc:  # noqa: BLE001 - any astropy failure is a finding about the file
            if not structure_known_bad:
                code = IssueCode.FITS_MISSING_END if "END card" in str(exc) else IssueCode.FITS_UNREADABLE
                issues.append(issue(code, f"astropy cannot open it: {type(exc).__name__}: {exc}", name))
            return issues
        with hdul:
            for index in range(n_headers):
                try:
                    hdu = hdul[index]
                    header, image = _headers(hdu)
                    hdus.append({"index": index, "name": hdu.name, "keywords": extract_keywords(image)})
                    present.update(k for k in required if _has_value(image, k) or _has_value(header, k))
                    if index >= sound:
                        sums[index] = {k: "unverified" if k in header else "absent" for k in ("CHECKSUM", "DATASUM")}
                        continue
                    sums[index] = _checksums(hdu, index, name, issues)
                    _read_data(hdu)
                    issues.extend(_verify_issues(hdu, index, name))
                except Exception as exc:  # noqa: BLE001 - reported, naming the HDU
                    issues.append(issue(IssueCode.FITS_UNREADABLE, f"HDU {index}: astropy cannot read it: "
                                        f"{type(exc).__name__}: {exc}", name))
                    if len(hdus) <= index:
                        break
    for k in required:
        if k not in present:
            issues.append(issue(IssueCode.FITS_REQUIRED_KEYWORD, f"required keyword {k} is missing or has no "
                                "value in every HDU", name))
    return issues


def _compressed(hdu: Any) -> Any:
    """The image HDU of a tile-compressed binary table as stored, or None (not one, or astropy < 7
    without ``CompImageHDU(bintable=...)``: then keywords come from the table and tiles are not read)."""
    if hdu.header.get("ZIMAGE") is not True or hdu.header.get("XTENSION") != "BINTABLE":
        return None
    from astropy.io import fits

    try:
        return fits.CompImageHDU(bintable=hdu, do_not_scale_image_data=True)
    except TypeError as exc:
        if "bintable" in str(exc):
            return None
        raise


def _headers(hdu: Any) -> tuple[Any, Any]:
    """(header as stored, header of the image): they differ for a tile-compressed image."""
    comp = _compressed(hdu)
    return hdu.header, hdu.header if comp is None else comp.header


def _checksums(hdu: Any, index: int, name: str, issues: list[Issue]) -> dict[str, str]:
    status = {}
    for key, verify, code in (("CHECKSUM", hdu.verify_checksum, IssueCode.FITS_CHECKSUM),
                              ("DATASUM", hdu.verify_datasum, IssueCode.FITS_DATASUM)):
        if key not in hdu.header:
            status[key] = "absent"
            continue
        result = verify()  # 1 ok, 0 bad, 2 missing
        status[key] = {1: "ok", 0: "bad"}.get(result, "absent")
        if result == 0:
            what = "HDU (header and data)" if key == "CHECKSUM" else "data unit"
            issues.append(issue(code, f"HDU {index} ({hdu.name or 'PRIMARY'}): {key} "
                                f"{hdu.header[key]!r} does not match the {what}", name))
    return status


def _read_data(hdu: Any) -> None:
    """Make astropy interpret every data unit (mapped, so bounded): columns one by one, compressed tiles
    in slabs. Image bytes are read by the checksum verification when there is one; their length was
    checked by the walk."""
    from astropy.io import fits

    if (comp := _compressed(hdu)) is not None:
        shape = comp.shape
        if shape:
            row = max(1, abs(comp.header["BITPIX"]) // 8)
            for n in shape[1:]:
                row *= n
            step = max(1, SLAB_BYTES // row)
            for start in range(0, shape[0], step):
                comp.section[start:start + step]
        return
    data = hdu.data
    if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)) and data is not None:
        for column in data.columns.names:
            data.field(column)
    del data


def _verify_issues(hdu: Any, index: int, name: str) -> list[Issue]:
    """astropy ``verify('warn')`` messages, with the card they are about."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hdu.verify("warn")
    out: list[Issue] = []
    card: int | None = None
    card_indent = 0
    for w in caught:
        for line in str(w.message).splitlines():
            text = line.strip()
            indent = len(line) - len(line.lstrip())
            if not text or text.startswith(("Verification reported errors", "Note: astropy")) \
                    or re.fullmatch(r"HDU \d+:", text):
                continue
            m = re.fullmatch(r"Card (\d+):", text)
            if m:
                card, card_indent = int(m[1]), indent
                continue
            if card is not None and indent <= card_indent:
                card = None
            where = ""
            if card is not None and card < len(hdu.header.cards):
                where = f" (card {card + 1}: {hdu.header.cards[card].image.rstrip()!r})"
            out.append(issue(IssueCode.FITS_VERIFY, f"HDU {index}: {text}{where}", name))
    return out


def _has_value(header: Any, key: str) -> bool:
    if key not in header:
        return False
    value = header[key]
    return _jsonable(value) is not None and not (isinstance(value, str) and not value.strip())


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if type(value).__name__ == "Undefined":
        return None
    return str(value)


# ---------------------------------------------------------------- fitsverify


class _FitsverifyRun:
    """One fitsverify process over one or more plain files: ``add`` them, ``start`` it, then ask
    ``result(index)`` for each and say ``done(index)``; the last ``done`` (or ``close``) ends the run:
    it stops the process if it still runs and drops its output.

    fitsverify reads each file as ``/dev/fd/<n>``, a descriptor this process opened and hands down:
    CFITSIO interprets ``[``, ``(``, ``+``, ``@``, ``-`` in names, and a name of this form means the
    file itself, with no link to make and remove (a symbolic link per file, made and removed, cost the
    ingest of 2,000 FITS files about 1.5 s). It writes to an unnamed temporary file, not to a pipe, so
    that a long output never holds it up while nobody reads it. The timeout counts from the start, for
    the whole run. A run of several files is cut into one report per file at each file's banner; a
    file whose part is not a whole report (see ``_reports``) is verified again alone. A run
    of one file says what fitsverify said, exit status included; in a run of several, a file's exit
    status is not known (fitsverify exits with the sum of every file's counts)."""

    def __init__(self, options: _Options) -> None:
        self.options = options
        self.paths: list[Path] = []
        self.size = 0
        self.started = self.closed = False
        self.output: IO[bytes] | None = None
        self.names: dict[int, bytes] = {}  # index -> the name fitsverify was given for it
        self.proc: subprocess.Popen[bytes] | None = None
        self.deadline = 0.0
        self.results: list[FitsVerifyResult | None] | None = None
        self.failed: dict[int, OSError] = {}  # raised for that file, at its turn
        self.waiting: set[int] = set()

    def add(self, path: Path, size: int) -> int:
        assert not self.started
        self.paths.append(path)
        self.size += size
        self.waiting.add(len(self.paths) - 1)
        return len(self.paths) - 1

    def start(self) -> None:
        """Start fitsverify on the files that can be opened (a file that cannot, or a run that cannot
        start, is an ``OSError`` raised by ``result`` for that file)."""
        self.started = True
        fds: dict[int, int] = {}
        try:
            for i, path in enumerate(self.paths):
                try:
                    fds[i] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as exc:
                    self.failed[i] = exc
            self.names = {i: f"/dev/fd/{fd}".encode() for i, fd in fds.items()}
            if fds:
                assert self.options.executable is not None  # runs are made only when fitsverify is on PATH
                self.output = tempfile.TemporaryFile(dir=self.options.workdir)
                self.proc = subprocess.Popen(
                    [self.options.executable, *(name.decode() for name in self.names.values())],
                    stdout=self.output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, pass_fds=list(fds.values()))
        except OSError as exc:
            self.failed.update((i, exc) for i in fds)
        finally:
            for fd in fds.values():
                os.close(fd)
        self.deadline = time.monotonic() + self.options.timeout

    def result(self, index: int) -> FitsVerifyResult:
        if index in self.failed:
            raise self.failed[index]
        if self.results is None:
            self.results = self._collect()
        found = self.results[index]
        if found is not None:
            return found
        alone = _FitsverifyRun(self.options)  # no verdict on this file among the others
        alone.add(self.paths[index], 0)
        try:
            alone.start()
            return alone.result(0)
        finally:
            alone.close()

    def _collect(self) -> list[FitsVerifyResult | None]:
        assert self.proc is not None and self.output is not None
        try:
            _wait(self.proc, max(0.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
            if len(self.paths) == 1:
                return [FitsVerifyResult("fitsverify", None, None,
                                         (("warning", f"no verdict within {self.options.timeout:g} s"),), None)]
        self.output.seek(0)
        output = self.output.read()
        found: list[FitsVerifyResult | None] = [None] * len(self.paths)
        if len(self.paths) == 1:
            found[0] = _parse_fitsverify(output, self.names[0], self.proc.returncode)
            return found
        indexes = list(self.names)
        for i, part in zip(indexes, _reports(output, list(self.names.values())), strict=True):
            if part is not None:
                found[i] = _parse_fitsverify(part, self.names[i], None)
        return found

    def stop(self) -> None:
        """Stop the process if it still runs (the verdict is not wanted any more, or is too late)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def done(self, index: int) -> None:
        self.waiting.discard(index)
        if not self.waiting:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.stop()
        finally:
            if self.output is not None:
                self.output.close()


_BANNER = re.compile(rb"(?m)^ \n(?= *fitsverify \S+ \(CFITSIO V)")
_FILE_LINE = re.compile(rb"(?m)^File: (.*)$")
_ENDING = re.compile(rb"(?m)^\*{4} (?:Verification found \d+ warning\(s\) and \d+ error\(s\)\.|Abort Verification: "
                     rb"Fatal Error\.) \*{4}\s*\Z")  # the last line of a whole report


def _reports(output: bytes, names: Sequence[bytes]) -> list[bytes | None]:
    """The report on each file from the output of one run over the files given these ``names``: the
    text from the banner before its ``File:`` line to the next banner, as fitsverify writes it for
    that file alone. None for a file with no whole report (one that does not end with fitsverify's
    summary or abort line: text quoted from a file cannot end a report early); None for all when the
    ``File:`` lines are not the names, in order, once each, one between two banners (a report quoting
    such a line, or a banner, cannot be trusted to be cut right)."""
    nothing: list[bytes | None] = [None] * len(names)
    listed = _FILE_LINE.findall(output)
    if listed != list(names[:len(listed)]):
        return nothing
    where = {name: i for i, name in enumerate(names)}
    starts = [m.start() for m in _BANNER.finditer(output)] + [len(output)]
    found = list(nothing)
    for a, b in zip(starts, starts[1:]):
        part = output[a:b]
        named = _FILE_LINE.findall(part)
        if len(named) > 1:  # two reports not cut apart
            return nothing
        if named and _ENDING.search(part):
            found[where[named[0]]] = part
    return found


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """``proc.wait(timeout)``, woken by the process's end (a Linux pidfd) rather than by polling: with a
    timeout, ``Popen.wait`` sleeps between polls (0.5 ms, doubling up to 50 ms), about 4 ms lost per
    short fitsverify run (200 files of the benchmark, ``check_fits_many(ahead=0)``: 2.19-2.42 s with
    those polls, 1.50-1.72 s with the pidfd)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux 5.3+, or the process is already waited for
        proc.wait(timeout)
        return
    try:
        waiting = select.poll()
        waiting.register(fd, select.POLLIN)
        if not waiting.poll(timeout * 1000):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    proc.wait()


def _parse_fitsverify(output: bytes, name: bytes, exit_status: int | None) -> FitsVerifyResult:
    out = re.sub(re.escape(name) + rb"(?![0-9])", b"<file>", output)  # /dev/fd/1, not the start of /dev/fd/12
    m = _FV_VERSION.search(out)
    version = f"fitsverify {m[1].decode()} (CFITSIO {m[2].decode()})" if m else "fitsverify"
    messages: list[list[str]] = []  # [severity, text]
    hdu: int | None = None
    continued = False
    for raw in out.splitlines():
        line = re.sub(r"[^\x20-\x7e]", "?", raw.decode("ascii", "replace"))
        if h := _FV_HDU.match(raw):
            hdu = int(h[1]) - 1  # fitsverify counts HDUs from 1, the archive from 0 (as astropy does)
        if line.startswith(("*** Error:", "*** Warning:")):
            severity, text = line[4:].split(":", 1)
            messages.append([severity.lower(), (f"HDU {hdu}: " if hdu is not None else "") + text.strip()])
            continued = True
        elif continued and line.startswith("  ") and line.strip():
            messages[-1][1] += " " + line.strip()
        else:
            continued = False
        if "Abort Verification" in line:
            messages.append(["error", "verification aborted: " + line.strip("* ")])
    s = _SUMMARY.search(out)
    warns, errs = (int(s[1]), int(s[2])) if s else (None, None)
    return FitsVerifyResult(version, errs, warns, tuple((m[0], m[1]) for m in messages), exit_status)


def _fitsverify_issues(result: FitsVerifyResult, name: str) -> list[Issue]:
    issues: list[Issue] = []
    for severity, code in (("error", IssueCode.FITS_FITSVERIFY_ERROR), ("warning", IssueCode.FITS_FITSVERIFY)):
        texts = [t for s, t in result.messages if s == severity]
        counted = result.errors if severity == "error" else result.warnings
        issues.extend(issue(code, f"{result.version}: {t[:500]}", name) for t in texts[:MAX_MESSAGES])
        rest = max(len(texts), counted or 0) - min(len(texts), MAX_MESSAGES)
        if rest > 0:
            issues.append(issue(code, f"{result.version}: {rest} more {severity}(s)", name))
    if result.errors is None and not any(s == "error" for s, _ in result.messages) and not issues:
        issues.append(issue(IssueCode.FITS_FITSVERIFY, f"{result.version} gave no verdict "
                            f"(exit status {result.exit_status})", name))
    return issues


__all__ = ["FitsReport", "FitsVerifyResult", "SEARCH_KEYWORDS", "check_fits", "check_fits_many", "extract_keywords",
           "header_extract"]
