"""DIP rendering (``dip.render_order``) on real FITS files from astropy's package data.

One order (original + quicklook + headers + votable + cutout) is rendered twice into two zips; the tests
check the bag (bagit-python and our own validator), the PNGs, the cutouts (FITS validity, CHECKSUM/DATASUM,
WCS), the provenance, the tables, and that the two renders are byte-identical. Sources are copies in
``tmp_path`` standing in for a replica; astropy's files are only read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import warnings
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dip.model import DipError, DipInput, InputFixityError, TransformError, parse_transform
from dip.render import RenderResult, render_order

CREATED = datetime(2025, 3, 1, 12, 30, 14, tzinfo=timezone.utc)
ORDER = "ORD-2025-0001"
CITATION = {"citation": "Test data from the astropy project (astropy.org).",
            "acknowledgement": "This research used data distributed by IDOC."}
FILES = {  # astropy package data -> (AIP id, version)
    "io/fits/tests/data/test0.fits": ("urn:uuid:11111111-1111-4111-8111-111111111111", 1),
    "wcs/tests/data/j94f05bgq_flt.fits": ("urn:uuid:22222222-2222-4222-8222-222222222222", 2),
    "nddata/tests/data/sip-wcs.fits": ("urn:uuid:33333333-3333-4333-8333-333333333333", 1),
    "io/fits/hdu/compressed/tests/data/m13_rice.fits": ("urn:uuid:44444444-4444-4444-8444-444444444444", 3),
    "io/fits/tests/data/checksum.fits": ("urn:uuid:44444444-4444-4444-8444-444444444444", 3),
}
BOX = {"x0": 5, "y0": 5, "x1": 25, "y1": 25}
SPECS = ["original", "quicklook:stretch=asinh,size=256", "headers", "votable",
         "cutout:" + ",".join(f"{k}={v}" for k, v in BOX.items())]
CELESTIAL = ("sip-wcs.fits", "m13_rice.fits", "checksum.fits")


def _input(source: Path, aip_id: str, version: int, name: str) -> DipInput:
    data = source.read_bytes()
    return DipInput(aip_id, version, f"representations/original/data/{name}", source, len(data),
                    hashlib.sha512(data).hexdigest(), "astropy-test")


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import astropy

    base = Path(astropy.__file__).parent
    root = tmp_path_factory.mktemp("replica")
    for rel in FILES:
        src = base / rel
        assert src.is_file(), f"astropy package data missing: {src}"
        shutil.copyfile(src, root / src.name)
    (root / "observing-log.txt").write_text("Not a FITS file.\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def inputs(replica: Path) -> list[DipInput]:
    out = [_input(replica / Path(rel).name, aip, v, Path(rel).name) for rel, (aip, v) in FILES.items()]
    out.append(_input(replica / "observing-log.txt", "urn:uuid:22222222-2222-4222-8222-222222222222", 2,
                      "observing-log.txt"))
    return out


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory, inputs: list[DipInput]) -> tuple[RenderResult, RenderResult]:
    out = tmp_path_factory.mktemp("orders")
    specs = [parse_transform(s) for s in SPECS]
    first = render_order(inputs, specs, order_id=ORDER, created=CREATED, citation=CITATION, dest=out / "a" / "o.zip")
    second = render_order(list(reversed(inputs)), specs, order_id=ORDER, created=CREATED, citation=CITATION,
                          dest=out / "b" / "o.zip")
    return first, second


@pytest.fixture(scope="module")
def bag(renders: tuple[RenderResult, RenderResult], tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("extracted")
    with zipfile.ZipFile(renders[0].zip_path) as zf:
        zf.extractall(target)
    return target / ORDER


def _payload(zip_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as zf:
        return {n: zf.read(n) for n in zf.namelist() if n.startswith(f"{ORDER}/data/")}


def _original(name: str) -> Path:
    import astropy

    return next(Path(astropy.__file__).parent / rel for rel in FILES if rel.endswith("/" + name))


# ---------------------------------------------------------------- the bag and the zip


def test_zip_is_a_valid_bag(bag: Path, renders: tuple[RenderResult, RenderResult]) -> None:
    import bagit

    from sip.bagit_check import validate_bag

    b = bagit.Bag(str(bag))
    b.validate()  # raises BagValidationError with the details
    assert b.version_info == (1, 0)
    assert b.info["Bagging-Date"] == "2025-03-01"
    assert b.info["External-Identifier"] == ORDER
    payload = [p for p in (bag / "data").rglob("*") if p.is_file()]
    assert b.info["Payload-Oxum"] == f"{sum(p.stat().st_size for p in payload)}.{len(payload)}"
    assert set(b.entries) >= {"bagit.txt", "bag-info.txt", "manifest-sha256.txt"}
    assert (bag / "tagmanifest-sha256.txt").is_file()
    report = validate_bag(bag)  # the archive's own RFC 8493 validator agrees
    assert report.issues == [], [str(i) for i in report.issues]
    assert sorted(f"data/{p.relative_to(bag / 'data').as_posix()}" for p in payload) == renders[0].files


def test_zip_entries_are_fixed_and_sorted(renders: tuple[RenderResult, RenderResult]) -> None:
    result = renders[0]
    data = result.zip_path.read_bytes()
    assert (hashlib.sha256(data).hexdigest(), len(data)) == (result.sha256, result.size)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names[:2] == [f"{ORDER}/bagit.txt", f"{ORDER}/bag-info.txt"]
    assert names[-2:] == [f"{ORDER}/manifest-sha256.txt", f"{ORDER}/tagmanifest-sha256.txt"]
    assert names[2:-2] == sorted(names[2:-2])
    assert {i.date_time for i in infos} == {(2025, 3, 1, 12, 30, 14)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert not list(result.zip_path.parent.glob(".*"))  # no temporary file or work folder left behind


def test_rendering_twice_gives_identical_files(renders: tuple[RenderResult, RenderResult]) -> None:
    a, b = (_payload(r.zip_path) for r in renders)
    assert sorted(a) == sorted(b)
    different = [name for name in a if a[name] != b[name]]
    assert different == []
    assert renders[0].zip_path.read_bytes() == renders[1].zip_path.read_bytes()
    assert renders[0].sha256 == renders[1].sha256


# ---------------------------------------------------------------- quicklooks


def test_every_png_decodes_and_is_not_blank(bag: Path, inputs: list[DipInput]) -> None:
    import numpy as np
    from PIL import Image

    pngs = sorted((bag / "data" / "quicklook").rglob("*.png"))
    # j94f05bgq's SCI extensions are 1 x 1 placeholders and the log is not FITS: no quicklook for them
    assert sorted(p.name for p in pngs) == sorted(f"{n}.png" for n in
                                                  ("test0.fits", "sip-wcs.fits", "m13_rice.fits", "checksum.fits"))
    for png in pngs:
        with Image.open(png) as im:
            im.load()
            assert im.mode == "L" and max(im.size) <= 256
            assert not any(k in im.info for k in ("tIME", "date:create", "Software"))
            pixels = np.asarray(im)
        assert pixels.std() > 0 and len(np.unique(pixels)) > 1, png.name
    m13 = Image.open(next(p for p in pngs if p.name == "m13_rice.fits.png"))
    assert m13.size == (256, 256)  # 300 x 300 shrunk to size=256


def test_skipped_inputs_are_explained(renders: tuple[RenderResult, RenderResult], bag: Path) -> None:
    notes = renders[0].notes
    assert any(n.startswith("quicklook: ") and "j94f05bgq_flt.fits" in n and "2 x 2" in n for n in notes)
    assert any(n.startswith("quicklook: ") and "observing-log.txt" in n and "not FITS" in n for n in notes)
    assert any(n.startswith("cutout: ") and "observing-log.txt" in n for n in notes)
    readme = (bag / "data" / "README.txt").read_text(encoding="utf-8")
    assert all(n in readme for n in notes)
    assert CITATION["citation"] in readme and CITATION["acknowledgement"] in readme


# ---------------------------------------------------------------- cutouts


def test_cutouts_are_valid_fits_with_checksums_and_history(bag: Path) -> None:
    from astropy.io import fits

    cutouts = sorted((bag / "data" / "cutout").rglob("*.fits"))
    assert sorted(p.name for p in cutouts) == sorted(["test0.fits", "sip-wcs.fits", "m13_rice.fits",
                                                      "checksum.fits"])
    for path in cutouts:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a checksum mismatch is only a warning in astropy
            with fits.open(path, checksum=True) as hdul:
                hdul.verify("exception")
                assert len(hdul) == 1
                hdu = hdul[0]
                assert hdu.verify_checksum() == 1 and hdu.verify_datasum() == 1, path.name
                assert hdu.data.shape == (BOX["y1"] - BOX["y0"], BOX["x1"] - BOX["x0"])
                history = " ".join(str(h) for h in hdu.header["HISTORY"]).replace("\n", "")
        assert "DIP cutout of AIP urn:uuid:" in history and f"representations/original/data/{path.name}" in history
        assert "pixel box x 5..24, y 5..24" in history


def test_cutout_pixels_are_the_original_pixels(bag: Path) -> None:
    import numpy as np
    from astropy.io import fits

    for path in (bag / "data" / "cutout").rglob("*.fits"):
        with fits.open(_original(path.name)) as orig, fits.open(path) as cut:
            image = next(h for h in orig if h.is_image and h.header.get("NAXIS", 0) >= 2)
            stored = (image.header["BITPIX"], image.header.get("BZERO"), image.header.get("BSCALE"))
            assert (cut[0].header["BITPIX"], cut[0].header.get("BZERO"), cut[0].header.get("BSCALE")) == stored
            expected = image.data[BOX["y0"]:BOX["y1"], BOX["x0"]:BOX["x1"]]
            assert np.array_equal(cut[0].data, expected), path.name  # e.g. sip-wcs: uint16 through BZERO


def test_cutout_wcs_points_where_the_original_does(bag: Path) -> None:
    import numpy as np
    from astropy.io import fits
    from astropy.wcs import WCS

    checked = 0
    for path in (bag / "data" / "cutout").rglob("*.fits"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(_original(path.name)) as orig, fits.open(path) as cut:
                index = next(i for i, h in enumerate(orig) if h.is_image and h.header.get("NAXIS", 0) >= 2)
                w_orig, w_cut = WCS(orig[index].header, fobj=orig), WCS(cut[0].header)
        for px, py in ((0, 0), (19, 0), (0, 19), (19, 19), (7.5, 11.25)):
            if path.name in CELESTIAL:
                before = w_orig.pixel_to_world(px + BOX["x0"], py + BOX["y0"])
                after = w_cut.pixel_to_world(px, py)
                assert before.separation(after).deg < 1e-6, (path.name, px, py)
            else:  # test0: a linear, non-celestial WCS
                before = w_orig.pixel_to_world_values(px + BOX["x0"], py + BOX["y0"])
                after = w_cut.pixel_to_world_values(px, py)
                assert np.allclose(before, after, rtol=0, atol=1e-9), (path.name, px, py)
        checked += 1
    assert checked == 4
    sip = next((bag / "data" / "cutout").rglob("sip-wcs.fits"))
    assert WCS(fits.getheader(sip)).sip is not None  # the distortion travelled with the cutout


# ---------------------------------------------------------------- provenance and tables


def test_provenance_names_every_aip_version_transform_and_input(bag: Path, inputs: list[DipInput]) -> None:
    prov = json.loads((bag / "data" / "provenance.json").read_text(encoding="utf-8"))
    assert prov["order"] == {"id": ORDER, "created": "2025-03-01T12:30:14Z"}
    assert {(a["aip_id"], a["version"]) for a in prov["aips"]} == {(i.aip_id, i.version) for i in inputs}
    assert {i["ref"]: i["sha512"] for i in prov["inputs"]} == {i.ref: i.sha512 for i in inputs}
    by_name = {t["name"]: t for t in prov["transforms"]}
    assert list(by_name) == ["original", "quicklook", "headers", "votable", "cutout"]
    assert by_name["cutout"]["requested"] == {k: str(v) for k, v in BOX.items()}
    assert by_name["cutout"]["parameters"] == {**{k: str(v) for k, v in BOX.items()}, "frame": "pixel", "hdu": "auto"}
    assert by_name["quicklook"]["parameters"] == {"cmap": "gray", "interval": "zscale", "size": "256",
                                                  "stretch": "asinh"}
    sw = prov["software"]
    assert sw["oais-archive"] and sw["astropy"] and sw["numpy"] and sw["pillow"]
    assert prov["citation"] == CITATION
    refs = {i.ref for i in inputs}
    outputs = {o["path"]: o for o in prov["outputs"]}
    payload = {f"data/{p.relative_to(bag / 'data').as_posix()}" for p in (bag / "data").rglob("*") if p.is_file()}
    assert set(outputs) == payload - {"data/README.txt", "data/provenance.json"}
    for path, o in outputs.items():
        assert o["from_inputs"] and set(o["from_inputs"]) <= refs, path
        assert path.startswith(f"data/{o['made_by']}") or o["made_by"] in ("headers", "votable")
    cut = next(o for p, o in outputs.items() if p.startswith("data/cutout/") and p.endswith("sip-wcs.fits"))
    assert cut["from_inputs"] == [next(i.ref for i in inputs if i.path.endswith("sip-wcs.fits"))]
    assert len(outputs["data/headers.csv"]["from_inputs"]) == 5


def test_headers_csv_has_one_row_per_fits_file(bag: Path, inputs: list[DipInput]) -> None:
    from astropy.io import fits

    with open(bag / "data" / "headers.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    fits_inputs = [i for i in inputs if i.path.endswith(".fits")]
    assert len(rows) == len(fits_inputs) == 5
    assert list(rows[0]) == ["aip_id", "version", "path", "TELESCOP", "INSTRUME", "DETECTOR", "DATE-OBS", "DATE-END",
                             "WAVELNTH", "WAVEUNIT", "EXPTIME", "OBJECT", "NAXIS1", "NAXIS2", "BUNIT", "LEVEL"]
    assert [(r["aip_id"], r["version"], r["path"]) for r in rows] == sorted(
        (i.aip_id, str(i.version), i.path) for i in fits_inputs)
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in rows}
    assert (by_name["sip-wcs.fits"]["INSTRUME"], by_name["sip-wcs.fits"]["NAXIS1"],
            by_name["sip-wcs.fits"]["NAXIS2"]) == ("Apogee Alta", "100", "50")
    m13 = by_name["m13_rice.fits"]
    assert (m13["NAXIS1"], m13["NAXIS2"]) == ("300", "300")  # the compressed image's, not its binary table's
    assert by_name["checksum.fits"]["OBJECT"] == "NGC 1316"
    for inp in fits_inputs:  # every card of every HDU in the JSON extract
        doc = json.loads(next((bag / "data" / "headers").rglob(inp.name + ".json")).read_text(encoding="utf-8"))
        assert (doc["aip_id"], doc["version"], doc["path"]) == (inp.aip_id, inp.version, inp.path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(inp.source) as hdul:
                assert [len(h["cards"]) for h in doc["hdus"]] == [len(h.header.cards) for h in hdul]
                assert doc["hdus"][0]["cards"][0] == {"keyword": "SIMPLE", "value": True,
                                                      "comment": hdul[0].header.comments["SIMPLE"]}


def test_votable_parses_with_astropy(bag: Path, inputs: list[DipInput]) -> None:
    from astropy.io.votable import parse

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no VOTable spec warnings either
        table = parse(str(bag / "data" / "selection.vot.xml")).get_first_table().to_table()
    assert len(table) == len(inputs)  # every input, FITS or not
    rows = {row["path"]: row for row in table}
    for inp in inputs:
        row = rows[inp.path]
        assert (row["aip_id"], int(row["version"]), int(row["size"]), row["sha512"]) == (
            inp.aip_id, inp.version, inp.size, inp.sha512)
    assert float(rows["representations/original/data/sip-wcs.fits"]["EXPTIME"]) == 120.0
    assert int(rows["representations/original/data/m13_rice.fits"]["NAXIS1"]) == 300


# ---------------------------------------------------------------- refusals


def test_bad_transform_parameters_are_refused_before_anything_is_written(inputs: list[DipInput],
                                                                        tmp_path: Path) -> None:
    dest = tmp_path / "out" / "order.zip"
    for spec, transform, parameter in (("cutout:x0=5,y0=5,x1=25,y1=abc", "cutout", "y1"),
                                       ("quicklook:stretch=log", "quicklook", "stretch"),
                                       ("quicklook:interval=percentile:120", "quicklook", "interval"),
                                       ("headers:foo=1", "headers", "foo")):
        with pytest.raises(TransformError) as caught:
            render_order(inputs, [parse_transform("original"), parse_transform(spec)], order_id=ORDER,
                         created=CREATED, citation=CITATION, dest=dest)
        assert (caught.value.transform, caught.value.parameter) == (transform, parameter)
        assert transform in str(caught.value) and repr(parameter) in str(caught.value)
    with pytest.raises(TransformError, match="unknown transform"):
        render_order(inputs, [parse_transform("thumbnail")], order_id=ORDER, created=CREATED, citation={}, dest=dest)
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def test_a_source_that_is_not_the_archived_file_is_refused(inputs: list[DipInput], tmp_path: Path) -> None:
    bad = DipInput(inputs[0].aip_id, inputs[0].version, inputs[0].path, inputs[0].source, inputs[0].size,
                   "0" * 128, inputs[0].dataset)
    for specs in ([], [parse_transform("headers")]):  # streamed into the zip / read by a transform
        dest = tmp_path / f"o{len(specs)}.zip"
        with pytest.raises(InputFixityError) as caught:
            render_order([bad, *inputs[1:]], specs, order_id=ORDER, created=CREATED, citation={}, dest=dest)
        assert caught.value.ref == bad.ref and caught.value.expected == "0" * 128
        assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no partial zip, no work folder


def test_the_same_file_twice_is_refused(inputs: list[DipInput], tmp_path: Path) -> None:
    with pytest.raises(DipError, match="listed twice"):
        render_order([inputs[0], inputs[0]], [], order_id=ORDER, created=CREATED, citation={}, dest=tmp_path / "o.zip")


# ---------------------------------------------------------------- other transforms on real files


def test_decompress_gives_the_same_image_uncompressed(inputs: list[DipInput], tmp_path: Path) -> None:
    import astropy
    import numpy as np
    from astropy.io import fits

    src = tmp_path / "bzero.fits"  # tile-compressed int16 with BZERO=32768: uint16 values
    shutil.copyfile(Path(astropy.__file__).parent / "io/fits/tests/data/compressed_float_bzero.fits", src)
    chosen = [i for i in inputs if i.name == "m13_rice.fits"]
    chosen.append(_input(src, "urn:uuid:66666666-6666-4666-8666-666666666666", 1, "bzero.fits"))
    result = render_order(chosen, [parse_transform("decompress"), parse_transform("original")], order_id=ORDER,
                          created=CREATED, citation={}, dest=tmp_path / "out" / "o.zip")
    names = sorted(f for f in result.files if f.startswith("data/decompress/"))
    assert len(names) == 2
    for inp in chosen:
        name = next(n for n in names if n.endswith("/" + inp.name))
        with zipfile.ZipFile(result.zip_path) as zf:
            data = zf.read(f"{ORDER}/{name}")
        with fits.open(io.BytesIO(data), checksum=True) as plain:
            plain.verify("exception")
            assert not any(isinstance(h, fits.CompImageHDU) for h in plain)
            assert [(h.verify_checksum(), h.verify_datasum()) for h in plain] == [(1, 1)] * len(plain)
        with fits.open(io.BytesIO(data)) as plain, fits.open(inp.source) as packed:
            assert plain[1].header["BITPIX"] == packed[1].header["BITPIX"]
            assert np.array_equal(plain[1].data, packed[1].data), inp.name
            same = plain[1].data.dtype.newbyteorder("=") == packed[1].data.dtype.newbyteorder("=")
            assert same  # uint16 (int16 with BZERO=32768) stays uint16
            assert "decompressed from tile-compressed HDU 1" in str(plain[1].header["HISTORY"])


def test_quicklook_of_an_image_with_nan_pixels(tmp_path: Path) -> None:
    import astropy
    import numpy as np
    from PIL import Image

    src = tmp_path / "nan.fits"
    shutil.copyfile(Path(astropy.__file__).parent / "io/fits/hdu/compressed/tests/data/compressed_with_nan.fits", src)
    inp = _input(src, "urn:uuid:55555555-5555-4555-8555-555555555555", 1, "nan.fits")
    for interval in ("zscale", "minmax", "percentile:99.5"):
        result = render_order([inp], [parse_transform(f"quicklook:interval={interval},stretch=sqrt")],
                              order_id=ORDER, created=CREATED, citation={}, dest=tmp_path / f"{interval[:4]}.zip")
        name = next(f for f in result.files if f.endswith(".png"))
        with zipfile.ZipFile(result.zip_path) as zf, Image.open(io.BytesIO(zf.read(f"{ORDER}/{name}"))) as im:
            pixels = np.asarray(im)
        assert pixels.std() > 0 and len(np.unique(pixels)) > 1, interval
