"""Quicklook throughput: our DIP quicklook renderer against astropy's own open + matplotlib plot.

Both render the same generated FITS images (1024 x 1024 float32 at SCALE=1, deterministic) to PNG,
alternating, in the same run. Prints::

    bench: dip_quicklook_files_per_s = N  (reference: ours, files per second)
    bench: dip_quicklook_vs_astropy_plot = R  (reference: astropy fits.getdata + ZScale + matplotlib imshow/savefig)

Usage: python bench/dip.py [--scale X] [--runs N]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_files(folder: Path, count: int, side: int) -> list[Path]:
    import numpy as np
    from astropy.io import fits

    rng = np.random.default_rng(1956)
    paths = []
    y, x = np.mgrid[0:side, 0:side]
    disc = np.exp(-(((x - side / 2) ** 2 + (y - side / 2) ** 2) / (2 * (side / 5) ** 2))).astype(np.float32)
    for i in range(count):
        data = (1000 * disc + rng.normal(100, 10, (side, side))).astype(np.float32)
        p = folder / f"img_{i:04d}.fits"
        hdu = fits.PrimaryHDU(data)
        hdu.header["INSTRUME"] = "EIT"
        hdu.header["WAVELNTH"] = 195
        hdu.writeto(p)
        paths.append(p)
    return paths


def ours(paths: list[Path], out: Path) -> float:
    from dip.quicklook import quicklook_png

    start = time.perf_counter()
    for p in paths:
        png, _ = quicklook_png(p)
        assert png
        (out / (p.stem + ".png")).write_bytes(png)
    return time.perf_counter() - start


def reference(paths: list[Path], out: Path) -> float:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.io import fits
    from astropy.visualization import ImageNormalize, ZScaleInterval

    start = time.perf_counter()
    for p in paths:
        data = fits.getdata(p)
        norm = ImageNormalize(data, interval=ZScaleInterval())
        h, w = data.shape
        fig = plt.figure(figsize=(w / 100, h / 100), dpi=100)
        ax = fig.add_axes([0, 0, 1, 1])
        ax.axis("off")
        ax.imshow(data, origin="lower", cmap="gray", norm=norm)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        (out / (p.stem + ".ref.png")).write_bytes(buf.getvalue())
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    # 40 images at SCALE=1: the figures are rates (files per second), and the reference renders about
    # 2 files/s, so 100 images took over 3 minutes of `make bench`'s 20 on a slow machine
    count = max(int(40 * args.scale), 2)
    side = max(int(1024 * min(args.scale, 1.0) ** 0.5), 64)
    with tempfile.TemporaryDirectory(prefix="oais-bench-dip-") as tmp:
        folder = Path(tmp)
        (folder / "in").mkdir()
        (folder / "out").mkdir()
        paths = make_files(folder / "in", count, side)
        ours(paths[:1], folder / "out")  # warm imports on both sides before timing
        reference(paths[:1], folder / "out")
        t_ours, t_ref = [], []
        for _ in range(args.runs):  # alternating, same files, same run
            t_ours.append(ours(paths, folder / "out"))
            t_ref.append(reference(paths, folder / "out"))
    mo, mr = statistics.median(t_ours), statistics.median(t_ref)
    print(f"bench: dip_quicklook_files_per_s = {count / mo:.1f}  (reference: ours, {count} files of {side}x{side} "
          f"float32, median of {args.runs})")
    print(f"bench: dip_quicklook_vs_astropy_plot = {mr / mo:.2f}  (reference: astropy fits.getdata + ZScale + "
          f"matplotlib imshow/savefig of the same files, {count / mr:.1f} files/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
