"""DIP transform specifications: parsing, the registry, parameter validation, and the small pure helpers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dip.base import has_module
from dip.model import DipInput, OutputFile, TransformError, TransformSpec, parse_transform, safe_segment
from dip.render import plan_transforms
from dip.transforms import TRANSFORMS, get_transform, help_text, validate_spec

SHA = hashlib.sha512(b"").hexdigest()


# ---------------------------------------------------------------- parse_transform


def test_parse_transform_with_parameters() -> None:
    spec = parse_transform("cutout:x=10,y=20,w=64,h=64")
    assert spec == TransformSpec("cutout", {"x": "10", "y": "20", "w": "64", "h": "64"})
    assert str(spec) == "cutout:h=64,w=64,x=10,y=20"  # canonical: sorted
    assert parse_transform(str(spec)) == spec


def test_parse_transform_without_parameters_and_with_colons_in_values() -> None:
    assert parse_transform("quicklook") == TransformSpec("quicklook", {})
    assert parse_transform(" headers ") == TransformSpec("headers", {})
    assert parse_transform("quicklook:interval=percentile:99.5, stretch=asinh").params == {
        "interval": "percentile:99.5", "stretch": "asinh"}


@pytest.mark.parametrize("text, transform, parameter", [
    ("", "", None),
    ("   ", "", None),
    ("Cutout", "Cutout", None),
    ("cut out", "cut out", None),
    ("cutout:", "cutout", None),
    ("cutout:x", "cutout", "x"),
    ("cutout:x=1,x=2", "cutout", "x"),
    ("cutout:x=", "cutout", "x"),
    ("cutout:x=1,,y=2", "cutout", None),
    ("cutout:X=1", "cutout", "X"),
    ("cutout:x=a=b", "cutout", "x"),
    (":x=1", "", None),
])
def test_parse_transform_refuses_bad_syntax(text: str, transform: str, parameter: str | None) -> None:
    with pytest.raises(TransformError) as caught:
        parse_transform(text)
    assert isinstance(caught.value, ValueError)
    assert (caught.value.transform, caught.value.parameter) == (transform, parameter)


# ---------------------------------------------------------------- the registry


def test_registry_contents() -> None:
    assert sorted(TRANSFORMS) == ["cutout", "decompress", "headers", "original", "quicklook", "votable"]
    for name, transform in TRANSFORMS.items():
        assert transform.name == name and transform.summary
        assert all(p.doc for p in transform.params)
        assert get_transform(name) is transform
    assert [p.name for p in TRANSFORMS["quicklook"].params] == ["interval", "stretch", "size", "cmap"]
    text = help_text()
    for transform in TRANSFORMS.values():
        assert f"{transform.name}: " in text
        assert all(f"  {p.name}: " in text for p in transform.params)


def test_unknown_transform() -> None:
    with pytest.raises(TransformError, match="unknown transform") as caught:
        get_transform("thumbnail")
    assert (caught.value.transform, caught.value.parameter) == ("thumbnail", None)
    assert "quicklook" in str(caught.value)


def test_defaults_are_filled_in() -> None:
    assert validate_spec(parse_transform("quicklook")) == {"cmap": "gray", "interval": "zscale", "size": "1024",
                                                           "stretch": "linear"}
    assert validate_spec(parse_transform("quicklook:size=128,interval=minmax"))["size"] == "128"
    assert validate_spec(parse_transform("original")) == {}
    assert validate_spec(parse_transform("cutout:w=10,h=12")) == {"frame": "pixel", "h": "12", "hdu": "auto",
                                                                  "w": "10"}


def test_typed_values() -> None:
    values = TRANSFORMS["quicklook"].validate({"interval": "percentile:99.5", "size": "300"})
    assert values == {"interval": ("percentile", 99.5), "stretch": "linear", "size": 300, "cmap": "gray"}
    values = TRANSFORMS["cutout"].validate({"x0": "1", "y0": "2", "x1": "3", "y1": "4", "hdu": "sci"})
    assert (values["x0"], values["y1"], values["hdu"], values["x"]) == (1, 4, "SCI", None)
    assert TRANSFORMS["cutout"].validate({"w": "4", "h": "4", "hdu": "2"})["hdu"] == 2


# ---------------------------------------------------------------- parameter validation


@pytest.mark.parametrize("spec, parameter, reason", [
    ("quicklook:stretch=log", "stretch", "one of linear, sqrt, asinh"),
    ("quicklook:interval=percentile:0", "interval", "0 < P <= 100"),
    ("quicklook:interval=percentile:abc", "interval", "0 < P <= 100"),
    ("quicklook:interval=median", "interval", "zscale, minmax or percentile"),
    ("quicklook:size=8", "size", ">= 16"),
    ("quicklook:size=100000", "size", "<= 4096"),
    ("quicklook:size=1e3", "size", "integer"),
    ("quicklook:colour=red", "colour", "unknown parameter"),
    ("headers:x=1", "x", "known: none"),
    ("cutout:x=1,y=2", "w", "missing"),
    ("cutout:w=10", "h", "missing"),
    ("cutout:w=10,h=0", "h", "> 0"),
    ("cutout:w=10.5,h=3", "w", "whole number"),
    ("cutout:w=abc,h=3", "w", "number"),
    ("cutout:x=5,w=10,h=10", "y", "both x and y"),
    ("cutout:x0=1,y0=1,x1=5", "y1", "missing"),
    ("cutout:x0=5,y0=1,x1=5,y1=9", "x1", "greater than x0"),
    ("cutout:x0=1,y0=9,x1=5,y1=3", "y1", "greater than y0"),
    ("cutout:x0=-1,y0=1,x1=5,y1=9", "x0", ">= 0"),
    ("cutout:x0=1,y0=1,x1=5,y1=9,w=3", "w", "not both"),
    ("cutout:w=3,h=3,hdu=1x", "hdu", "EXTNAME"),
    ("cutout:w=3,h=3,frame=galactic", "frame", "pixel, helioprojective"),
])
def test_bad_parameters_name_the_transform_and_parameter(spec: str, parameter: str, reason: str) -> None:
    parsed = parse_transform(spec)
    with pytest.raises(TransformError) as caught:
        validate_spec(parsed)
    assert (caught.value.transform, caught.value.parameter) == (parsed.name, parameter)
    assert reason in str(caught.value)
    assert str(caught.value).startswith(f"{parsed.name}: parameter {parameter!r}: ")


@pytest.mark.skipif(has_module("sunpy"), reason="sunpy is installed: these options are available")
def test_sunpy_options_without_sunpy_are_refused_clearly() -> None:
    with pytest.raises(TransformError, match="sunpy") as caught:
        validate_spec(parse_transform("cutout:x=100,y=-200,w=300,h=300,frame=helioprojective"))
    assert caught.value.parameter == "frame"
    with pytest.raises(TransformError, match="sunpy") as caught:
        validate_spec(parse_transform("quicklook:cmap=instrument"))
    assert caught.value.parameter == "cmap"


def test_plan_validates_everything_and_names_folders() -> None:
    plan = plan_transforms([parse_transform("quicklook"), parse_transform("cutout:w=5,h=5"),
                            parse_transform("quicklook:stretch=sqrt")])
    assert [p.folder for p in plan] == ["quicklook", "cutout", "quicklook-2"]
    assert [p.folder for p in plan_transforms([])] == ["original"]
    with pytest.raises(TransformError, match="twice"):
        plan_transforms([parse_transform("headers"), parse_transform("headers")])
    with pytest.raises(TransformError, match="twice"):  # same effective parameters, one spelled out
        plan_transforms([parse_transform("quicklook"), parse_transform("quicklook:stretch=linear")])
    with pytest.raises(TransformError) as caught:  # the bad one is found even after good ones
        plan_transforms([parse_transform("original"), parse_transform("cutout:w=5")])
    assert caught.value.parameter == "h"


# ---------------------------------------------------------------- values


def test_dip_input_checks_its_fields(tmp_path: Path) -> None:
    ok = DipInput("urn:uuid:abc", 2, "representations/original/data/a b.fits", tmp_path, 0, SHA, "eit")
    assert ok.ref == "urn:uuid:abc/v2/representations/original/data/a b.fits"
    assert ok.key == "abc/v2/representations/original/data/a b.fits"
    for bad in ({"path": "../x"}, {"path": "/abs"}, {"path": "a//b"}, {"path": "a\nb"}, {"version": 0},
                {"sha512": "ABC"}, {"size": -1}, {"aip_id": ""}):
        fields = {"aip_id": "urn:uuid:abc", "version": 1, "path": "a.fits", "source": tmp_path, "size": 0,
                  "sha512": SHA, "dataset": "eit", **bad}
        with pytest.raises(ValueError):
            DipInput(**fields)


def test_safe_segment() -> None:
    assert safe_segment("urn:uuid:0f1e") == "0f1e"
    assert safe_segment("ark:/12345/x y") == "ark__12345_x_y"
    assert safe_segment("..") == "_"


def test_output_file_needs_exactly_one_body(tmp_path: Path) -> None:
    assert OutputFile("a/b.png", b"x", None, "quicklook").size == 1
    with pytest.raises(ValueError):
        OutputFile("a/b.png", b"x", tmp_path, "quicklook")
    with pytest.raises(ValueError):
        OutputFile("a/../b.png", b"x", None, "quicklook")


# ---------------------------------------------------------------- pure helpers of the renderers


def test_scaling_handles_nan_and_flat_images() -> None:
    import numpy as np

    from dip.quicklook import scale_to_bytes

    data = np.arange(100, dtype=float).reshape(10, 10)
    data[0, :3] = np.nan
    data[1, 0] = np.inf
    levels = scale_to_bytes(data, interval=("minmax", None), stretch="linear")
    assert levels.dtype == np.uint8 and levels[0, 0] == 0 and levels[1, 0] == 0 and levels[-1, -1] == 255
    assert len(np.unique(levels)) > 50
    flat = scale_to_bytes(np.full((4, 4), 7.0), interval=("zscale", None), stretch="asinh")
    assert len(np.unique(flat)) == 1
    assert scale_to_bytes(np.full((4, 4), np.nan), interval=("zscale", None), stretch="linear") is None


def test_png_is_deterministic_flipped_and_shrunk() -> None:
    import io

    import numpy as np
    from PIL import Image

    from dip.quicklook import encode_png

    levels = np.zeros((40, 80), dtype=np.uint8)
    levels[0, :] = 255  # FITS row 0: the bottom of the picture
    png = encode_png(levels, 1024)
    assert png == encode_png(levels.copy(), 1024)
    with Image.open(io.BytesIO(png)) as im:
        pixels = np.asarray(im)
        assert im.size == (80, 40) and im.info == {}  # no text, time or other metadata chunks
    assert pixels[-1].min() == 255 and pixels[0].max() == 0
    with Image.open(io.BytesIO(encode_png(levels, 20))) as im:
        assert im.size == (20, 10)


def test_fits_stem() -> None:
    from dip.fitsread import fits_stem

    assert fits_stem("a/b.fits") == "a/b.fits"
    assert fits_stem("a/b.fits.gz") == "a/b.fits"
    assert fits_stem("a/b.fts.fz") == "a/b.fts"
    assert fits_stem("a/b.dat") == "a/b.dat.fits"


def test_header_values_as_json() -> None:
    from dip.metadata import jsonable, summarize

    assert [jsonable(v) for v in (True, 3, 1.5, "x", None, float("nan"), complex(1, 2))] == [
        True, 3, 1.5, "x", None, "nan", "(1+2j)"]
    hdus = [{"image": True, "cards": [{"keyword": "NAXIS", "value": 0, "comment": ""},
                                      {"keyword": "TELESCOP", "value": "SOHO ", "comment": ""}]},
            {"image": False, "cards": [{"keyword": "NAXIS", "value": 2, "comment": ""},
                                       {"keyword": "NAXIS1", "value": 16, "comment": ""}]},
            {"image": True, "cards": [{"keyword": "NAXIS", "value": 2, "comment": ""},
                                      {"keyword": "NAXIS1", "value": 1024, "comment": ""},
                                      {"keyword": "TELESCOP", "value": "other", "comment": ""},
                                      {"keyword": "DATE_OBS", "value": "2003-10-28", "comment": ""}]}]
    row = summarize(hdus)
    assert (row["TELESCOP"], row["NAXIS1"], row["DATE-OBS"]) == ("SOHO", 1024, None)
