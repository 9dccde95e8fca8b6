"""``make demo``: a real delivery of FITS files becomes a verified AIP on two replicas.

Creates an archive in the folder given by ``--home`` (default ``demo-archive``), assembles a BagIt
delivery from real FITS files that astropy ships in its package data (no network), ingests it with
the ``oais`` command, and shows what was stored where.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

SAMPLE = (  # (path in the astropy package, folder in the delivery)
    ("io/fits/tests/data/test0.fits", "hst/wfpc2"),
    ("io/fits/tests/data/o4sp040b0_raw.fits", "hst/stis"),
    ("wcs/tests/data/j94f05bgq_flt.fits", "hst/acs"),
    ("io/fits/tests/data/checksum.fits", "aips"),  # NGC 1316, with CHECKSUM/DATASUM
    ("wcs/tests/data/dss.14.29.56-62.41.05.fits.gz", "dss"),  # Digitized Sky Survey, gzipped
)


def oais(*args: str) -> subprocess.CompletedProcess[str]:
    # -P: the oais installed in this environment, never a module of the current folder
    cmd = [sys.executable, "-P", "-m", "oais.cli", *args]
    print("$ oais " + " ".join(args), flush=True)
    return subprocess.run(cmd, check=True, text=True, capture_output="--json" in args)


def assemble_delivery(folder: Path) -> Path:
    """A BagIt bag of real FITS files (copies: astropy's own files are never touched)."""
    import astropy
    import bagit

    base = Path(astropy.__file__).parent
    folder.mkdir(parents=True)
    for rel, sub in SAMPLE:
        target = folder / sub
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base / rel, target / Path(rel).name)
    bagit.make_bag(str(folder), {"Source-Organization": "astropy test data (HST, DSS, AIPS)",
                                 "External-Description": "oais-archive demo delivery"},
                   checksums=["sha256", "sha512"])
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default="demo-archive")
    args = parser.parse_args(argv)
    home = Path(args.home).resolve()
    if home.exists():
        if not (home / "oais.toml").exists():
            print(f"demo: {home} exists and is not an archive home; choose another --home", file=sys.stderr)
            return 2
        shutil.rmtree(home)  # the demo always starts from an empty archive
    oais("init", "--home", str(home))
    delivery = assemble_delivery(home.parent / f"{home.name}-delivery")
    try:
        result = json.loads(oais("ingest", str(delivery), "--dataset", "demo-hst", "--producer",
                                 "astropy test data", "--home", str(home), "--json").stdout)
    finally:
        shutil.rmtree(delivery, ignore_errors=True)
    if result["disposition"] != "accepted":
        print(json.dumps(result, indent=2), file=sys.stderr)
        return 1
    print(f"accepted: AIP {result['aip_id']}, {result['files']} files, {result['bytes']} bytes")
    oais("aip", "show", result["aip_id"], "--home", str(home))
    print("\nStored on every replica (OCFL 1.1 objects):")
    for replica in result["replicas"]:
        root = Path(replica["path"])
        files = sorted(p for p in root.rglob("*") if p.is_file())
        print(f"  {replica['location']}: {root}  ({len(files)} files)")
        for p in files:
            print(f"      {p.relative_to(root)}")
    print(f"\nArchive home: {home}  (try: oais --home {home} aip list)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
