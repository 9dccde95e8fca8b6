"""Reading BagIt tag files into values and coded issues (text only, no file system access).

- ``parse_declaration``: ``bagit.txt`` (RFC 8493 §2.1.1): UTF-8 without BOM, exactly the two lines
  ``BagIt-Version: M.N`` and ``Tag-File-Character-Encoding: ENC`` in that order (SIP-E020).
- ``decode_tag``: any other tag file, in the declared encoding (a UTF-16 BOM is consumed by the codec).
- ``parse_info``: ``bag-info.txt`` (§2.2.2): ``Label: value`` lines, continuation lines indented with
  spaces or tabs, repeated labels kept in order. From BagIt 1.0 a label that starts or ends with whitespace
  is an error (SIP-E021); before 1.0 it is tolerated with a warning (SIP-W010).
- ``parse_manifest`` / ``parse_fetch``: ``checksum filepath`` and ``url length filepath`` lines (§2.1.3,
  §2.2.3) with ``%0A``, ``%0D`` and ``%25`` decoded; a md5sum ``*`` binary marker is ignored (SIP-W010);
  ``./``, ``//`` and ``/./`` are read in canonical form (SIP-W014); absolute, ``~``, Windows-absolute and
  ``..`` paths, and payload or fetch paths outside ``data/``, leave the bag (SIP-E016).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from oais.domain.issues import Issue, IssueCode, issue

KNOWN_VERSIONS = frozenset({(0, 93), (0, 94), (0, 95), (0, 96), (0, 97), (1, 0)})
#: BagIt algorithm name -> hashlib name
HASHLIB = {"md5": "md5", "sha1": "sha1", "sha224": "sha224", "sha256": "sha256", "sha384": "sha384",
           "sha512": "sha512", "sha3-224": "sha3_224", "sha3-256": "sha3_256", "sha3-384": "sha3_384",
           "sha3-512": "sha3_512", "blake2b": "blake2b", "blake2s": "blake2s"}
WEAK = frozenset({"md5", "sha1"})

_VERSION = re.compile(r"BagIt-Version: ([0-9]+)\.([0-9]+)([ \t]*)")
_VERSION_LOOSE = re.compile(r"\s*BagIt-Version\s*:\s*(.*?)\s*")
_ENCODING = re.compile(r"Tag-File-Character-Encoding: (\S+)([ \t]*)")
_ENCODING_LOOSE = re.compile(r"\s*Tag-File-Character-Encoding\s*:\s*(\S*)\s*")
_MANIFEST_LINE = re.compile(r"(\S+)[ \t]+(.+)")
_FETCH_LINE = re.compile(r"(\S+)[ \t]+(\S+)[ \t]+(.+)")
_PERCENT = re.compile(r"%(0[aAdD]|25)")
_WINDOWS_ABSOLUTE = re.compile(r"[A-Za-z]:|\\\\|%[^%/\\]+%")
_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class Declaration:
    version: str | None  # "M.N" as read (also when the line is malformed but a value can be made out)
    version_tuple: tuple[int, int] | None
    encoding: str | None  # as declared
    codec: str  # the Python codec used for the other tag files ("utf-8" when none is usable)


@dataclass(frozen=True, slots=True)
class Entry:
    path: str  # canonical, percent-decoded, relative to the bag
    value: str  # the digest (lower case) in a manifest, the URL in fetch.txt
    line: int
    length: int | None = None  # fetch.txt only ('-' gives None)


def canonical_algorithm(name: str) -> str:
    """``SHA-256``, ``sha_256`` -> ``sha256``; ``SHA3_256`` -> ``sha3-256``."""
    n = name.strip().lower().replace("_", "-")
    return "sha" + n[4:] if n.startswith("sha-") else n


def lines_of(text: str) -> list[str]:
    """Lines ended by LF, CR or CRLF only (``str.splitlines`` also splits on U+2028, FF, ...)."""
    lines = _NEWLINE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_declaration(raw: bytes, rel: str = "bagit.txt") -> tuple[Declaration, list[Issue]]:
    out: list[Issue] = []

    def bad(message: str) -> None:
        out.append(issue(IssueCode.BAG_DECLARATION, f"{message} (RFC 8493 §2.1.1)", rel))

    for bom in (codecs.BOM_UTF8, codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE):
        if raw.startswith(bom):
            bad("starts with a byte-order mark (BOM); bagit.txt MUST be UTF-8 without BOM")
            raw = raw[len(bom):]
            break
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad(f"is not UTF-8 ({exc.reason} at byte {exc.start})")
        text = raw.decode("utf-8", "replace")
    lines = lines_of(text)
    while lines and not lines[-1].strip():
        lines.pop()
    version: str | None = None
    vt: tuple[int, int] | None = None
    first = lines[0] if lines else ""
    if m := _VERSION.fullmatch(first):
        vt = (int(m[1]), int(m[2]))
        version = f"{m[1]}.{m[2]}"
        if m[3]:
            out.append(issue(IssueCode.BAG_WARNING, "trailing whitespace after the BagIt-Version value", rel))
    elif m := _VERSION_LOOSE.fullmatch(first):
        if n := re.fullmatch(r"([0-9]+)\.([0-9]+)", m[1]):
            vt, version = (int(n[1]), int(n[2])), m[1]
            bad(f"whitespace around the label or the colon in {first!r}: a label MUST NOT start or end "
                "with whitespace and the colon is followed by exactly one space")
        else:
            bad(f"invalid version number {m[1]!r}: expected 'BagIt-Version: M.N'")
    else:
        bad(f"the first line must be 'BagIt-Version: M.N', found {first!r}" if lines else "is empty")
    if vt is not None and vt not in KNOWN_VERSIONS:
        out.append(issue(IssueCode.BAG_WARNING, f"unknown BagIt version {version}: checked with the 1.0 rules", rel))
    encoding: str | None = None
    codec = "utf-8"
    second = lines[1] if len(lines) > 1 else None
    m = _ENCODING.fullmatch(second or "") or _ENCODING_LOOSE.fullmatch(second or "")
    if second is None:
        bad("the 'Tag-File-Character-Encoding: ENCODING' line is missing")
    elif not m or not m[1]:
        bad(f"the second line must be 'Tag-File-Character-Encoding: ENCODING', found {second!r}")
    else:
        encoding = m[1]
        if m.re is _ENCODING_LOOSE:
            bad(f"whitespace around the label or the colon in {second!r}")
        elif m[2]:
            out.append(issue(IssueCode.BAG_WARNING, "trailing whitespace after the encoding name", rel))
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            bad(f"unknown character encoding {encoding!r}")
    for extra in lines[2:]:
        bad(f"unexpected line {extra!r}: bagit.txt holds exactly two lines")
    return Declaration(version, vt, encoding, codec), out


def decode_tag(raw: bytes, codec: str, rel: str, code: IssueCode) -> tuple[str | None, list[Issue]]:
    """A tag file's text in the declared encoding, or None (with an issue) when it cannot be decoded."""
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        return None, [issue(code, f"cannot be decoded as {codec} ({exc.reason} at byte {exc.start})", rel)]
    if text.startswith("\ufeff"):
        return text[1:], [issue(IssueCode.BAG_WARNING, "starts with a byte-order mark (ignored)", rel)]
    return text, []


def parse_info(text: str, rel: str, strict: bool) -> tuple[list[tuple[str, str]], list[Issue]]:
    """``bag-info.txt`` items in order. ``strict``: BagIt 1.0 rules for whitespace around labels."""
    items: list[tuple[str, str]] = []
    out: list[Issue] = []
    loose: list[int] = []
    blank = 0
    for n, line in enumerate(lines_of(text), 1):
        if not line.strip():
            blank += 1
        elif line[0] in " \t":
            if not items:
                out.append(issue(IssueCode.BAG_INFO, f"line {n}: continuation line without a label before it "
                                 "(RFC 8493 §2.2.2)", rel))
            else:
                label, value = items[-1]
                items[-1] = (label, f"{value} {line.strip()}".strip())
        else:
            label, colon, value = line.partition(":")
            if not colon or not label.strip():
                out.append(issue(IssueCode.BAG_INFO, f"line {n}: {line!r} is not 'Label: value' "
                                 "(RFC 8493 §2.2.2)", rel))
                continue
            if label != label.rstrip() or (value and value[0] not in " \t"):
                if strict:
                    out.append(issue(IssueCode.BAG_INFO, f"line {n}: {line!r}: a label MUST NOT end with "
                                     "whitespace and the colon is followed by one space or tab "
                                     "(RFC 8493 §2.2.2)", rel))
                else:
                    loose.append(n)
            items.append((label.strip(), value.strip()))
    if loose:
        out.append(issue(IssueCode.BAG_WARNING, f"lines {', '.join(map(str, loose))}: whitespace around the "
                         "label or no space after the colon (tolerated before BagIt 1.0)", rel))
    if blank:
        out.append(issue(IssueCode.BAG_WARNING, f"{blank} empty line(s) ignored", rel))
    return items, out


def decode_path(path: str) -> str:
    """RFC 8493 §2.1.3: only ``%0A``, ``%0D`` and ``%25`` are percent-encoded (decoded in one pass)."""
    return _PERCENT.sub(lambda m: {"0a": "\n", "0d": "\r", "25": "%"}[m[1].lower()], path)


def canonical_path(path: str, *, payload: bool) -> tuple[str, str | None]:
    """``(canonical path, why it leaves the bag or the payload, or None)``."""
    if path.startswith("/"):
        return path, "an absolute path"
    if path.startswith("~"):
        return path, "a home-folder shortcut ('~' or '~user')"
    if _WINDOWS_ABSOLUTE.match(path):
        return path, "a Windows drive, UNC path or %VARIABLE%"
    if ".." in re.split(r"[/\\]", path):
        return path, "a path with a '..' component"
    canon = "/".join(p for p in path.split("/") if p not in ("", "."))
    if payload and not canon.startswith("data/"):
        return canon, "outside the payload folder data/"
    return canon, None


def _entries(text: str, rel: str, pattern: re.Pattern[str], what: str, *,
             payload: bool) -> tuple[list[tuple[int, re.Match[str], str]], list[Issue]]:
    """Lines that match ``pattern``, with their canonical path (the pattern's last group)."""
    out: list[Issue] = []
    found: list[tuple[int, re.Match[str], str]] = []
    stars: list[int] = []
    rewritten: list[str] = []
    for n, line in enumerate(lines_of(text), 1):
        if not line.strip():
            continue
        m = pattern.fullmatch(line.lstrip(" \t"))
        if not m:
            out.append(issue(IssueCode.BAG_MANIFEST_SYNTAX, f"line {n}: {line!r} is not '{what}' "
                             "(RFC 8493 §2.1.3, §2.2.3)", rel))
            continue
        raw = m[m.re.groups]
        if raw.startswith("*") and pattern is _MANIFEST_LINE:
            raw = raw[1:]
            stars.append(n)
        path = decode_path(raw)
        canon, escape = canonical_path(path, payload=payload)
        if escape:
            out.append(issue(IssueCode.MANIFEST_ESCAPE, f"line {n}: {path!r} is {escape}: "
                             f"{'payload and fetch paths stay in data/' if payload else 'paths stay in the bag'} "
                             "(RFC 8493 §2.1.3, §7.2)", rel))
            continue
        if canon != path:
            rewritten.append(f"{path!r} read as {canon!r}")
        found.append((n, m, canon))
    if stars:
        out.append(issue(IssueCode.BAG_WARNING, f"{len(stars)} line(s) carry the md5sum binary-mode marker '*' "
                         f"before the path (first: line {stars[0]}); made with md5sum-style tools, the marker "
                         "is ignored", rel))
    if rewritten:
        out.append(issue(IssueCode.BAG_RELATIVE_PATH, f"{len(rewritten)} path(s) not in canonical form (no './', "
                         f"'//' or '/./'), e.g. {rewritten[0]}", rel))
    return found, out


def parse_manifest(text: str, rel: str, *, payload: bool) -> tuple[list[Entry], list[Issue]]:
    found, out = _entries(text, rel, _MANIFEST_LINE, "checksum filepath", payload=payload)
    return [Entry(path, m[1].lower(), n) for n, m, path in found], out


def parse_fetch(text: str, rel: str = "fetch.txt") -> tuple[list[Entry], list[Issue]]:
    found, out = _entries(text, rel, _FETCH_LINE, "url length filepath", payload=True)
    entries: list[Entry] = []
    for n, m, path in found:
        if m[2] != "-" and not m[2].isdigit():
            out.append(issue(IssueCode.BAG_MANIFEST_SYNTAX, f"line {n}: length {m[2]!r} is neither a number "
                             "nor '-' (RFC 8493 §2.2.3)", rel))
            continue
        entries.append(Entry(path, m[1], n, None if m[2] == "-" else int(m[2])))
    return entries, out
