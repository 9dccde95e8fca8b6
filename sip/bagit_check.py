"""Our own BagIt validator (RFC 8493, and the BagIt 0.93-0.97 drafts), read-only, as coded issues.

``validate_bag(root)`` collects every problem (it never stops at the first) and returns a ``BagReport``.
It never writes, never changes the working folder, never follows a symbolic link and never opens
anything but a regular file (``O_NOFOLLOW | O_NONBLOCK``, then ``fstat``). Each file is read once, with
one reused 1 MiB buffer, for all the algorithms of all the manifests that list it.

Rules (code: rule):

- SIP-E001 / E010: the bag root is a folder; ``data/`` exists (§2). SIP-E008: a file or folder cannot be read.
- SIP-E015: a symbolic link anywhere (never followed). SIP-E005: a FIFO, device or socket (never opened).
- SIP-E020: ``bagit.txt`` present, UTF-8 without BOM, exactly ``BagIt-Version: M.N`` and
  ``Tag-File-Character-Encoding: ENC`` (§2.1.1). Unknown versions are checked with the 1.0 rules (W010).
- SIP-E021: ``bag-info.txt`` (``package-info.txt`` before 0.96) well formed (§2.2.2; optional since 0.96).
  Payload-Oxum ``octets.count`` matches the payload (SIP-E014); Bag-Size is informational.
- SIP-E026: at least one payload manifest (§2.1.3). SIP-E022: every line ``checksum filepath`` with a hex
  checksum of the algorithm's length. SIP-E024: an algorithm we cannot compute, or (``accepted_algorithms``)
  one the agreement does not accept. SIP-W011: md5/sha1 only (§6.2).
- SIP-E016: a manifest or fetch path that leaves the bag (absolute, ``~``, drive/UNC, ``..``) or a payload
  manifest / fetch path outside ``data/``. SIP-W014: ``./`` and other non-canonical paths (read canonically).
- SIP-E023: a path listed twice in one manifest with different checksums, or at all in BagIt 1.0; SIP-W012:
  the same checksum twice before 1.0.
- SIP-E012: a manifest entry (payload or tag) not in the bag; SIP-E013: a payload file missing from a payload
  manifest (every file in every manifest, §3); SIP-E011: a checksum mismatch (expected and found).
- SIP-W013: names equal after Unicode NFC and case folding: a manifest entry that matches a file only that
  way (verified against it), or two payload files that would collide on macOS/Windows (§6.1).
- SIP-W002: system junk (.DS_Store, Thumbs.db, ...) in the payload, or listed but absent (not data: not an error).
- fetch.txt (§2.2.3): ``url length filepath``; the archive fetches nothing: a listed file that was not
  delivered is SIP-W015 and is not counted as missing (nor in the Payload-Oxum check); a fetch entry that no
  payload manifest lists is SIP-E010.
- SIP-W010: other tolerated deviations (md5sum ``*`` marker, whitespace before 1.0, BOM in a tag file, ...).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import unicodedata
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from oais.domain.issues import Issue, IssueCode, Severity, issue
from sip.bagit_tags import (HASHLIB, WEAK, Declaration, Entry, canonical_algorithm, decode_tag, parse_declaration,
                            parse_fetch, parse_info, parse_manifest)

BUFFER_SIZE = 1 << 20
JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "ehthumbs.db", "desktop.ini", ".spotlight-v100", ".trashes",
                        ".fseventsd", ".directory"})
_MANIFEST_NAME = re.compile(r"(tag)?manifest-([^/]+)\.txt")
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class BagReport:
    issues: list[Issue]
    version: str | None
    encoding: str | None
    info: dict[str, list[str]]  # bag-info labels (first spelling) -> values in order
    algorithms: list[str]  # payload manifest algorithms found
    payload: list[str]  # payload files on disk, e.g. "data/x.fits"
    manifest_paths: dict[str, dict[str, str]]  # payload manifest algorithm -> {path: digest}

    @property
    def valid(self) -> bool:
        return not any(i.severity is Severity.ERROR for i in self.issues)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity is Severity.WARNING]


class NotRegularFile(OSError):
    """The path is not (or no longer) a regular file; it was not read."""


def open_regular(path: str) -> io.FileIO:
    """Open a regular file for reading without following a link and without blocking on a FIFO."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(f"not a regular file: {path}")
        return io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def file_digests(path: str, algorithms: Iterable[str], buffer: bytearray) -> dict[str, str]:
    """Hex digests of one file for every (BagIt-named) algorithm, in one read pass through ``buffer``."""
    hashers = {a: hashlib.new(HASHLIB[a]) for a in algorithms}
    view = memoryview(buffer)
    with open_regular(path) as f:
        while n := f.readinto(buffer):
            for h in hashers.values():
                h.update(view[:n])
    return {a: h.hexdigest() for a, h in hashers.items()}


def is_junk(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.lower() in JUNK_NAMES or name.startswith("._") or "__MACOSX" in path.split("/")


def _fold(path: str) -> str:
    return unicodedata.normalize("NFC", path).casefold()


@dataclass
class _Manifest:
    rel: str
    algorithm: str
    entries: dict[str, str] = field(default_factory=dict)  # path -> digest (first listing)


@dataclass
class _Check:
    algorithm: str
    expected: str
    manifest: str
    listed_as: str


class _Validator:
    def __init__(self, root: Path, accepted: Collection[str] | None) -> None:
        self.root = str(root)
        self.accepted = None if accepted is None else {canonical_algorithm(a) for a in accepted}
        self.issues: list[Issue] = []
        self.files: dict[str, int] = {}  # regular files (relative path -> size)
        self.dirs: set[str] = set()
        self.bad: set[str] = set()  # links, special and unreadable entries, already reported
        self.decl = Declaration(None, None, None, "utf-8")
        self.info: dict[str, list[str]] = {}
        self.info_rel = "bag-info.txt"  # package-info.txt before BagIt 0.96
        self.payload_manifests: list[_Manifest] = []
        self.tag_manifests: list[_Manifest] = []
        self.fetch: dict[str, Entry] = {}
        self.checks: dict[str, list[_Check]] = defaultdict(list)  # disk path -> checks
        self.absent: dict[str, Entry | None] = {}  # listed, not delivered, excused: path -> fetch entry

    def add(self, code: IssueCode, message: str, path: str | None = None) -> None:
        self.issues.append(issue(code, message, path))

    @property
    def strict(self) -> bool:  # BagIt 1.0 rules (also for unknown or unreadable versions)
        return self.decl.version_tuple is None or self.decl.version_tuple >= (1, 0)

    # --- the tree -------------------------------------------------------------------------------
    def walk(self) -> bool:
        try:
            st = os.lstat(self.root)
        except OSError as exc:
            self.add(IssueCode.SOURCE_NOT_FOUND, f"the bag cannot be read: {exc.strerror}", ".")
            return False
        if stat.S_ISLNK(st.st_mode):
            self.add(IssueCode.LINK, "the bag folder itself is a symbolic link (not followed)", ".")
            return False
        if not stat.S_ISDIR(st.st_mode):
            self.add(IssueCode.BAG_INVALID, "a bag is a folder (RFC 8493 §2)", ".")
            return False
        pending = [""]
        while pending:
            folder = pending.pop()
            try:
                with os.scandir(os.path.join(self.root, folder)) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                self.add(IssueCode.UNREADABLE_FILE, f"folder cannot be listed: {exc.strerror}", folder or ".")
                if not folder:
                    return False
                self.bad.add(folder)
                continue
            for e in entries:
                rel = f"{folder}/{e.name}" if folder else e.name
                try:
                    mode = e.stat(follow_symlinks=False).st_mode
                except OSError as exc:
                    self.add(IssueCode.UNREADABLE_FILE, f"cannot be read: {exc.strerror}", rel)
                    self.bad.add(rel)
                    continue
                if stat.S_ISDIR(mode):
                    self.dirs.add(rel)
                    pending.append(rel)
                elif stat.S_ISREG(mode):
                    self.files[rel] = e.stat(follow_symlinks=False).st_size
                else:
                    self.bad.add(rel)
                    if stat.S_ISLNK(mode):
                        self.add(IssueCode.LINK, f"symbolic link {self._link_target(e.path, rel)}; links are "
                                 "not followed and not allowed in a delivery", rel)
                    else:
                        self.add(IssueCode.LINK_OR_SPECIAL_FILE, "FIFO, device or socket (not opened); a "
                                 "delivery holds regular files and folders only", rel)
        if "data" not in self.dirs and "data" not in self.bad:
            self.add(IssueCode.BAG_INVALID, "the payload folder data/ is missing (RFC 8493 §2)", "data")
        return True

    def _link_target(self, full: str, rel: str) -> str:
        try:
            target = os.readlink(full)
        except OSError:
            return "(target unreadable)"
        inside = os.path.normpath(os.path.join(os.path.dirname(rel), target))
        where = "outside the bag" if os.path.isabs(target) or inside.split(os.sep)[0] == ".." else "inside the bag"
        return f"to {target!r} ({where})"

    def is_bad(self, path: str) -> bool:
        return bool(self.bad) and any(path == b or path.startswith(b + "/") for b in self.bad)

    def read(self, rel: str) -> bytes | None:
        try:
            with open_regular(os.path.join(self.root, rel)) as f:
                return f.read()
        except OSError as exc:
            self.add(IssueCode.UNREADABLE_FILE, f"cannot be read: {exc.strerror or exc}", rel)
            return None

    def text(self, rel: str, code: IssueCode) -> str | None:
        raw = self.read(rel)
        if raw is None:
            return None
        text, found = decode_tag(raw, self.decl.codec, rel, code)
        self.issues.extend(found)
        return text

    # --- tag files ------------------------------------------------------------------------------
    def declaration(self) -> None:
        if "bagit.txt" not in self.files:
            if "bagit.txt" not in self.bad:
                self.add(IssueCode.BAG_DECLARATION, "bagit.txt is missing (RFC 8493 §2.1.1)", "bagit.txt")
            return
        raw = self.read("bagit.txt")
        if raw is not None:
            self.decl, found = parse_declaration(raw)
            self.issues.extend(found)

    def bag_info(self) -> None:
        old = self.decl.version_tuple is not None and self.decl.version_tuple < (0, 96)
        rel = next((n for n in ("bag-info.txt", "package-info.txt") if n in self.files
                    and (n == "bag-info.txt" or old)), None)
        if rel is None or (text := self.text(rel, IssueCode.BAG_INFO)) is None:
            return
        self.info_rel = rel
        items, found = parse_info(text, rel, self.strict)
        self.issues.extend(found)
        spelling: dict[str, str] = {}
        for label, value in items:  # labels are case-insensitive: kept under their first spelling
            self.info.setdefault(spelling.setdefault(label.casefold(), label), []).append(value)

    def info_values(self, label: str) -> list[str]:
        return next((v for k, v in self.info.items() if k.casefold() == label.casefold()), [])

    def manifests(self) -> None:
        for rel in sorted(self.files):
            m = _MANIFEST_NAME.fullmatch(rel)
            if not m:
                continue
            algorithm, tag = canonical_algorithm(m[2]), bool(m[1])
            kind = "tag manifest" if tag else "payload manifest"
            if algorithm not in HASHLIB:
                self.add(IssueCode.BAG_ALGORITHM, f"{kind} in an algorithm this archive cannot compute "
                         f"({algorithm!r}); supported: {', '.join(HASHLIB)}", rel)
            elif self.accepted is not None and algorithm not in self.accepted:
                self.add(IssueCode.BAG_ALGORITHM, f"{kind} algorithm {algorithm!r} is not accepted by the "
                         f"agreement (accepted: {', '.join(sorted(self.accepted))})", rel)
            manifest = _Manifest(rel, algorithm)
            (self.tag_manifests if tag else self.payload_manifests).append(manifest)
            text = self.text(rel, IssueCode.BAG_MANIFEST_SYNTAX)
            if text is None:
                continue
            entries, found = parse_manifest(text, rel, payload=not tag)
            self.issues.extend(found)
            size = hashlib.new(HASHLIB[algorithm]).digest_size * 2 if algorithm in HASHLIB else None
            for e in entries:
                if size is not None and not (len(e.value) == size and re.fullmatch(r"[0-9a-f]+", e.value)):
                    self.add(IssueCode.BAG_MANIFEST_SYNTAX, f"line {e.line}: {e.value!r} is not a {algorithm} "
                             f"checksum ({size} hex digits) for {e.path!r}", rel)
                elif e.path not in manifest.entries:
                    manifest.entries[e.path] = e.value
                elif manifest.entries[e.path] != e.value:
                    self.add(IssueCode.BAG_DUPLICATE_ENTRY, f"line {e.line}: {e.path!r} listed again with a "
                             f"different checksum ({manifest.entries[e.path]} then {e.value})", rel)
                elif self.strict:
                    self.add(IssueCode.BAG_DUPLICATE_ENTRY, f"line {e.line}: {e.path!r} listed twice (same "
                             "checksum); each payload file is listed once (RFC 8493 §2.1.3)", rel)
                else:
                    self.add(IssueCode.BAG_DUPLICATE_SAME_HASH, f"line {e.line}: {e.path!r} listed twice with the "
                             "same checksum (tolerated before BagIt 1.0)", rel)
        if not self.payload_manifests:
            self.add(IssueCode.BAG_NO_MANIFEST, "no payload manifest (manifest-<algorithm>.txt) (RFC 8493 §2.1.3)")
        algorithms = {m.algorithm for m in self.payload_manifests}
        if algorithms and algorithms <= WEAK:
            self.add(IssueCode.BAG_WEAK_ALGORITHM, f"payload manifests use only {', '.join(sorted(algorithms))}; "
                     "sha256 or sha512 is recommended (RFC 8493 §6.2)", self.payload_manifests[0].rel)

    def fetch_file(self) -> None:
        if "fetch.txt" not in self.files or (text := self.text("fetch.txt", IssueCode.BAG_MANIFEST_SYNTAX)) is None:
            return
        entries, found = parse_fetch(text)
        self.issues.extend(found)
        for e in entries:
            self.fetch.setdefault(e.path, e)
            if not all(e.path in m.entries for m in self.payload_manifests):
                self.add(IssueCode.BAG_INVALID, f"line {e.line}: {e.path!r} is not listed in every payload "
                         "manifest (RFC 8493 §2.2.3)", "fetch.txt")

    # --- completeness and fixity ----------------------------------------------------------------
    def payload_files(self) -> list[str]:
        return sorted(p for p in self.files if p.startswith("data/"))

    def completeness(self) -> None:
        payload = self.payload_files()
        by_nfc: dict[str, list[str]] = defaultdict(list)
        by_fold: dict[str, list[str]] = defaultdict(list)
        for p in payload:
            by_nfc[unicodedata.normalize("NFC", p)].append(p)
            by_fold[_fold(p)].append(p)
        missing: dict[str, list[str]] = defaultdict(list)
        unlisted: dict[str, list[str]] = defaultdict(list)
        fuzzy: dict[tuple[str, str], list[str]] = defaultdict(list)
        for m in self.payload_manifests:
            covered: set[str] = set()
            for path, digest in m.entries.items():
                target = path if path in self.files else None
                if target is None:
                    for candidates in (by_nfc.get(unicodedata.normalize("NFC", path)), by_fold.get(_fold(path))):
                        if candidates and len(candidates) == 1:
                            target = candidates[0]
                            fuzzy[(path, target)].append(m.rel)
                            break
                if target is not None:
                    covered.add(target)
                    if m.algorithm in HASHLIB:
                        self.checks[target].append(_Check(m.algorithm, digest, m.rel, path))
                elif not self.is_bad(path):
                    if path in self.fetch or is_junk(path):
                        self.absent[path] = self.fetch.get(path)
                    else:
                        missing[path].append(m.rel)
            for p in payload:
                if p not in covered and not self.is_bad(p):
                    unlisted[p].append(m.rel)
        for path, rels in missing.items():
            self.add(IssueCode.BAG_FILE_MISSING, f"listed in {', '.join(rels)} but not in the bag (RFC 8493 §3)", path)
        for path, rels in unlisted.items():
            self.add(IssueCode.BAG_UNEXPECTED_FILE, f"payload file not listed in {', '.join(rels)}; every payload "
                     "file is in every payload manifest (RFC 8493 §3)", path)
        for (listed, target), rels in fuzzy.items():
            how = "Unicode normalisation" if unicodedata.normalize("NFC", listed) == target else "case"
            self.add(IssueCode.BAG_CASE_OR_NORMALIZATION, f"listed as {listed!r} in {', '.join(rels)}: matches the "
                     f"file {target!r} only up to {how}; checked against it", target)
        for path, entry in sorted(self.absent.items()):
            if entry is not None:
                self.add(IssueCode.BAG_FETCH, f"listed in fetch.txt ({entry.value}) and not delivered; the archive "
                         "fetches nothing", path)
            else:
                self.add(IssueCode.SYSTEM_JUNK, "system file listed in a manifest but not delivered (not data)", path)
        for p in payload:
            if is_junk(p):
                self.add(IssueCode.SYSTEM_JUNK, "operating-system file in the payload (not data)", p)
        groups: dict[str, list[str]] = defaultdict(list)
        for p in payload:
            groups[_fold(p)].append(p)
        for names in groups.values():
            if len(names) > 1:
                self.add(IssueCode.BAG_CASE_OR_NORMALIZATION, f"names equal up to case or Unicode normalisation: "
                         f"{', '.join(map(repr, names))}; they collide on macOS and Windows", names[0])

    def tag_fixity(self) -> None:
        for m in self.tag_manifests:
            for path, digest in m.entries.items():
                if path in self.files:
                    if m.algorithm in HASHLIB:
                        self.checks[path].append(_Check(m.algorithm, digest, m.rel, path))
                elif not self.is_bad(path):
                    self.add(IssueCode.BAG_FILE_MISSING, f"tag file listed in {m.rel} but not in the bag "
                             "(RFC 8493 §3)", path)

    def fixity(self) -> None:
        buffer = bytearray(BUFFER_SIZE)
        for path in sorted(self.checks):
            checks = self.checks[path]
            try:
                found = file_digests(os.path.join(self.root, path), {c.algorithm for c in checks}, buffer)
            except OSError as exc:
                self.add(IssueCode.UNREADABLE_FILE, f"cannot be read: {exc.strerror or exc}", path)
                continue
            for c in checks:
                if found[c.algorithm] != c.expected:
                    listed = "" if c.listed_as == path else f" (listed as {c.listed_as!r})"
                    self.add(IssueCode.BAG_CHECKSUM_MISMATCH, f"{c.algorithm} checksum mismatch in {c.manifest}"
                             f"{listed}: expected {c.expected}, found {found[c.algorithm]}", path)

    def oxum(self) -> None:
        values = self.info_values("Payload-Oxum")
        if not values:
            return
        if len(set(values)) > 1:
            self.add(IssueCode.BAG_INFO, f"Payload-Oxum given {len(values)} times with different values",
                     self.info_rel)
        m = re.fullmatch(r"([0-9]+)\.([0-9]+)", values[0])
        if not m:
            self.add(IssueCode.BAG_INFO, f"Payload-Oxum {values[0]!r} is not 'octets.count' (RFC 8493 §2.2.2)",
                     self.info_rel)
            return
        payload = self.payload_files()
        octets, count = sum(self.files[p] for p in payload), len(payload)
        known = sum(e.length for e in self.absent.values() if e is not None and e.length is not None)
        unknown = sum(1 for e in self.absent.values() if e is None or e.length is None)
        octets_ok = int(m[1]) == octets + known if not unknown else int(m[1]) >= octets + known
        if not (octets_ok and int(m[2]) == count + len(self.absent)):
            extra = f" (and {len(self.absent)} listed file(s) not delivered)" if self.absent else ""
            self.add(IssueCode.BAG_OXUM_MISMATCH, f"Payload-Oxum {values[0]} but the payload holds "
                     f"{octets}.{count}{extra} (RFC 8493 §2.2.2)", self.info_rel)

    def run(self) -> BagReport:
        if self.walk():
            self.declaration()
            self.bag_info()
            self.manifests()
            self.fetch_file()
            self.completeness()
            self.tag_fixity()
            self.fixity()
            self.oxum()
        issues = sorted(self.issues, key=lambda i: _SEVERITY_ORDER[i.severity])
        manifest_paths: dict[str, dict[str, str]] = {}
        for m in self.payload_manifests:
            manifest_paths.setdefault(m.algorithm, {}).update(m.entries)
        return BagReport(issues, self.decl.version, self.decl.encoding, self.info,
                         sorted(manifest_paths), self.payload_files(), manifest_paths)


def validate_bag(root: Path, *, accepted_algorithms: Collection[str] | None = None) -> BagReport:
    """Validate the bag at ``root`` fully (read-only): structure, tag files, completeness, every checksum."""
    return _Validator(root, accepted_algorithms).run()
