"""Fill a freshly ``oais init``-ed archive's catalog with N ``files`` rows, fast and deterministically.

    python bench/catalog_fill.py --home HOME --files 1000000

Rows look like what ``oais ingest`` writes for space-science deliveries: AIPs of 100 FITS images
plus METS.xml, fits-headers.json and premis.xml (role ``metadata``); one AIP in 20 has a second
version (whose files are catalogued again, as ingest does); two replicas per AIP; nine PREMIS
events per AIP; a ``fits_headers`` row per image with instrument, wavelength, exposure, DATE-OBS,
the per-HDU keywords JSON and, as ingest writes them, copies of its file's version, role, format
and size. Six datasets (SOHO/EIT, SOHO/LASCO, SOHO/MDI, SDO/AIA, PROBA2/SWAP, SolO/EUI) with their
real wavelengths and mission years, so ``--instrument EIT --wavelength 195`` matches about 4 % of
the files.

Loading uses SQLAlchemy Core ``executemany`` in batches of 10,000 (about 50k rows/s); on SQLite
the secondary indexes of ``files`` and ``fits_headers`` are dropped before the load and re-created,
with their exact DDL as the migrations made them, after it (4x faster than maintaining them). That
includes the search indexes of revision 0008 (``ix_fits_headers_search``, ``ix_files_search_totals``):
the load fails if one of them is missing. No ANALYZE is run: the catalog is left as ingest would leave
it. Prints one JSON object: files, aips, a sample AIP id, the indexes re-created, seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, event, text

from oais.catalog import models as m
from oais.config import load_settings

BATCH = 10_000
SEARCH_INDEXES = {"ix_fits_headers_search", "ix_files_search_totals"}  # what search.py reads (revision 0008)
IMAGES_PER_AIP = 100
SEED = 5005

DATASETS = [  # identifier, producer, telescope, instrument, detectors, wavelengths, first year, last year
    ("soho-eit", "SOHO/EIT team", "SOHO", "EIT", ["EIT"], [171.0, 195.0, 284.0, 304.0], 1996, 2024),
    ("soho-lasco", "SOHO/LASCO team", "SOHO", "LASCO", ["C2", "C3"], [None], 1996, 2024),
    ("soho-mdi", "SOHO/MDI team", "SOHO", "MDI", ["MDI"], [6768.0], 1996, 2011),
    ("sdo-aia", "SDO/AIA team", "SDO", "AIA", ["AIA"],
     [94.0, 131.0, 171.0, 193.0, 211.0, 304.0, 335.0, 1600.0, 1700.0], 2010, 2024),
    ("proba2-swap", "PROBA2/SWAP team", "PROBA2", "SWAP", ["SWAP"], [174.0], 2010, 2024),
    ("solo-eui", "SolO/EUI team", "SOLO", "EUI", ["FSI", "HRI_EUV"], [174.0, 304.0], 2020, 2024),
]
EVENT_TYPES = ["mes", "for", "vir", "val", "ipc", "mee", "fix", "fix", "ing"]


def _hexes(rng: np.random.Generator, n: int, nbytes: int) -> list[str]:
    raw = rng.integers(0, 256, size=n * nbytes, dtype=np.uint8).tobytes()
    return [raw[i * nbytes:(i + 1) * nbytes].hex() for i in range(n)]


def fill(home: Path, n_files: int) -> dict[str, Any]:
    t_start = time.perf_counter()
    settings = load_settings(home)
    engine = create_engine(settings.catalog_url)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _fast(dbapi_conn: Any, _record: Any) -> None:  # load only: the archive's own settings are untouched
            dbapi_conn.execute("PRAGMA synchronous=OFF")

    rng = np.random.Generator(np.random.SFC64(SEED))
    now = datetime(2024, 6, 1, tzinfo=timezone.utc)
    t = {name: m.Base.metadata.tables[name] for name in
         ("producers", "datasets", "agents", "aips", "aip_versions", "files", "fits_headers", "replicas",
          "events", "event_agents")}

    with engine.begin() as conn:
        index_sql: list[str] = []
        index_names: list[str] = []
        if engine.dialect.name == "sqlite":
            for name, sql in conn.execute(text(
                    "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
                    "AND tbl_name IN ('files', 'fits_headers')")).all():
                index_sql.append(sql)
                index_names.append(name)
                conn.execute(text(f'DROP INDEX "{name}"'))
            missing = SEARCH_INDEXES - set(index_names)
            if missing:
                raise RuntimeError(f"the catalog lacks {sorted(missing)}: run 'oais db upgrade' first")
        conn.execute(t["producers"].insert(), [{"id": i + 1, "name": d[1], "created_at": now}
                                               for i, d in enumerate(DATASETS)])
        conn.execute(t["datasets"].insert(), [{"id": i + 1, "identifier": d[0], "title": f"{d[2]}/{d[3]} images",
                                               "producer_id": i + 1, "created_at": now}
                                              for i, d in enumerate(DATASETS)])
        agent_id = conn.execute(text("SELECT max(id) FROM agents")).scalar() or 0
        agent_id += 1
        conn.execute(t["agents"].insert(), [{"id": agent_id, "identifier": "software:oais-bench-fill/1",
                                             "name": "oais bench catalog fill", "type": "sof", "version": "1"}])

        rows: dict[str, list[dict[str, Any]]] = {k: [] for k in t}

        def flush(force: bool = False) -> None:
            # when one table's batch is full, every table is written, parents first: the rows a batch
            # refers to exist before it (PostgreSQL checks foreign keys on each insert)
            if not force and all(len(r) < BATCH for r in rows.values()):
                return
            for name in ("aips", "aip_versions", "files", "fits_headers", "replicas", "events", "event_agents"):
                if rows[name]:
                    conn.execute(t[name].insert(), rows[name])
                    rows[name] = []

        files = aips = versions = events = headers = 0
        sample = None
        while files < n_files:
            aips += 1
            ds = (aips - 1) % len(DATASETS)
            ident, _prod, telescope, instrument, detectors, waves, y0, y1 = DATASETS[ds]
            aip_uuid = str(uuid.UUID(bytes=rng.integers(0, 256, 16, dtype=np.uint8).tobytes(), version=4))
            aip_id = f"urn:uuid:{aip_uuid}"
            digest = hashlib.sha256(aip_id.encode()).hexdigest()
            n_versions = 2 if aips % 20 == 0 else 1
            created = datetime(y0, 1, 1, tzinfo=timezone.utc) + timedelta(days=float(rng.uniform(0, (y1 - y0 + 1) * 365)))
            rows["aips"].append({"id": aips, "identifier": aip_id, "dataset_id": ds + 1, "producer_id": ds + 1,
                                 "delivery_id": None, "object_path": f"{digest[:3]}/{digest[3:6]}/{digest[6:9]}/{digest}",
                                 "head_version": n_versions, "created_at": created})
            for loc in ("replica-a", "replica-b"):
                rows["replicas"].append({"aip_id": aips, "location": loc, "state": "ok",
                                         "last_verified_at": created, "last_verified_ok": True})
            for etype in EVENT_TYPES:
                events += 1
                rows["events"].append({"seq": events, "identifier": f"urn:uuid:{uuid.UUID(int=events, version=4)}",
                                       "type": etype, "at": created, "outcome": "suc", "detail": None,
                                       "outcome_detail": None, "aip_id": aips, "delivery_id": None,
                                       "objects": [aip_id]})
                rows["event_agents"].append({"event_seq": events, "agent_id": agent_id, "role": "exe"})
            obs0 = (created - timedelta(days=2)).replace(microsecond=0)
            images = min(IMAGES_PER_AIP, max(1, n_files - files - 3))
            wave_of = rng.integers(0, len(waves), size=images)
            det_of = rng.integers(0, len(detectors), size=images)
            exps = rng.uniform(0.5, 30.0, size=images)
            sizes = rng.integers(1 << 20, 16 << 20, size=images)
            for v in range(1, n_versions + 1):
                if files >= n_files:
                    break
                versions += 1
                rows["aip_versions"].append({"id": versions, "aip_id": aips, "number": v, "created_at": created,
                                             "message": f"Ingest of delivery {v}",
                                             "inventory_sha512": _hexes(rng, 1, 64)[0]})
                n_here = min(images + 3, n_files - files)
                sha256s, sha512s = _hexes(rng, n_here, 32), _hexes(rng, n_here, 64)
                for k in range(n_here):
                    files += 1
                    if k < 3:
                        path, puid, mime, fname = [
                            ("METS.xml", "fmt/101", "text/xml", "METS 1.12 XML"),
                            ("metadata/descriptive/fits-headers.json", "fmt/817", "application/json",
                             "JSON Data Interchange Format"),
                            ("metadata/preservation/premis.xml", "fmt/101", "text/xml", "PREMIS 3.0 XML")][k]
                        rows["files"].append({"id": files, "version_id": versions, "path": path,
                                              "content_path": f"v{v}/content/{path}", "size": 20_000 + k * 9_000,
                                              "sha256": sha256s[k], "sha512": sha512s[k], "puid": puid, "mime": mime,
                                              "format_name": fname, "role": "metadata", "original_name": None})
                        continue
                    j = k - 3
                    wave = waves[int(wave_of[j])]
                    det = detectors[int(det_of[j])]
                    obs = obs0 + timedelta(minutes=12 * j)
                    date_obs = obs.strftime("%Y-%m-%dT%H:%M:%S.000")
                    wtxt = "wl" if wave is None else f"{wave:g}"
                    name = f"{wtxt}/{instrument.lower()}_{wtxt}_{obs:%Y%m%d_%H%M%S}.fits"
                    path = f"representations/original/data/{name}"
                    rows["files"].append({"id": files, "version_id": versions, "path": path,
                                          "content_path": f"v{v}/content/{path}", "size": int(sizes[j]),
                                          "sha256": sha256s[k], "sha512": sha512s[k], "puid": "x-fmt/383",
                                          "mime": "application/fits", "format_name": "Flexible Image Transport System",
                                          "role": "original", "original_name": name})
                    kw = {"BITPIX": -32, "NAXIS": 2, "NAXIS1": 1024, "NAXIS2": 1024, "TELESCOP": telescope,
                          "INSTRUME": instrument, "DETECTOR": det, "EXPTIME": round(float(exps[j]), 3),
                          "OBJECT": "full FOV", "LEVEL": "1", "DATE-OBS": date_obs}
                    if wave is not None:
                        kw["WAVELNTH"], kw["WAVEUNIT"] = int(wave), "Angstrom"
                    headers += 1
                    rows["fits_headers"].append({
                        "id": headers, "file_id": files, "version_id": versions, "role": "original",
                        "puid": "x-fmt/383", "size": int(sizes[j]), "telescope": telescope, "instrument": instrument,
                        "detector": det, "wavelength": wave, "wave_unit": None if wave is None else "Angstrom",
                        "exptime": kw["EXPTIME"], "object": "full FOV", "level": "1", "date_obs": date_obs,
                        "date_end": None, "obs_start": obs, "obs_end": None,
                        "keywords": {"hdus": [{"index": 0, "name": "PRIMARY", "keywords": kw}]}})
            if sample is None and instrument == "EIT":
                sample = aip_id
            flush()
        flush(force=True)
        for sql in index_sql:
            conn.execute(text(sql))
    engine.dispose()
    return {"files": files, "fits_headers": headers, "aips": aips, "events": events, "sample_aip": sample,
            "indexes": sorted(index_names), "seconds": round(time.perf_counter() - t_start, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", required=True, type=Path)
    p.add_argument("--files", required=True, type=int)
    a = p.parse_args()
    print(json.dumps(fill(a.home, a.files)))


if __name__ == "__main__":
    main()
