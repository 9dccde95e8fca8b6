"""DIP orders end to end on real FITS AIPs: quicklooks + header table + cutout, re-runs, rights, quotas,
expiry, and a worker killed mid-order."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import astropy
import bagit
import pytest
from sqlalchemy import select

from oais.bootstrap import new_urn, utc_now
from oais.catalog import models as m
from oais.services import orders
from oais.services.ingest import IngestRequest, ingest
from tests.e2e.test_cli import oais

ASTROPY = Path(astropy.__file__).parent
REAL = ["io/fits/tests/data/test0.fits", "wcs/tests/data/j94f05bgq_flt.fits", "nddata/tests/data/sip-wcs.fits"]


def _delivery(tmp: Path, name: str = "d") -> Path:
    d = tmp / name
    d.mkdir()
    for rel in REAL:
        shutil.copyfile(ASTROPY / rel, d / Path(rel).name)
    return d


def _unzip(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    (bag,) = [p for p in dest.iterdir() if p.is_dir()]
    return bag


def test_order_quicklook_headers_cutout(tmp_path: Path) -> None:
    from astropy.io import fits
    from PIL import Image

    home = tmp_path / "home"
    oais("init", "--home", str(home))
    aip = json.loads(oais("ingest", str(_delivery(tmp_path)), "--dataset", "hst", "--home", str(home),
                          "--json").stdout)["aip_id"]
    r = oais("order", "create", "--aip", aip, "--transform", "quicklook", "--transform", "headers",
             "--transform", "cutout:x=40,y=40,w=32,h=32", "--wait", "--json", "--home", str(home),
             env={"OAIS_USER": "alice"})
    assert r.returncode == 0, r.stderr
    order = json.loads(r.stdout)
    assert order["state"] == "ready", order
    st = json.loads(oais("order", "status", order["order_id"], "--json", "--home", str(home),
                         env={"OAIS_USER": "alice"}).stdout)
    assert st["state"] == "ready"
    out = tmp_path / "dip.zip"
    r = oais("order", "download", order["order_id"], str(out), "--home", str(home), "--json",
             env={"OAIS_USER": "alice"})
    assert r.returncode == 0, r.stderr
    bag = _unzip(out, tmp_path / "x")
    bagit.Bag(str(bag)).validate()  # a valid bag, every checksum verified
    data = bag / "data"
    pngs = sorted(data.rglob("*.png"))
    assert len(pngs) >= len(REAL) - 1
    import numpy as np

    for png in pngs:
        with Image.open(png) as im:
            pixels = np.asarray(im)
        assert pixels.std() > 0 and len(np.unique(pixels)) > 1, f"{png.name} is blank"
    cutouts = [p for p in data.rglob("*.fits") if "cutout" in p.as_posix()]
    assert cutouts
    shapes = []
    for cutout in cutouts:  # valid FITS, checksums written and correct, the box asked for (trimmed at edges)
        with fits.open(cutout, checksum=True) as hdul:
            hdul.verify("exception")
            hdu = next(h for h in hdul if h.data is not None)
            assert hdu.verify_checksum() == 1 and hdu.verify_datasum() == 1
            shapes.append(hdu.data.shape)
    assert all(0 < a <= 32 and 0 < b <= 32 for a, b in shapes), shapes  # trimmed at image edges
    assert (data / "headers.csv").read_text().count("\n") >= len(REAL) + 1
    prov = json.loads((data / "provenance.json").read_text())
    text = json.dumps(prov)
    assert aip in text and "quicklook" in text and "cutout" in text and '"w": "32"' in text.replace(" ", " ")
    # the download is recorded as a dissemination event on the AIP
    shown = json.loads(oais("aip", "show", aip, "--json", "--home", str(home)).stdout)
    assert [e for e in shown["events"] if e["type"] == "dis"]
    assert json.loads(oais("order", "status", order["order_id"], "--json", "--home", str(home),
                           env={"OAIS_USER": "alice"}).stdout)["state"] == "downloaded"


def _payload(zip_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as zf:
        return {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist() if "/data/" in n}


def test_rerunning_an_order_gives_byte_identical_payload(archive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    aip = ingest(IngestRequest(_delivery(tmp_path), "hst"), archive.ingest_context()).aip_id
    settings = archive.order_settings()
    created = orders.create_order(archive.sessions, user="bob", groups=(), aips=[aip],
                                  transforms=["quicklook", "headers", "votable", "cutout:x=30,y=30,w=20,h=20"],
                                  now=utc_now(), new_id=new_urn, settings=settings)
    (first,) = orders.work(archive.sessions, "w1", locations=archive.location_map(), dips=archive.dips,
                           clock=utc_now, settings=settings)
    assert first["state"] == "ready", first
    with archive.sessions() as s:
        o = s.scalar(select(m.Order).where(m.Order.identifier == created["order_id"]))
        before = _payload(Path(o.result_path))
        moved = Path(o.result_path).rename(tmp_path / "first.zip")
    with archive.sessions.begin() as s:  # the same frozen order, run again
        o = s.scalar(select(m.Order).where(m.Order.identifier == created["order_id"]))
        o.state = "queued"
    orders.work(archive.sessions, "w2", locations=archive.location_map(), dips=archive.dips, clock=utc_now,
                settings=settings)
    with archive.sessions() as s:
        o = s.scalar(select(m.Order).where(m.Order.identifier == created["order_id"]))
        after = _payload(Path(o.result_path))
    assert before == after and moved.exists()


def test_consumer_without_rights_gets_nothing(archive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from oais.services.access import set_embargo
    from oais.services.search import SearchCriteria, search

    aip = ingest(IngestRequest(_delivery(tmp_path), "secret"), archive.ingest_context()).aip_id
    with archive.sessions.begin() as s:
        set_embargo(s, "secret", utc_now() + timedelta(days=365), users=["carol"])
    with archive.sessions() as s:
        assert search(s, SearchCriteria(dataset="secret"), user="mallory", groups=(), now=utc_now()).count == 0
        assert search(s, SearchCriteria(dataset="secret"), user="carol", groups=(), now=utc_now()).count == 3
    settings = archive.order_settings()
    with pytest.raises(orders.OrderError, match="no AIP"):
        orders.create_order(archive.sessions, user="mallory", groups=(), aips=[aip], now=utc_now(), new_id=new_urn,
                            settings=settings)
    with pytest.raises(orders.OrderError, match="no file"):
        orders.create_order(archive.sessions, user="mallory", groups=(), criteria=SearchCriteria(dataset="secret"),
                            now=utc_now(), new_id=new_urn, settings=settings)
    ok = orders.create_order(archive.sessions, user="carol", groups=(), aips=[aip], now=utc_now(), new_id=new_urn,
                             settings=settings)
    with archive.sessions() as s:
        with pytest.raises(orders.OrderError):
            orders.order_status(s, ok["order_id"], user="mallory")  # nor someone else's order
    # a year later the embargo has ended: everyone may see and order it, without a manual step
    with archive.sessions() as s:
        later = utc_now() + timedelta(days=366)
        assert search(s, SearchCriteria(dataset="secret"), user="mallory", groups=(), now=later).count == 3


def test_quota_and_expiry(archive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    aip = ingest(IngestRequest(_delivery(tmp_path), "hst"), archive.ingest_context()).aip_id
    small = orders.OrderSettings(quota_bytes=200_000, expiry=timedelta(days=1))
    shown = orders.create_order(archive.sessions, user="dan", groups=(), aips=[aip], now=utc_now(), new_id=new_urn,
                                settings=small, dry_run=True)  # the size and the quota, before ordering
    assert shown["order_id"] is None and shown["fits_in_quota"] and shown["quota_used"] == 0
    first = orders.create_order(archive.sessions, user="dan", groups=(), aips=[aip], now=utc_now(), new_id=new_urn,
                                settings=small)
    assert first["quota_used"] == first["bytes_selected"] <= 200_000
    with pytest.raises(orders.OrderError, match="quota"):
        orders.create_order(archive.sessions, user="dan", groups=(), aips=[aip], now=utc_now(), new_id=new_urn,
                            settings=small)
    (done,) = orders.work(archive.sessions, "w", locations=archive.location_map(), dips=archive.dips,
                          clock=utc_now, settings=small)
    with archive.sessions() as s:
        path = Path(s.scalar(select(m.Order.result_path).where(m.Order.identifier == first["order_id"])))
    assert path.is_file()
    assert orders.expire(archive.sessions, utc_now() + timedelta(days=2)) == [first["order_id"]]
    assert not path.exists()
    with archive.sessions() as s:
        assert orders.order_status(s, first["order_id"])["state"] == "expired"


def test_worker_killed_mid_order_completes_exactly_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    oais("init", "--home", str(home))
    cfg = home / "oais.toml"
    cfg.write_text(cfg.read_text().replace("claim_seconds = 600", "claim_seconds = 2"))
    big = tmp_path / "many"
    big.mkdir()
    for i in range(60):
        shutil.copyfile(ASTROPY / REAL[1], big / f"acs_{i:03d}.fits")
    aip = json.loads(oais("ingest", str(big), "--dataset", "acs", "--home", str(home), "--json").stdout)["aip_id"]
    created = json.loads(oais("order", "create", "--aip", aip, "--transform", "quicklook", "--transform", "headers",
                              "--json", "--home", str(home), env={"OAIS_USER": "eve"}).stdout)
    env = {k: v for k, v in os.environ.items() if k not in ("OAIS_HOME", "OAIS_CATALOG_URL")}
    worker = subprocess.Popen([sys.executable, "-m", "oais.cli", "worker", "--once", "--home", str(home)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from oais.bootstrap import open_archive
    from oais.config import load_settings

    archive = open_archive(load_settings(home))
    try:
        deadline = time.monotonic() + 60
        state = "queued"
        while time.monotonic() < deadline:
            with archive.sessions() as s:
                state = s.scalar(select(m.Order.state).where(m.Order.identifier == created["order_id"]))
            if state == "running":
                break
            time.sleep(0.05)
        assert state == "running"
        time.sleep(0.5)  # part-way through rendering
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        with archive.sessions() as s:
            o = s.scalar(select(m.Order).where(m.Order.identifier == created["order_id"]))
            assert o.state == "running" and o.ready_at is None  # the kill left it unfinished
        time.sleep(2.5)  # the dead worker's claim lapses
        r = oais("worker", "--once", "--home", str(home), "--json")
        assert r.returncode == 0, r.stderr
        with archive.sessions() as s:
            o = s.scalar(select(m.Order).where(m.Order.identifier == created["order_id"]))
            assert o.state == "ready" and o.attempts == 2 and o.claimed_by is None
            ready_at = o.ready_at
        assert list(archive.dips.glob("*.zip")) == [Path(o.result_path)]
        assert not [p for p in archive.dips.iterdir() if p.suffix != ".zip"], "temporary files left"
        bag = _unzip(Path(o.result_path), tmp_path / "x")
        bagit.Bag(str(bag)).validate()
        assert oais("worker", "--once", "--home", str(home), "--json").stdout == ""  # nothing left to do
        with archive.sessions() as s:
            assert s.scalar(select(m.Order.ready_at).where(m.Order.identifier == created["order_id"])) == ready_at
    finally:
        archive.close()
        if worker.poll() is None:
            worker.kill()
    assert io  # keep the import for type checkers
