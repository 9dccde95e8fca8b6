"""The drop folder end to end: `oais watch --once` as a cron job or the scheduler would run it."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import bagit

from tests.e2e.test_cli import oais
from tests.fixtures.deliveries import TEST0, delivery_manifest


def test_drop_folder_end_to_end(tmp_path: Path, fits_delivery: Path) -> None:
    home = tmp_path / "home"
    assert oais("init", "--home", str(home)).returncode == 0
    drop = tmp_path / "drop"
    drop.mkdir()
    # a complete bag
    bag = drop / "bag-1"
    shutil.copytree(fits_delivery, bag)
    bagit.make_bag(str(bag), checksums=["sha256"])
    # a plain folder marked READY, naming its dataset
    ready = drop / "folder-ready"
    ready.mkdir()
    shutil.copyfile(TEST0, ready / "test0.fits")
    (ready / "delivery.xml").write_bytes(delivery_manifest(dataset="eit-171"))
    (ready / "READY").write_text("")
    # a folder still being copied: no READY marker
    partial = drop / "folder-partial"
    partial.mkdir()
    shutil.copyfile(TEST0, partial / "test0.fits")
    # a zip and a damaged bag
    with zipfile.ZipFile(drop / "delivery.zip", "w") as zf:
        zf.write(TEST0, "delivery/test0.fits")
    broken = drop / "bag-broken"
    shutil.copytree(fits_delivery, broken)
    bagit.make_bag(str(broken), checksums=["sha256"])
    (broken / "data" / "test0.fits").write_bytes(b"SIMPLE  = damaged")

    r = oais("watch", str(drop), "--once", "--dataset", "eit-195", "--home", str(home), "--json")
    assert r.returncode == 0, r.stderr
    reports = {json.loads(line)["entry"]: json.loads(line) for line in r.stdout.splitlines()}
    assert set(reports) == {"bag-1", "folder-ready", "delivery.zip", "bag-broken"}
    assert {k: v["disposition"] for k, v in reports.items()} == {
        "bag-1": "accepted", "folder-ready": "accepted", "delivery.zip": "accepted", "bag-broken": "refused"}
    for name in ("bag-1", "folder-ready", "delivery.zip"):
        assert (drop / "done" / name).exists()
        saved = json.loads((drop / "done" / f"{name}.report.json").read_text())
        assert saved["aip_id"] == reports[name]["aip_id"]
    assert (drop / "failed" / "bag-broken").is_dir()
    failed = json.loads((drop / "failed" / "bag-broken.report.json").read_text())
    assert "SIP-E011" in {i["code"] for i in failed["issues"]}
    assert partial.is_dir() and not (drop / "done" / "folder-partial").exists()

    listed = json.loads(oais("aip", "list", "--home", str(home), "--json").stdout)
    assert sorted(a["dataset"] for a in listed) == ["eit-171", "eit-195", "eit-195"]

    # the producer finishes the copy and marks it ready: picked up on the next poll
    (partial / "READY").write_text("")
    r = oais("watch", str(drop), "--once", "--dataset", "eit-195", "--home", str(home), "--json")
    assert [json.loads(line)["entry"] for line in r.stdout.splitlines()] == ["folder-partial"]
    assert (drop / "done" / "folder-partial").is_dir()
    assert oais("watch", str(drop), "--once", "--home", str(home), "--json").stdout == ""
