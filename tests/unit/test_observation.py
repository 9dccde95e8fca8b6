"""Catalog facts from FITS keywords: first HDU wins, ISO dates parsed, other dates kept as text."""

from datetime import datetime, timezone

from oais.domain.observation import parse_time, summarize


def test_summary_takes_each_keyword_from_the_first_hdu_holding_it() -> None:
    hdus = [{"index": 0, "keywords": {"TELESCOP": "SOHO", "DATE_OBS": "1996-01-15T00:00:00"}},
            {"index": 1, "keywords": {"INSTRUME": "EIT", "WAVELNTH": 195, "DATE-OBS": "2003-10-28T01:00:10.5Z",
                                      "EXPTIME": 12.6, "TELESCOP": "other"}}]
    s = summarize(hdus)
    assert (s["telescope"], s["instrument"], s["wavelength"], s["exptime"]) == ("SOHO", "EIT", 195.0, 12.6)
    assert s["date_obs"] == "2003-10-28T01:00:10.5Z"  # DATE_OBS (Earth-referred) is not DATE-OBS
    assert s["obs_start"] == datetime(2003, 10, 28, 1, 0, 10, 500000, tzinfo=timezone.utc)
    assert s["obs_end"] is None and s["detector"] is None


def test_old_date_forms_stay_text() -> None:
    assert parse_time("28/10/03") is None and parse_time("2003-10-28") == datetime(2003, 10, 28, tzinfo=timezone.utc)
    assert summarize([{"keywords": {"DATE-OBS": "06/01/96", "WAVELNTH": "195"}}])["wavelength"] is None
