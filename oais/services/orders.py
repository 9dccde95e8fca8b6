"""DIP orders: create (a frozen list of AIP versions and files), process in a worker, download, expire.

States: queued -> running -> ready -> downloaded | expired, or failed (with the reason). A worker
claims an order with an atomic conditional update and a claim that lapses: a worker killed mid-order
leaves it ``running`` with a lapsed claim, and the next worker takes it again. Rendering is
deterministic and the zip is written atomically, so a re-run writes the same bytes; the transition
to ``ready`` is a conditional update by the claiming worker, so an order completes exactly once.
Each download is recorded as a PREMIS dissemination event on every AIP it drew from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from oais.catalog import models as m
from oais.catalog import repository as repo
from oais.domain import premis
from oais.formats.fileio import WRITE_MAX

ACTIVE = ("queued", "running", "ready")
MAX_ATTEMPTS = 3


class OrderError(Exception):
    """An order cannot be created or served; the message says why."""


@dataclass(frozen=True)
class OrderSettings:
    quota_bytes: int = 50 * 10**9  # per user, over orders queued, running or ready
    expiry: timedelta = timedelta(days=14)
    claim: timedelta = timedelta(minutes=10)
    citation: str = ""
    acknowledgement: str = ""


def _iso(t: datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t else None


def usage(session: Session, user: str) -> int:
    return session.scalar(select(func.coalesce(func.sum(m.Order.bytes_selected), 0))
                          .where(m.Order.user == user, m.Order.state.in_(ACTIVE))) or 0


def _head_files(session: Session, aip: m.Aip, version: int | None) -> list[dict[str, Any]]:
    number = version or aip.head_version
    v = session.scalar(select(m.AipVersion).where(m.AipVersion.aip_id == aip.id, m.AipVersion.number == number))
    if v is None:
        raise OrderError(f"AIP {aip.identifier} has no version {number}")
    return [{"aip_id": aip.identifier, "version": number, "path": f.path, "size": f.size, "sha512": f.sha512}
            for f in v.files if f.role == "original"]


def select_files(session: Session, *, aips: Sequence[str], criteria: Any, user: str, groups: Collection[str],
                 now: datetime) -> list[dict[str, Any]]:
    """The frozen selection: AIP ids (``ID`` or ``ID@VERSION``: their original files) or a search."""
    from oais.services.access import can_access

    files: list[dict[str, Any]] = []
    for ref in aips:
        ident, _, ver = ref.partition("@")
        aip = repo.find_aip(session, ident)
        if aip is None or not can_access(session, aip, user, groups, now):
            raise OrderError(f"no AIP {ident!r} available to {user}")  # never reveal what exists
        files.extend(_head_files(session, aip, int(ver.lstrip("v")) if ver else None))
    if criteria is not None:
        from oais.services.search import search

        result = search(session, criteria, user=user, groups=groups, now=now, limit=None)
        files.extend({"aip_id": f["aip_id"], "version": f["version"], "path": f["path"], "size": f["size"],
                      "sha512": f["sha512"]} for f in result.files)
    unique = {(f["aip_id"], f["version"], f["path"]): f for f in files}
    return [unique[k] for k in sorted(unique)]


def create_order(sessions: sessionmaker[Session], *, user: str, groups: Collection[str], aips: Sequence[str] = (),
                 criteria: Any = None, transforms: Sequence[str] = (), now: datetime, new_id: Callable[[], str],
                 settings: OrderSettings = OrderSettings(), dry_run: bool = False) -> dict[str, Any]:
    """Freeze the selection and queue the order; ``dry_run`` only shows its size against the quota."""
    from dip.model import TransformError, parse_transform
    from dip.transforms import validate_spec

    try:  # every transform and parameter checked before anything is queued
        for spec in [parse_transform(t) for t in transforms] or [parse_transform("original")]:
            validate_spec(spec)
    except TransformError as exc:
        raise OrderError(str(exc)) from None
    with sessions.begin() as s:
        files = select_files(s, aips=aips, criteria=criteria, user=user, groups=groups, now=now)
        if not files:
            raise OrderError("the selection holds no file you may order")
        size = sum(f["size"] for f in files)
        used = usage(s, user)
        if dry_run:
            return {"order_id": None, "state": "not created (dry run)", "files": len(files), "bytes_selected": size,
                    "quota_bytes": settings.quota_bytes, "quota_used": used,
                    "fits_in_quota": used + size <= settings.quota_bytes,
                    "aips": sorted({f"{f['aip_id']}@{f['version']}" for f in files})}
        if used + size > settings.quota_bytes:
            raise OrderError(f"quota exceeded: this order selects {size} bytes, {user} already has {used} bytes "
                             f"in active orders, the quota is {settings.quota_bytes} bytes")
        order = m.Order(identifier=new_id(), user=user, created_at=now, state="queued",
                        request={"aips": list(aips), "criteria": getattr(criteria, "describe", lambda: None)(),
                                 "transforms": [t for t in transforms] or ["original"]},
                        frozen=files, bytes_selected=size, attempts=0)
        s.add(order)
        s.flush()
        return status_dict(order) | {"quota_bytes": settings.quota_bytes, "quota_used": used + size}


def status_dict(o: m.Order) -> dict[str, Any]:
    return {"order_id": o.identifier, "user": o.user, "state": o.state, "created": _iso(o.created_at),
            "files": len(o.frozen), "bytes_selected": o.bytes_selected, "attempts": o.attempts,
            "transforms": o.request.get("transforms"), "ready_at": _iso(o.ready_at),
            "downloaded_at": _iso(o.downloaded_at), "expires_at": _iso(o.expires_at), "failure": o.failure,
            "result_sha256": o.result_sha256, "result_bytes": o.result_bytes,
            "aips": sorted({f"{f['aip_id']}@{f['version']}" for f in o.frozen})}


def order_status(session: Session, order_id: str, user: str | None = None) -> dict[str, Any]:
    o = session.scalar(select(m.Order).where(m.Order.identifier == order_id))
    if o is None or (user is not None and o.user != user):
        raise OrderError(f"no order {order_id!r}")
    return status_dict(o)


def claim(sessions: sessionmaker[Session], worker: str, now: datetime, settings: OrderSettings,
          order_id: str | None = None) -> str | None:
    """Take the oldest queued order, or one whose worker's claim lapsed. Atomic across workers."""
    with sessions.begin() as s:
        q = (select(m.Order.id, m.Order.identifier)
             .where(or_(m.Order.state == "queued", (m.Order.state == "running") & (m.Order.claimed_until < now)))
             .order_by(m.Order.created_at, m.Order.id))
        if order_id:
            q = q.where(m.Order.identifier == order_id)
        for oid, ident in s.execute(q).all():
            res = s.execute(update(m.Order).where(
                m.Order.id == oid, or_(m.Order.state == "queued",
                                      (m.Order.state == "running") & (m.Order.claimed_until < now)))
                .values(state="running", claimed_by=worker, claimed_until=now + settings.claim,
                        attempts=m.Order.attempts + 1))
            if res.rowcount == 1:  # type: ignore[attr-defined]
                return ident
    return None


def _inputs(s: Session, order: m.Order, locations: dict[str, Any]) -> list[Any]:
    """A good copy of each frozen file: a replica whose copy hashes to the catalog's sha512."""
    from dip.model import DipInput
    from oais.formats.digest import read_digest

    out = []
    for f in order.frozen:
        aip = repo.find_aip(s, f["aip_id"])
        assert aip is not None
        version = next(v for v in aip.versions if v.number == f["version"])
        row = next(x for x in version.files if x.path == f["path"])
        for replica in sorted(aip.replicas, key=lambda r: (r.state != "ok", r.location)):
            store = locations.get(replica.location)
            if store is None:
                continue
            src = store.object_dir(aip.object_path) / row.content_path
            try:
                size, digest = read_digest(src)
            except OSError:
                continue
            if digest == f["sha512"] and size == f["size"]:
                out.append(DipInput(aip_id=aip.identifier, version=f["version"], path=f["path"], source=src,
                                    size=size, sha512=digest, dataset=aip.dataset.identifier))
                break
        else:
            raise OrderError(f"no intact copy of {f['path']} of {f['aip_id']} in any replica")
    return out


def process(sessions: sessionmaker[Session], order_id: str, worker: str, *, locations: dict[str, Any],
            dips: Path, clock: Callable[[], datetime], settings: OrderSettings) -> dict[str, Any]:
    """Render a claimed order to ``dips/<order>.zip`` and mark it ready (once); retry or fail on error."""
    from dip.model import parse_transform
    from dip.render import render_order

    with sessions() as s:
        order = s.scalar(select(m.Order).where(m.Order.identifier == order_id))
        assert order is not None
        try:
            inputs = _inputs(s, order, locations)
            citation = {"citation": settings.citation, "acknowledgement": settings.acknowledgement,
                        "datasets": ", ".join(sorted({i.dataset for i in inputs}))}
            # a work folder of this order's own: only the worker holding the claim uses it, so what a
            # killed worker left there is cleared before the next attempt
            work_dir = dips / ".work" / _safe(order.identifier)
            shutil.rmtree(work_dir, ignore_errors=True)
            work_dir.mkdir(parents=True)
            rendered = render_order(inputs, [parse_transform(t) for t in order.request["transforms"]],
                                    order_id=_safe(order.identifier), created=order.created_at, citation=citation,
                                    dest=work_dir / f"{_safe(order.identifier)}.zip", inputs_verified=True)
            final = dips / rendered.zip_path.name
            os.replace(rendered.zip_path, final)
            shutil.rmtree(work_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                (dips / ".work").rmdir()
            result = dataclasses.replace(rendered, zip_path=final)
            error = None
        except Exception as exc:  # noqa: BLE001 - a failed render is recorded on the order
            error, result = f"{type(exc).__name__}: {exc}", None
    now = clock()
    with sessions.begin() as s:
        o = s.scalar(select(m.Order).where(m.Order.identifier == order_id))
        assert o is not None
        if o.state != "running" or o.claimed_by != worker:
            return status_dict(o)  # another worker took it over: its result stands
        if result is not None:
            o.state, o.ready_at, o.expires_at = "ready", now, now + settings.expiry
            o.result_path, o.result_sha256, o.result_bytes = str(result.zip_path), result.sha256, result.size
            o.failure, o.claimed_by, o.claimed_until = None, None, None
        elif o.attempts < MAX_ATTEMPTS and not (error or "").startswith("OrderError"):  # may pass next time
            o.state, o.failure, o.claimed_by, o.claimed_until = "queued", f"attempt {o.attempts}: {error}", None, None
        else:
            o.state, o.failure, o.claimed_by, o.claimed_until = "failed", error, None, None
        return status_dict(o)


def _safe(identifier: str) -> str:
    return identifier.rsplit(":", 1)[-1]


def work(sessions: sessionmaker[Session], worker: str, *, locations: dict[str, Any], dips: Path,
         clock: Callable[[], datetime], settings: OrderSettings, order_id: str | None = None,
         max_orders: int | None = None) -> list[dict[str, Any]]:
    """Process queued orders (or one) until none is left; returns their final states."""
    done = []
    while max_orders is None or len(done) < max_orders:
        ident = claim(sessions, worker, clock(), settings, order_id)
        if ident is None:
            break
        done.append(process(sessions, ident, worker, locations=locations, dips=dips, clock=clock, settings=settings))
    return done


def download(sessions: sessionmaker[Session], order_id: str, dest: Path, *, user: str | None, now: datetime,
             new_id: Callable[[], str]) -> dict[str, Any]:
    """Copy the DIP zip to ``dest`` (checked against its sha256), record the dissemination."""
    with sessions.begin() as s:
        o = s.scalar(select(m.Order).where(m.Order.identifier == order_id))
        if o is None or (user is not None and o.user != user):
            raise OrderError(f"no order {order_id!r}")
        if o.state not in ("ready", "downloaded") or not o.result_path:
            raise OrderError(f"order {order_id} is {o.state}" + (f": {o.failure}" if o.failure else ""))
        src = Path(o.result_path)
        target = dest / src.name if dest.is_dir() else dest
        tmp = target.with_name(f".{target.name}.part")
        h = hashlib.sha256()
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while chunk := fin.read(WRITE_MAX):
                h.update(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        if h.hexdigest() != o.result_sha256:
            tmp.unlink(missing_ok=True)
            raise OrderError(f"the DIP of order {order_id} does not match its recorded sha256")
        os.replace(tmp, target)
        o.state, o.downloaded_at = "downloaded", now
        agent = premis.archive_agent()
        for aip_ref in sorted({f["aip_id"] for f in o.frozen}):
            aip = repo.find_aip(s, aip_ref)
            repo.add_event(s, premis.Event(
                identifier=new_id(), type=premis.EventType.DISSEMINATION, at=now, outcome=premis.Outcome.SUCCESS,
                detail=f"DIP of order {o.identifier} delivered to {o.user}",
                outcome_detail=f"{sum(1 for f in o.frozen if f['aip_id'] == aip_ref)} file(s); "
                               f"transforms {', '.join(o.request.get('transforms', []))}; zip sha256 {o.result_sha256}",
                agents=(premis.LinkedAgent(agent.identifier, premis.AgentRole.EXECUTING_PROGRAM),),
                objects=(aip_ref,)), {agent.identifier: agent}, aip=aip)
        return status_dict(o) | {"path": str(target)}


def expire(sessions: sessionmaker[Session], now: datetime) -> list[str]:
    """Remove the files of orders past their expiry; the orders stay, marked expired."""
    gone = []
    with sessions.begin() as s:
        for o in s.scalars(select(m.Order).where(m.Order.state.in_(("ready", "downloaded")),
                                                 m.Order.expires_at < now)):
            if o.result_path:
                Path(o.result_path).unlink(missing_ok=True)
            o.state = "expired"
            gone.append(o.identifier)
    return gone


__all__ = ["OrderError", "OrderSettings", "create_order", "claim", "process", "work", "download", "expire",
           "order_status", "usage"]
