"""Deterministic benchmark workloads, scaled by SCALE.

Every byte comes from a seeded PRNG (numpy SFC64), so two runs with the same scale write identical
files, and nothing is compressible or deduplicable (every file has distinct, incompressible content;
no all-zero blocks that a file system or a hash could treat specially).

How SCALE applies (the issue asks for scaling "in file count and size"):

* ``large``: 8 files of 256 MiB x SCALE (the count stays 8: it is the number of large files that
  matters for parallelism, the size that matters for throughput);
* ``small``: 20,000 x SCALE files of 4-64 KiB (sizes uniform, fixed: per-file cost is the point) in
  nested folders (``dNN/sN/fNNNNN.bin``, about 100 files per leaf folder);
* ``fits``: 2,000 x SCALE valid FITS files of about 1 MiB (512 x 512 float32 image, realistic
  SOHO/EIT-like primary header), written with astropy;
* ``one_big``: one file of 4 GiB x SCALE.

Run as a script to generate a workload by hand::

    python bench/workloads.py small /tmp/small --scale 0.1
"""

from __future__ import annotations

import argparse
import os
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
CHUNK = 16 * MiB

LARGE_COUNT, LARGE_SIZE = 8, 256 * MiB
SMALL_COUNT, SMALL_MIN, SMALL_MAX = 20_000, 4 * KiB, 64 * KiB
FITS_COUNT, FITS_SIDE = 2_000, 512  # 512*512*4 B = 1 MiB of data + 2 header blocks
ONE_BIG_SIZE = 4 * GiB

# Seeds: one per workload; each file's stream is derived from (seed, index) so files differ.
SEED_LARGE, SEED_SMALL, SEED_FITS, SEED_ONE_BIG = 1001, 2002, 3003, 4004


def _rng(*key: int) -> np.random.Generator:
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence(list(key))))


def _random_bytes(rng: np.random.Generator, n: int) -> bytes:
    words = rng.integers(0, 2**64 - 1, size=(n + 7) // 8, dtype=np.uint64, endpoint=True)
    return words.tobytes()[:n]


def write_random_file(path: Path, size: int, *key: int) -> None:
    """``size`` pseudo-random bytes from the stream ``key``, written in 16 MiB chunks."""
    rng = _rng(*key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(CHUNK, left)
            f.write(_random_bytes(rng, n))
            left -= n


def scaled_count(base: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(base * scale))


def scaled_size(base: int, scale: float, minimum: int = 64 * KiB) -> int:
    """``base * scale`` rounded to 4 KiB, at least ``minimum``."""
    return max(minimum, int(base * scale) // 4096 * 4096)


def tree_bytes(root: Path) -> tuple[int, int]:
    """(files, bytes) under ``root``."""
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return files, size


# -- the workloads ----------------------------------------------------------------------------
def make_large(dest: Path, scale: float) -> Path:
    size = scaled_size(LARGE_SIZE, scale)
    for i in range(LARGE_COUNT):
        write_random_file(dest / f"large-{i:02d}.bin", size, SEED_LARGE, i)
    return dest


def small_layout(scale: float) -> list[tuple[str, int]]:
    """(relative path, size) of every small file: deterministic."""
    n = scaled_count(SMALL_COUNT, scale, minimum=10)
    sizes = _rng(SEED_SMALL, 0).integers(SMALL_MIN, SMALL_MAX, size=n, endpoint=True)
    return [(f"d{i // 1000:02d}/s{(i // 100) % 10}/f{i:05d}.bin", int(sizes[i])) for i in range(n)]


def make_small(dest: Path, scale: float) -> Path:
    rng = _rng(SEED_SMALL, 1)
    made: set[Path] = set()
    for rel, size in small_layout(scale):
        path = dest / rel
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        with open(path, "wb") as f:
            f.write(_random_bytes(rng, size))
    return dest


WAVELENGTHS = (171, 195, 284, 304)
START = datetime(2003, 10, 1)


def make_fits(dest: Path, scale: float) -> Path:
    """Valid single-HDU FITS images (BITPIX -32) with an EIT-like header; ~1 MiB each."""
    from astropy.io import fits

    n = scaled_count(FITS_COUNT, scale, minimum=2)
    rng = _rng(SEED_FITS, 0)
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        data = rng.standard_normal((FITS_SIDE, FITS_SIDE), dtype=np.float32)
        data *= 40.0
        data += 1000.0
        wave = WAVELENGTHS[i % len(WAVELENGTHS)]
        stamp = (START + timedelta(minutes=12 * i)).strftime("%Y-%m-%dT%H:%M:%S.000")  # one every 12 min
        hdr = fits.Header()
        hdr["TELESCOP"] = ("SOHO", "Solar and Heliospheric Observatory")
        hdr["INSTRUME"] = ("EIT", "Extreme-ultraviolet Imaging Telescope")
        hdr["DETECTOR"] = "EIT"
        hdr["WAVELNTH"] = (wave, "[Angstrom] wavelength")
        hdr["WAVEUNIT"] = "Angstrom"
        hdr["EXPTIME"] = (2.0 + (i % 7) * 1.5, "[s] exposure time")
        hdr["OBJECT"] = "full FOV"
        hdr["DATE-OBS"] = stamp
        hdr["LEVEL"] = "1"
        hdr["ORIGIN"] = "oais-archive bench (synthetic)"
        subdir = dest / f"{wave}"
        subdir.mkdir(exist_ok=True)
        fits.PrimaryHDU(data=data, header=hdr).writeto(subdir / f"eit_{wave}_{i:05d}.fits")
    return dest


def make_one_big(dest: Path, scale: float) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    write_random_file(dest / "one-big.bin", scaled_size(ONE_BIG_SIZE, scale, minimum=MiB), SEED_ONE_BIG, 0)
    return dest


MAKERS = {"large": make_large, "small": make_small, "fits": make_fits, "one_big": make_one_big}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workload", choices=sorted(MAKERS))
    p.add_argument("dest", type=Path)
    p.add_argument("--scale", type=float, default=1.0)
    a = p.parse_args()
    MAKERS[a.workload](a.dest, a.scale)
    files, size = tree_bytes(a.dest)
    print(f"{a.workload}: {files} files, {size / MiB:.1f} MiB in {a.dest}")


if __name__ == "__main__":
    main()
