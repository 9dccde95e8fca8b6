"""Virus check with ClamAV: the clamd daemon when a socket is configured, else one clamscan run.

``scan(paths, display)`` returns a ``VirusReport``: VIR-E001 per infected file (naming the file and
the signature), VIR-E002 when the scanner failed or could not scan a file completely, VIR-W001 when
no scanner is installed (the caller decides whether that is acceptable). Choices (ClamAV 1.4.6):

* clamd (``socket=`` or ``OAIS_CLAMD_SOCKET``, a Unix socket path): the clamd protocol is spoken
  directly, one ``zFILDES`` per file, the open file descriptor passed over the socket,
  ``CLAMD_CONNECTIONS`` files at once (clamd scans them on its own threads; verdicts kept in file order). clamdscan is
  not used: it has no option for the socket (it needs a clamd.conf), it reports results by path
  (ambiguous for names holding ": " or newlines), and without ``--fdpass`` clamd, running as user
  clamav, cannot read our staging area. clamd's own limits apply: set ``MaxFileSize``/``MaxScanSize``
  above the largest file and ``AlertExceedsMax yes`` in clamd.conf, or big files pass unscanned.
* clamscan: one run for all files (loading the official databases takes seconds), files given
  through ``--file-list``: by their absolute path when it is printable ASCII without ``": "`` (so an
  output line maps back to exactly one file), otherwise as a symlink with a fixed name in a private
  folder, so output lines map back to files without parsing delivered names. ``--database=<dir>`` (``database=`` or
  ``OAIS_CLAMAV_DATABASE``) replaces the default databases. ``--max-filesize``/``--max-scansize``
  are raised to 2000M (ClamAV's maximum) and ``--alert-exceeds-max=yes`` turns a file that would be
  skipped into ``Heuristics.Limits.Exceeded.*``, reported as VIR-E002 (not scanned), not VIR-E001.
  Exit status 0 clean, 1 found, 2 error; every file must get an ``OK`` or ``FOUND`` line (clamscan
  skips a dangling file-list entry silently, exit status 0). clamscan installed without any signature
  database (no freshclam run) is VIR-W001 like a missing scanner, not a scan failure.
"""

from __future__ import annotations

import os
import re
import shutil
import socket as _socket
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from oais.domain.issues import Issue, IssueCode, issue

SOCKET_ENV = "OAIS_CLAMD_SOCKET"
DATABASE_ENV = "OAIS_CLAMAV_DATABASE"
DEFAULT_TIMEOUT = 3600.0
# Files handed to clamd at once, each on a connection of its own: clamd scans them on its own threads
# (MaxThreads, 10 by default), so one waiting for a verdict no longer leaves the other core idle.
CLAMD_CONNECTIONS = 2
_PLAIN_PATH = re.compile(r"/[ -~]*[!-~]")  # absolute, printable ASCII, no trailing space
LIMITS = ("--max-filesize=2000M", "--max-scansize=2000M", "--alert-exceeds-max=yes")
_LIMIT_SIG = "Heuristics.Limits.Exceeded."


@dataclass(frozen=True)
class VirusReport:
    issues: list[Issue]
    engine: str | None  # "ClamAV 1.4.6"; None when nothing ran
    signatures: str | None  # e.g. "2 signatures from /path/db" or "daily 27345 (Tue Nov 25 2025)"
    scanner: str | None = None  # "clamscan" or "clamd <socket>"


def scan(paths: Sequence[Path], display: Mapping[Path, str], *, socket: str | None = None,
         database: Path | None = None, timeout: float = DEFAULT_TIMEOUT,
         workdir: Path | None = None) -> VirusReport:
    """Scan ``paths``; issues name files by ``display`` (the path as delivered), else by file name.

    clamscan's file list goes to a temporary folder in ``workdir`` (default: $TMPDIR).
    """
    names = {p: display.get(p, p.name) for p in paths}
    sock = socket or os.environ.get(SOCKET_ENV) or None
    if sock:
        return _scan_clamd(list(paths), names, sock, timeout)
    exe = shutil.which("clamscan")
    if exe is None:
        return VirusReport([issue(IssueCode.VIRUS_SCANNER_MISSING, "no virus check: clamscan is not on PATH and "
                                  f"no clamd socket is configured ({SOCKET_ENV}); Debian package clamav")],
                           None, None)
    db = database or (Path(os.environ[DATABASE_ENV]) if os.environ.get(DATABASE_ENV) else None)
    return _scan_clamscan(exe, list(paths), names, db, timeout, workdir)


# ---------------------------------------------------------------- clamscan


def _scan_clamscan(exe: str, paths: list[Path], names: dict[Path, str], db: Path | None,
                   timeout: float, workdir: Path | None = None) -> VirusReport:
    engine, signatures = _clamscan_version(exe, db)
    issues: list[Issue] = []
    with tempfile.TemporaryDirectory(prefix="oais-clamscan-", dir=workdir) as tmp:
        links: dict[str, Path] = {}
        for n, path in enumerate(paths):
            if problem := _unreadable(path):
                issues.append(issue(IssueCode.VIRUS_SCAN_FAILED, f"not scanned: {problem}", names[path]))
                continue
            direct = os.path.abspath(path)
            if _PLAIN_PATH.fullmatch(direct) and ": " not in direct:
                links[direct] = path  # as listed, so as printed: no link needed
                continue
            link = Path(tmp, f"f{n:07d}")
            link.symlink_to(path.resolve())
            links[str(link)] = path
        if not links:
            return VirusReport(issues, engine, signatures, "clamscan")
        listing = Path(tmp, "files.txt")
        listing.write_text("".join(f"{link}\n" for link in links), encoding="ascii")
        cmd = [exe, *LIMITS, f"--file-list={listing}"] + ([f"--database={db}"] if db else [])
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return VirusReport([issue(IssueCode.VIRUS_SCAN_FAILED, f"clamscan did not finish within {timeout:g} s")],
                               engine, signatures, "clamscan")
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace").replace(tmp, "<scan>")
    result: dict[Path, str] = {}
    known = None
    for line in out.splitlines():
        if m := re.match(r"Known viruses: (\d+)", line):
            known = int(m[1])
        elif m := re.match(r"Engine version: (\S+)", line):
            engine = f"ClamAV {m[1]}"
        head, sep, verdict = line.rpartition(": ")
        if sep and head in links:
            result[links[head]] = verdict
    if not result and "No supported database files found" in err:  # installed, never given signatures
        why = next(ln for ln in err.splitlines() if "No supported database files found" in ln)
        issues.append(issue(IssueCode.VIRUS_SCANNER_MISSING, "no virus check: clamscan has no signature "
                            f"database ({why.strip()}); run freshclam or set {DATABASE_ENV}"))
    elif not result and proc.returncode not in (0, 1):  # nothing scanned: one failure, not one per file
        issues.append(issue(IssueCode.VIRUS_SCAN_FAILED, f"clamscan failed (exit status {proc.returncode}): "
                            f"{_tail(err)}"))
    else:
        for name, path in links.items():  # a file clamscan skips silently (it does) gets no line
            issues.extend(_verdict(result.get(path), names[path], _file_error(err, name)))
    if known is not None and result:
        signatures = f"{known} signatures" + (f" from {db}" if db else "") + (f"; {signatures}" if signatures else "")
    return VirusReport(issues, engine, signatures, "clamscan")


def _clamscan_version(exe: str, db: Path | None) -> tuple[str | None, str | None]:
    """('ClamAV 1.4.6', 'daily 27345 (date)' or None) from ``clamscan --version``."""
    cmd = [exe, "--version"] + ([f"--database={db}"] if db else [])
    try:
        text = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                              timeout=60, check=False).stdout.decode("utf-8", "replace").strip()
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    return _parse_version(text)


def _parse_version(text: str) -> tuple[str | None, str | None]:
    parts = text.split("/")
    engine = parts[0].strip() or None
    daily = f"daily {parts[1]} ({parts[2].strip()})" if len(parts) >= 3 else None
    return engine, daily


def _unreadable(path: Path) -> str | None:
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None if path.is_file() else "not a regular file"


def _file_error(err: str, link: str) -> str:
    lines = [ln.split(f"{link}: ", 1)[1] for ln in err.splitlines() if f"{link}: " in ln]
    return "; ".join(dict.fromkeys(lines))


def _verdict(verdict: str | None, name: str, error_text: str = "") -> list[Issue]:
    if verdict == "OK":
        return []
    if verdict and verdict.endswith(" FOUND"):
        signature = verdict[: -len(" FOUND")]
        if signature.startswith(_LIMIT_SIG):
            return [issue(IssueCode.VIRUS_SCAN_FAILED, f"not fully scanned: the file exceeds a scan limit "
                          f"({signature})", name)]
        return [issue(IssueCode.VIRUS_FOUND, f"virus found: {signature}", name)]
    reason = (verdict[: -len(" ERROR")] if verdict and verdict.endswith(" ERROR") else verdict) or error_text
    return [issue(IssueCode.VIRUS_SCAN_FAILED, f"not scanned: {reason or 'no result from the scanner'}", name)]


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "no message"


# ---------------------------------------------------------------- clamd


def _scan_clamd(paths: list[Path], names: dict[Path, str], sock: str, timeout: float) -> VirusReport:
    scanner = f"clamd {sock}"
    try:
        engine, signatures = _parse_version(_clamd_command(sock, b"zVERSION\0", None, 60).rstrip("\0"))
    except OSError as exc:
        return VirusReport([issue(IssueCode.VIRUS_SCAN_FAILED, f"clamd at {sock} is not reachable: {exc}")],
                           None, None, scanner)

    def one(path: Path) -> list[Issue]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            return [issue(IssueCode.VIRUS_SCAN_FAILED, f"not scanned: {exc.strerror}", names[path])]
        try:
            reply = _clamd_command(sock, b"zFILDES\0", fd, timeout).rstrip("\0")
        except OSError as exc:
            return [issue(IssueCode.VIRUS_SCAN_FAILED, f"not scanned: clamd at {sock}: {exc}", names[path])]
        finally:
            os.close(fd)
        return _verdict(reply.split(": ", 1)[1] if ": " in reply else reply, names[path])

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(CLAMD_CONNECTIONS, thread_name_prefix="clamd") as pool:  # verdicts in file order
        issues = [found for verdicts in pool.map(one, paths) for found in verdicts]
    return VirusReport(issues, engine, signatures, scanner)


def _clamd_command(sock: str, command: bytes, fd: int | None, timeout: float) -> str:
    with _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock)
        s.sendall(command)
        if fd is not None:
            _socket.send_fds(s, [b"\0"], [fd])
        reply = b""
        while not reply.endswith(b"\0") and (chunk := s.recv(4096)):
            reply += chunk
    return reply.decode("utf-8", "replace")


__all__ = ["VirusReport", "scan", "SOCKET_ENV", "DATABASE_ENV"]
