"""Formats identified in a process of its own while a delivery is staged (``oais.formats.identify_ahead``):
the same formats as ``identify_many`` in the ingest's own process, nothing for files it was not told
of or could not read, never a wait for the staging threads, and the ingest's formats unchanged."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from oais.formats.identify import FITS, GZIP, FormatId, identify_many
from oais.formats.identify_ahead import IdentifyAhead, format_from_json, format_to_json
from tests.integration.test_identify import need_fido, pdf_bytes, png_bytes


@pytest.fixture
def mixed(tmp_path: Path) -> list[Path]:
    """Real FITS (astropy's), gzipped FITS, PNG, PDF, XML, text, random bytes, an empty file, and
    names holding a newline, a space and bytes that are not UTF-8."""
    import astropy

    test0 = Path(astropy.__file__).parent / "io/fits/tests/data/test0.fits"
    root = tmp_path / "mixed"
    (root / "sub folder").mkdir(parents=True)
    contents = {
        "test0.fits": test0.read_bytes(),
        "sub folder/test0.fits.gz": gzip.compress(test0.read_bytes()),
        "preview.png": png_bytes(),
        "report.pdf": pdf_bytes(),
        "label.xml": b'<?xml version="1.0" encoding="UTF-8"?>\n<label><target>Sun</target></label>\n',
        "README.txt": "EIT 195 images, level 1.\n".encode(),
        "blob.dat": bytes((i * 7 + 3) % 256 for i in range(70_000)),
        "empty.dat": b"",
        "two\nlines.txt": b"plain text\n",
    }
    paths = []
    for name, data in contents.items():
        (root / name).write_bytes(data)
        paths.append(root / name)
    odd = os.path.join(os.fsencode(root), b"caf\xe9.xml")  # Latin-1 bytes in a name
    with open(odd, "wb") as f:
        f.write(contents["label.xml"])
    paths.append(Path(os.fsdecode(odd)))
    return paths


def test_the_process_finds_what_identify_many_finds(mixed: list[Path], tmp_path: Path) -> None:
    need_fido()
    ahead = IdentifyAhead(tmp_path, start_after=1)
    try:
        for path in mixed:
            ahead.announce(path)
        found = ahead.results()
    finally:
        ahead.close()
    expected = identify_many(mixed)
    assert found == expected
    fits = found[mixed[0]]
    assert fits is FITS  # the module's constants come back as themselves, as from identify_many
    gz = found[mixed[1]]
    assert gz.puid == GZIP.puid and gz.inner is FITS
    assert {f.puid for f in found.values()} >= {"x-fmt/383", "x-fmt/266", "fmt/11", "fmt/18", "fmt/101",
                                                 "x-fmt/111"}


def test_the_process_starts_with_the_nth_file_and_is_told_of_the_first_ones(mixed: list[Path],
                                                                          tmp_path: Path) -> None:
    need_fido()
    ahead = IdentifyAhead(tmp_path, start_after=3)
    try:
        ahead.announce(mixed[2])
        ahead.announce(mixed[3])
        assert ahead.pid is None  # two files: the ingest identifies them itself
        ahead.announce(mixed[4])
        assert ahead.pid is not None
        ahead.announce(mixed[5])
        found = ahead.results()
    finally:
        ahead.close()
    assert found == identify_many(mixed[2:6])
    few = IdentifyAhead(tmp_path, start_after=3)
    few.announce(mixed[2])
    assert few.results() == {} and few.pid is None
    few.close()
    assert os.listdir(tmp_path) == ["mixed"]  # the output had no name: nothing is left behind


def test_formats_survive_their_json_form() -> None:
    fmt = FormatId("fmt/1", "x/y", "Some format", "fido 1.6.1 (PRONOM v109)", inner=FITS,
                   alternatives=("fmt/2", "fmt/3"))
    for value in (fmt, FITS, FormatId(None, None, "unknown")):
        back = format_from_json(format_to_json(value))
        assert back == value and type(back.alternatives) is tuple
    assert format_from_json(format_to_json(FITS)) is FITS


def test_only_files_announced_and_readable_are_reported(mixed: list[Path], tmp_path: Path) -> None:
    need_fido()
    gone = tmp_path / "gone.dat"
    ahead = IdentifyAhead(tmp_path, start_after=1)
    try:
        ahead.announce(mixed[2])
        ahead.announce(gone)  # never existed: the process cannot read it, the ingest will say why
        ahead.announce(mixed[3])
        found = ahead.results()
        ahead.announce(mixed[4])  # after the results: ignored, not an error
    finally:
        ahead.close()
    assert sorted(found) == sorted([mixed[2], mixed[3]])


def test_a_killed_process_reports_nothing(mixed: list[Path], tmp_path: Path) -> None:
    ahead = IdentifyAhead(tmp_path, start_after=1)
    try:
        for path in mixed:
            ahead.announce(path)
        assert ahead.pid is not None
        os.kill(ahead.pid, signal.SIGKILL)
        assert ahead.results() == {}  # every file is then identified by the ingest itself
    finally:
        ahead.close()


def test_announcing_never_waits_for_a_stopped_process(mixed: list[Path], tmp_path: Path) -> None:
    need_fido()
    ahead = IdentifyAhead(tmp_path, start_after=1)
    long_name = tmp_path / ("x" * 200)
    try:
        ahead.announce(mixed[3])  # starts the process
        assert ahead.pid is not None
        os.kill(ahead.pid, signal.SIGSTOP)  # it reads nothing: the pipe is full after about 4,900 paths

        def flood() -> None:
            for i in range(20_000):
                ahead.announce(long_name.with_name(f"{long_name.name}{i}"))
            ahead.announce(mixed[2])

        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        thread.join(60)
        assert not thread.is_alive(), "announcing waited for the process"
        os.kill(ahead.pid, signal.SIGCONT)
        found = ahead.results()
    finally:
        ahead.close()  # SIGKILL ends a stopped process too
    # the flooded names do not exist; the last path fits in the full pipe or is left to the ingest
    assert mixed[3] in found and set(found) <= {mixed[2], mixed[3]}
    assert found.get(mixed[2], identify_many([mixed[2]])[mixed[2]]) == identify_many([mixed[2]])[mixed[2]]


def test_describe_uses_the_formats_given_and_identifies_the_rest(tmp_path: Path) -> None:
    from oais.domain.package import FileRole
    from sip.describe import describe_delivery
    from sip.receive import stage_delivery

    need_fido()
    delivery = tmp_path / "delivery"
    delivery.mkdir()
    (delivery / "a.txt").write_text("plain text\n")
    (delivery / "b.png").write_bytes(png_bytes())
    staged = stage_delivery(delivery, tmp_path / "staged" / "delivery")
    claimed = FormatId("fmt/101", "text/xml", "Extensible Markup Language", "a test's claim")
    given = {staged.root / "a.txt": claimed}
    described = describe_delivery(staged, lambda: datetime.now(timezone.utc), lambda: "urn:uuid:x",
                                  identified=given)
    formats = {f.original_name: f.puid for f in described.files if f.role is FileRole.ORIGINAL}
    assert formats == {"a.txt": "fmt/101", "b.png": "fmt/11"}  # the claim is used as given


def test_staging_announces_every_file_it_writes(tmp_path: Path, mixed: list[Path]) -> None:
    from sip.receive import stage_delivery

    told: list[Path] = []
    lock = threading.Lock()

    def on_staged(path: Path) -> None:
        assert path.read_bytes() == (source / path.relative_to(staged_dest)).read_bytes()  # wholly written
        with lock:
            told.append(path)

    source = tmp_path / "source"  # names that staging accepts (UTF-8)
    for path in mixed[:8]:
        (source / path.relative_to(mixed[0].parent)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, source / path.relative_to(mixed[0].parent))
    staged_dest = tmp_path / "staged" / "delivery"
    staged = stage_delivery(source, staged_dest, on_staged=on_staged)
    assert sorted(told) == sorted(staged.digests)
    archive_path = Path(shutil.make_archive(str(tmp_path / "zipped"), "zip", source))
    told.clear()
    staged_dest = tmp_path / "staged2" / "delivery"
    staged = stage_delivery(archive_path, staged_dest, on_staged=on_staged)
    assert len(told) == 8 and sorted(told) == sorted(staged.digests)


def test_ingest_records_the_same_formats_with_and_without_the_process(  # type: ignore[no-untyped-def]
        archive, fits_delivery: Path, mixed: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from oais.domain.package import Disposition
    from oais.services import holdings
    from oais.services.ingest import IngestRequest, ingest

    need_fido()
    for path in mixed[1:9]:  # the names a folder delivery may hold (no newline, UTF-8)
        if "\n" not in path.name:
            shutil.copyfile(path, fits_delivery / path.name)
    reported: list[dict[Path, FormatId]] = []
    results = IdentifyAhead.results

    def spy(self: IdentifyAhead) -> dict[Path, FormatId]:
        reported.append(results(self))
        return reported[-1]

    monkeypatch.setattr(IdentifyAhead, "results", spy)
    monkeypatch.setattr(IdentifyAhead, "START_AFTER", 4)  # the delivery holds 12 files
    formats = []
    for setting in ("1", "0"):
        monkeypatch.setenv("OAIS_IDENTIFY_AHEAD", setting)
        result = ingest(IngestRequest(fits_delivery, "mixed"), archive.ingest_context())
        assert result.disposition is Disposition.ACCEPTED and result.aip_id is not None, result.issues
        with archive.sessions() as s:
            shown = holdings.show_aip(s, result.aip_id)
        formats.append({f["path"]: f["format"] for f in shown["files"]})
    assert formats[0] == formats[1]
    assert len(reported) == 1, "the process runs unless OAIS_IDENTIFY_AHEAD=0"
    delivered = sorted(p.relative_to(fits_delivery).as_posix() for p in fits_delivery.rglob("*") if p.is_file())
    assert sorted(p.as_posix().split("/delivery/", 1)[1] for p in reported[0]) == delivered


def test_the_process_imports_nothing_from_the_current_folder(mixed: list[Path], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # an archivist may run `oais ingest .` inside a delivery: a json.py there must stay data
    need_fido()
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    marker = tmp_path / "imported"
    (hostile / "json.py").write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    monkeypatch.chdir(hostile)
    ahead = IdentifyAhead(tmp_path, start_after=1)
    try:
        ahead.announce(mixed[2])
        found = ahead.results()
    finally:
        ahead.close()
    assert not marker.exists()
    assert found == identify_many([mixed[2]])
