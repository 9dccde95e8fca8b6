"""A registry of hostile deliveries, each named after the issue code it must trigger.

``HOSTILE[key](tmp)`` builds one input inside the (existing, empty) folder ``tmp`` and returns its
path. Every key starts with the code, e.g. ``SIP-E004_zip_slip``. Builders are deterministic, fast
(well under a second each) and small on disk: the zip bomb streams 200 MB of zeros into ~200 kB.
Names that would land outside the delivery if a receiver were fooled all contain ``evil``, so a
test can look for them anywhere.
"""

from __future__ import annotations

import io
import os
import random
import stat
import struct
import tarfile
import unicodedata
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

Builder = Callable[[Path], Path]

EVIL = "evil.txt"  # the zip-slip target name: must never appear outside the archive home
BOMB_BYTES = 200 * (1 << 20)  # zeros in the bombs: over ratio_floor (64 MiB), ratio ~1000
_CD = struct.Struct("<4s4B4HL2L5H2L")  # zip central directory entry (46 bytes)
_EOCD = struct.Struct("<4s4H2LH")  # zip end of central directory (22 bytes)


def code_of(key: str) -> str:
    return key.split("_", 1)[0]


# -- helpers ---------------------------------------------------------------------------------------
def _data(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size, info.mtime, info.mode = len(m[1]), 1_700_000_000, 0o644
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def _tar_entry(name: str, type_: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime, info.mode = type_, linkname, 1_700_000_000, 0o644
    return info


def _folder(tmp: Path, files: dict[str, bytes] | None = None) -> Path:
    root = tmp / "delivery"
    root.mkdir()
    for name, data in (files or {"README.txt": b"a real file\n"}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _central_entries(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """(offset of the end record, [(offset, length) of each central directory entry])."""
    end = data.rindex(b"PK\x05\x06")
    _sig, _d, _dcd, _n, total, _size, offset, _clen = _EOCD.unpack_from(data, end)
    entries = []
    for _ in range(total):
        fields = _CD.unpack_from(data, offset)
        length = _CD.size + fields[12] + fields[13] + fields[14]
        entries.append((offset, length))
        offset += length
    return end, entries


class _Zeros(io.RawIOBase):
    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def _zip_bomb(path: Path, name: str = "delivery/zeros.bin") -> Path:
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("delivery/README.txt", b"looks harmless\n")
        with zf.open(name, "w", force_zip64=False) as out:
            for _ in range(BOMB_BYTES // len(chunk)):
                out.write(chunk)
    return path


# -- SIP-E004 unsafe paths -------------------------------------------------------------------------
def zip_slip(tmp: Path) -> Path:
    """Members climbing out of staging: 4 and 5 levels up reach the test's folder and its parent."""
    return _zip(tmp / "slip.zip", {"delivery/README.txt": b"ok\n", f"../../{EVIL}": b"pwned\n",
                                   f"delivery/../../../../{EVIL}": b"pwned\n",
                                   f"../../../../../{EVIL}": b"pwned\n"})


def zip_absolute(tmp: Path) -> Path:
    return _zip(tmp / "absolute.zip", {"delivery/README.txt": b"ok\n", f"/tmp/{EVIL}": b"pwned\n"})


def zip_backslash(tmp: Path) -> Path:
    return _zip(tmp / "backslash.zip", {"delivery/README.txt": b"ok\n", f"..\\..\\{EVIL}": b"pwned\n"})


def zip_drive(tmp: Path) -> Path:
    return _zip(tmp / "drive.zip", {"delivery/README.txt": b"ok\n", f"C:/Windows/{EVIL}": b"pwned\n"})


def tar_absolute(tmp: Path) -> Path:
    path = _tar(tmp / "absolute.tar", [("delivery/README.txt", b"ok\n"), (f"/tmp/{EVIL}", b"pwned\n")])
    with tarfile.open(path) as tf:
        assert f"/tmp/{EVIL}" in tf.getnames()  # tarfile kept the leading slash
    return path


def tar_dotdot(tmp: Path) -> Path:
    return _tar(tmp / "dotdot.tar.gz", [("delivery/README.txt", b"ok\n"), (f"delivery/../../{EVIL}", b"x")],
                "w:gz")


def invalid_utf8(tmp: Path) -> Path:
    root = _folder(tmp)
    with open(os.path.join(os.fsencode(root), b"bad-\xff\xfe-name.txt"), "wb") as f:
        f.write(b"a name that is not UTF-8\n")
    return root


# -- SIP-E015 links --------------------------------------------------------------------------------
def symlink_out(tmp: Path) -> Path:
    root = _folder(tmp)
    os.symlink("/etc/passwd", root / "passwd")
    return root


def symlink_in(tmp: Path) -> Path:
    root = _folder(tmp)
    os.symlink("README.txt", root / "readme-again.txt")
    return root


def zip_symlink(tmp: Path) -> Path:
    path = tmp / "symlink.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("delivery/README.txt", b"ok\n")
        info = zipfile.ZipInfo("delivery/passwd")
        info.create_system = 3  # Unix: external_attr holds st_mode
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "../../../../../../etc/passwd")
    return path


def tar_symlink(tmp: Path) -> Path:
    return _tar(tmp / "symlink.tar", [("delivery/README.txt", b"ok\n"),
                                      _tar_entry("delivery/passwd", tarfile.SYMTYPE, "/etc/passwd")])


def tar_hardlink(tmp: Path) -> Path:
    return _tar(tmp / "hardlink.tar", [("delivery/README.txt", b"ok\n"),
                                       _tar_entry("delivery/passwd", tarfile.LNKTYPE, "../../etc/passwd")])


# -- SIP-E005 special files ------------------------------------------------------------------------
def fifo_in_folder(tmp: Path) -> Path:
    root = _folder(tmp)
    os.mkfifo(root / "pipe")  # opening it for reading would block forever: a receiver must not
    return root


def socket_in_folder(tmp: Path) -> Path:
    root = _folder(tmp)
    os.mknod(root / "socket", stat.S_IFSOCK | 0o600)
    return root


def tar_device(tmp: Path) -> Path:
    dev = _tar_entry("delivery/null", tarfile.CHRTYPE)
    dev.devmajor, dev.devminor = 1, 3
    return _tar(tmp / "device.tar", [("delivery/README.txt", b"ok\n"), dev])


def tar_fifo(tmp: Path) -> Path:
    return _tar(tmp / "fifo.tgz", [("delivery/README.txt", b"ok\n"), _tar_entry("delivery/pipe", tarfile.FIFOTYPE)],
                "w:gz")


def zip_fifo(tmp: Path) -> Path:
    path = tmp / "fifo.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("delivery/README.txt", b"ok\n")
        info = zipfile.ZipInfo("delivery/pipe")
        info.create_system = 3
        info.external_attr = (stat.S_IFIFO | 0o644) << 16
        zf.writestr(info, b"")
    return path


# -- SIP-E006 expansion limits ---------------------------------------------------------------------
def zip_bomb(tmp: Path) -> Path:
    """200 MB of zeros in ~200 kB: the declared size already exceeds the ratio limit."""
    return _zip_bomb(tmp / "bomb.zip")


def zip_bomb_lying(tmp: Path) -> Path:
    """The bomb with its sizes patched to 1000 bytes in both the local and the central header:
    declared sizes and ratio look harmless; only counting the real bytes catches it."""
    path = _zip_bomb(tmp / "lying.zip")
    data = bytearray(path.read_bytes())
    _end, entries = _central_entries(bytes(data))
    for offset, _length in entries:
        fields = _CD.unpack_from(data, offset)
        name = bytes(data[offset + _CD.size: offset + _CD.size + fields[12]])
        if name.endswith(b"zeros.bin"):
            struct.pack_into("<L", data, offset + 24, 1000)  # central: uncompressed size
            local = fields[-1]
            assert data[local:local + 4] == b"PK\x03\x04"
            struct.pack_into("<L", data, local + 22, 1000)  # local: uncompressed size
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert sum(i.file_size for i in zf.infolist()) < 2000
    return path


def zip_overlap(tmp: Path) -> Path:
    """Two central directory entries share one local file (the 'better zip bomb' construction)."""
    path = _zip(tmp / "overlap.zip", {"delivery/a.bin": bytes(1 << 20)})
    data = path.read_bytes()
    end, entries = _central_entries(data)
    (offset, length), = entries
    first = data[offset:offset + length]
    second = first.replace(b"delivery/a.bin", b"delivery/b.bin")
    cd = first + second
    _sig, d, dcd, _n, _total, _size, cd_offset, clen = _EOCD.unpack_from(data, end)
    eocd = _EOCD.pack(b"PK\x05\x06", d, dcd, 2, 2, len(cd), cd_offset, 0)
    path.write_bytes(data[:offset] + cd + eocd)
    with zipfile.ZipFile(path) as zf:
        assert [i.header_offset for i in zf.infolist()] == [0, 0]
    return path


def too_many_members(tmp: Path) -> Path:
    """One member more than the default ``Limits.max_files`` (100 000), all empty: ~8 MB."""
    from sip.receive import Limits

    path = tmp / "many.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(Limits().max_files + 1):
            zf.writestr(f"d/{i:x}", b"")
    return path


def targz_bomb(tmp: Path) -> Path:
    path = tmp / "bomb.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=9) as tf:
        info = tarfile.TarInfo("delivery/zeros.bin")
        info.size = BOMB_BYTES
        tf.addfile(info, io.BufferedReader(_Zeros(BOMB_BYTES), 1 << 20))
    return path


# -- SIP-E009 name collisions ----------------------------------------------------------------------
def nfc_nfd(tmp: Path) -> Path:
    nfc, nfd = unicodedata.normalize("NFC", "café.txt"), unicodedata.normalize("NFD", "café.txt")
    assert nfc != nfd
    return _folder(tmp, {nfc: b"composed\n", nfd: b"decomposed\n"})


def case_collision(tmp: Path) -> Path:
    return _zip(tmp / "case.zip", {"delivery/README.txt": b"one\n", "delivery/readme.TXT": b"two\n"})


def case_collision_folder(tmp: Path) -> Path:
    return _folder(tmp, {"Data/a.fits": b"one\n", "data/b.fits": b"two\n"})


def zip_duplicate(tmp: Path) -> Path:
    path = tmp / "duplicate.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("delivery/a.txt", b"first\n")
            zf.writestr("delivery/a.txt", b"second\n")
    return path


def file_and_folder(tmp: Path) -> Path:
    return _tar(tmp / "fileandfolder.tar", [("delivery/a", b"a file\n"), ("delivery/a/b.txt", b"in a folder\n")])


# -- SIP-E003 empty deliveries ---------------------------------------------------------------------
def empty_folder(tmp: Path) -> Path:
    root = tmp / "delivery"
    (root / "a" / "b").mkdir(parents=True)
    (root / "c").mkdir()
    return root


def empty_zip(tmp: Path) -> Path:
    return _zip(tmp / "empty.zip", {})


def zip_folders_only(tmp: Path) -> Path:
    return _zip(tmp / "folders.zip", {"delivery/": b"", "delivery/sub/": b""})


def empty_tar(tmp: Path) -> Path:
    return _tar(tmp / "empty.tar", [])


# -- SIP-E007 unreadable archives ------------------------------------------------------------------
def truncated_zip(tmp: Path) -> Path:
    path = _zip(tmp / "truncated.zip", {f"delivery/{i}.bin": _data(50_000, i) for i in range(4)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_targz(tmp: Path) -> Path:
    path = _tar(tmp / "corrupt.tar.gz", [(f"delivery/{i}.txt", (f"line {i}\n" * 20_000).encode())
                                         for i in range(3)], "w:gz")
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0x55
    path.write_bytes(bytes(data))
    return path


def truncated_tar(tmp: Path) -> Path:
    """Cut at a block boundary right after the first member: no end-of-archive block."""
    path = _tar(tmp / "truncated.tar", [("delivery/a.txt", b"a" * 1024), ("delivery/b.txt", b"b" * 1024)],
                "w")
    with tarfile.open(path) as tf:
        second = tf.getmembers()[1]
    path.write_bytes(path.read_bytes()[: second.offset])
    return path


def zip_crc(tmp: Path) -> Path:
    path = _zip(tmp / "crc.zip", {"delivery/a.txt": b"A" * 4096}, zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    start = data.index(b"A" * 4096)
    data[start + 100] = ord("B")
    path.write_bytes(bytes(data))
    return path


def zip_encrypted(tmp: Path) -> Path:
    path = _zip(tmp / "encrypted.zip", {"delivery/a.txt": b"secret\n"}, zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    _end, entries = _central_entries(bytes(data))
    for offset, _ in entries:
        flags_at = offset + 8
        struct.pack_into("<H", data, flags_at, struct.unpack_from("<H", data, flags_at)[0] | 1)
    path.write_bytes(bytes(data))
    return path


def not_a_zip(tmp: Path) -> Path:
    path = tmp / "random.zip"
    path.write_bytes(_data(10_000))
    return path


# -- SIP-W001 unsafe but legal names (accepted, reported) ------------------------------------------
def control_character(tmp: Path) -> Path:
    return _folder(tmp, {"README.txt": b"fine\n", "bell\x07and\x1b[31mescape.txt": b"odd name\n"})


# -- the registry: key = the code the input must trigger, then what it is ---------------------------
HOSTILE: dict[str, Builder] = {
    "SIP-E004_zip_slip": zip_slip,
    "SIP-E004_zip_absolute_member": zip_absolute,
    "SIP-E004_zip_backslash_dotdot": zip_backslash,
    "SIP-E004_zip_drive_letter": zip_drive,
    "SIP-E004_tar_absolute_member": tar_absolute,
    "SIP-E004_tar_dotdot": tar_dotdot,
    "SIP-E004_invalid_utf8_name_in_folder": invalid_utf8,
    "SIP-E015_symlink_out_of_folder": symlink_out,
    "SIP-E015_symlink_inside_folder": symlink_in,
    "SIP-E015_zip_symlink_member": zip_symlink,
    "SIP-E015_tar_symlink": tar_symlink,
    "SIP-E015_tar_hardlink": tar_hardlink,
    "SIP-E005_fifo_in_folder": fifo_in_folder,
    "SIP-E005_socket_in_folder": socket_in_folder,
    "SIP-E005_tar_device": tar_device,
    "SIP-E005_tar_fifo": tar_fifo,
    "SIP-E005_zip_fifo_member": zip_fifo,
    "SIP-E006_zip_bomb": zip_bomb,
    "SIP-E006_zip_bomb_lying_header": zip_bomb_lying,
    "SIP-E006_zip_overlapping_members": zip_overlap,
    "SIP-E006_too_many_members": too_many_members,
    "SIP-E006_targz_bomb": targz_bomb,
    "SIP-E009_nfc_nfd_collision": nfc_nfd,
    "SIP-E009_case_collision": case_collision,
    "SIP-E009_case_collision_in_folder": case_collision_folder,
    "SIP-E009_zip_duplicate_member": zip_duplicate,
    "SIP-E009_file_and_folder_same_name": file_and_folder,
    "SIP-E003_empty_folder": empty_folder,
    "SIP-E003_empty_zip": empty_zip,
    "SIP-E003_zip_of_folders_only": zip_folders_only,
    "SIP-E003_empty_tar": empty_tar,
    "SIP-E007_truncated_zip": truncated_zip,
    "SIP-E007_corrupt_targz": corrupt_targz,
    "SIP-E007_truncated_tar": truncated_tar,
    "SIP-E007_zip_crc_mismatch": zip_crc,
    "SIP-E007_encrypted_zip_member": zip_encrypted,
    "SIP-E007_not_a_zip": not_a_zip,
    "SIP-W001_control_character_name": control_character,
}
assert all(k[:8] in {"SIP-E003", "SIP-E004", "SIP-E005", "SIP-E006", "SIP-E007", "SIP-E009", "SIP-E015",
                       "SIP-W001"} and k[8] == "_" for k in HOSTILE)



# -- hostile content: staged safely, then refused by validation ---------------------------------------
def _astropy_fits(name: str) -> Path:
    import astropy

    return Path(astropy.__file__).parent / "io/fits/tests/data" / name


def manifest_escape(tmp: Path) -> Path:
    """A valid bag whose payload manifest also lists a file two levels above the bag."""
    import hashlib

    import bagit

    bag = _folder(tmp, {"a.txt": b"payload\n"})
    bagit.make_bag(str(bag), checksums=["sha256"])
    digest = hashlib.sha256(b"secret\n").hexdigest()
    with open(bag / "manifest-sha256.txt", "a", encoding="utf-8") as f:
        f.write(f"{digest}  data/../../{EVIL}\n")
    return bag


def bad_datasum(tmp: Path) -> Path:
    """astropy's checksum_false.fits: real data whose CHECKSUM and DATASUM keywords are wrong."""
    folder = _folder(tmp)
    (folder / "checksum_false.fits").write_bytes(_astropy_fits("checksum_false.fits").read_bytes())
    return folder


def truncated_fits(tmp: Path) -> Path:
    """A real HST file cut in the middle of its data."""
    folder = _folder(tmp)
    data = _astropy_fits("test0.fits").read_bytes()
    (folder / "test0.fits").write_bytes(data[: len(data) - 5000])
    return folder


CONTENT: dict[str, Builder] = {
    "SIP-E016_manifest_escape": manifest_escape,
    "FITS-E005_bad_datasum": bad_datasum,
    "FITS-E002_truncated_fits": truncated_fits,
}

__all__ = ["HOSTILE", "CONTENT", "EVIL", "code_of"]
