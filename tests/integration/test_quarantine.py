"""Kept copies of refused deliveries: listed with their reason, purged after the retention, with an event."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from oais.bootstrap import new_urn, utc_now
from oais.catalog import models as m
from oais.services import quarantine
from oais.services.ingest import IngestRequest, ingest


def test_refused_copy_is_kept_then_purged_after_retention(archive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "d"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / ".keep").write_bytes(b"")
    (empty / "bad.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)  # a truncated header
    result = ingest(IngestRequest(empty, "eit-195"), archive.ingest_context())
    assert result.aip_id is None and result.quarantine and Path(result.quarantine).is_dir()
    with archive.sessions() as s:
        kept = quarantine.list_kept(s)
    assert [k["delivery_id"] for k in kept] == [result.delivery_id] and "FITS-E00" in kept[0]["reason"]

    assert quarantine.purge(archive.sessions, 180, utc_now(), new_urn) == []  # still within retention
    assert Path(result.quarantine).is_dir()
    removed = quarantine.purge(archive.sessions, 180, utc_now() + timedelta(days=181), new_urn)
    assert [r["delivery_id"] for r in removed] == [result.delivery_id]
    assert not Path(result.quarantine).exists()
    with archive.sessions() as s:
        assert quarantine.list_kept(s) == []
        d = s.scalar(select(m.Delivery).where(m.Delivery.identifier == result.delivery_id))
        assert "del" in s.scalars(select(m.Event.type).where(m.Event.delivery_id == d.id)).all()
