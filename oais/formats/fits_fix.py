"""Writing a fixed copy of a FITS file (astropy ``output_verify='fix'``), never touching the original."""

from __future__ import annotations

import warnings
from pathlib import Path


def write_fixed_copy(source: Path, dest: Path) -> list[str]:
    """Write ``source`` to the new file ``dest`` with astropy's fixes of non-standard cards applied.

    Returns what astropy reported fixing (empty: nothing needed fixing, and ``dest`` is not written).
    When the original carries CHECKSUM/DATASUM, the copy gets them recomputed (its content changed).
    """
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyWarning

    fixes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VerifyWarning)
        with fits.open(source, mode="readonly", memmap=False) as hdul:
            hdul.verify("fix+warn")
            lines = [line.strip() for w in caught if issubclass(w.category, VerifyWarning)
                     for line in str(w.message).splitlines()]
            fixes = [line for line in lines if "fixed" in line.lower()]
            if not fixes:
                return []
            had_checksum = any("CHECKSUM" in h.header for h in hdul)
            dest.parent.mkdir(parents=True, exist_ok=True)
            hdul.writeto(dest, output_verify="fix", checksum=had_checksum, overwrite=False)
    return fixes
