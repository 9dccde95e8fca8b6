"""``oais order …`` and ``oais worker``: DIP orders as a scientist and an operator drive them."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any


def _user(args: argparse.Namespace) -> str:
    import getpass

    return args.user or os.environ.get("OAIS_USER") or getpass.getuser()


def _print(data: Any, as_json: bool, text: str) -> None:
    if as_json:
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        print(text)


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def cmd_order(args: argparse.Namespace) -> int:
    from oais.bootstrap import new_urn, utc_now
    from oais.cli import EXIT_FAILED, EXIT_OK, _open
    from oais.services import orders

    archive = _open(args)
    try:
        settings = archive.order_settings()
        user = _user(args)
        try:
            if args.order_command == "create":
                criteria = _criteria(args)
                if not args.aip and criteria is None:
                    print("oais order create: give --aip ID[@VERSION]... or search options", file=sys.stderr)
                    return 2
                out = orders.create_order(archive.sessions, user=user, groups=args.group or [], aips=args.aip or [],
                                          criteria=criteria, transforms=args.transform or [], now=utc_now(),
                                          new_id=new_urn, settings=settings, dry_run=args.dry_run)
                if args.dry_run:
                    _print(out, args.json, f"would order {out['files']} files, {out['bytes_selected']} bytes; "
                                           f"quota: {out['quota_used']} of {out['quota_bytes']} bytes used"
                                           + ("" if out["fits_in_quota"] else " - this order does NOT fit"))
                    return EXIT_OK if out["fits_in_quota"] else EXIT_FAILED
                if args.wait:
                    done = orders.work(archive.sessions, _worker_id(), locations=archive.location_map(),
                                       dips=archive.dips, clock=utc_now, settings=settings, order_id=out["order_id"])
                    with archive.sessions() as s:
                        out = out | orders.order_status(s, out["order_id"]) if not done else out | done[-1]
                _print(out, args.json, f"order {out['order_id']}: {out['state']}, {out['files']} files, "
                                       f"{out['bytes_selected']} bytes (quota used {out.get('quota_used', '?')} of "
                                       f"{settings.quota_bytes} bytes)")
                return EXIT_OK if out["state"] != "failed" else EXIT_FAILED
            if args.order_command == "status":
                with archive.sessions() as s:
                    out = orders.order_status(s, args.order_id, None if args.any_user else user)
                _print(out, args.json, f"order {out['order_id']}: {out['state']}"
                                       + (f" ({out['failure']})" if out["failure"] else ""))
                return EXIT_OK
            if args.order_command == "download":
                out = orders.download(archive.sessions, args.order_id, Path(args.dest), user=user, now=utc_now(),
                                      new_id=new_urn)
                _print(out, args.json, f"order {out['order_id']}: written to {out['path']}")
                return EXIT_OK
            if args.order_command == "list":
                from sqlalchemy import select

                from oais.catalog import models as m

                with archive.sessions() as s:
                    rows = [orders.status_dict(o) for o in s.scalars(
                        select(m.Order).where(m.Order.user == user).order_by(m.Order.created_at))]
                    used = orders.usage(s, user)
                _print({"user": user, "quota_bytes": settings.quota_bytes, "quota_used": used, "orders": rows},
                       args.json, "\n".join(f"{r['order_id']}  {r['state']}  {r['files']} files  {r['created']}"
                                            for r in rows) + f"\nquota: {used} of {settings.quota_bytes} bytes used")
                return EXIT_OK
        except orders.OrderError as exc:
            print(f"oais order: {exc}", file=sys.stderr)
            return EXIT_FAILED
    finally:
        archive.close()
    return EXIT_FAILED


def cmd_worker(args: argparse.Namespace) -> int:
    """Process queued orders (and expire old DIPs); ``--once`` drains the queue and exits."""
    from oais.bootstrap import utc_now
    from oais.cli import EXIT_OK, _open
    from oais.services import orders

    archive = _open(args)
    worker = _worker_id()
    try:
        while True:
            done = orders.work(archive.sessions, worker, locations=archive.location_map(), dips=archive.dips,
                               clock=utc_now, settings=archive.order_settings())
            expired = orders.expire(archive.sessions, utc_now())
            for d in done:
                _print(d, args.json, f"order {d['order_id']}: {d['state']}")
            for e in expired:
                _print({"order_id": e, "state": "expired"}, args.json, f"order {e}: expired")
            if args.once:
                return EXIT_OK
            time.sleep(args.interval)
    finally:
        archive.close()


def _criteria(args: argparse.Namespace) -> Any:
    from oais.cli_access import criteria_from_args

    return criteria_from_args(args)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    from oais.cli_access import add_search_options

    p = sub.add_parser("order", parents=[common], help="order DIPs: subsets, quicklooks, headers, cutouts")
    osub = p.add_subparsers(dest="order_command", metavar="ACTION", required=True)
    c = osub.add_parser("create", parents=[common], help="order files of AIPs, or of a search")
    c.add_argument("--aip", action="append", metavar="ID[@VERSION]", help="an AIP (its original files)")
    add_search_options(c)
    c.add_argument("--transform", action="append", metavar="NAME[:k=v,...]",
                   help="quicklook, headers, votable, cutout, decompress, original (default)")
    c.add_argument("--wait", action="store_true", help="process it now and return once ready or failed")
    c.add_argument("--dry-run", action="store_true", help="show the size and your quota; create nothing")
    st = osub.add_parser("status", parents=[common], help="an order's state")
    st.add_argument("order_id")
    st.add_argument("--any-user", action="store_true", help=argparse.SUPPRESS)
    dl = osub.add_parser("download", parents=[common], help="write the DIP zip of a ready order")
    dl.add_argument("order_id")
    dl.add_argument("dest", help="a file name or an existing folder")
    osub.add_parser("list", parents=[common], help="your orders and your quota")
    for q in (c, st, dl, osub.choices["list"]):
        q.add_argument("--user", help="who orders (default: $OAIS_USER, else the login name)")
    c.add_argument("--group", action="append", help="a group you belong to (for restricted datasets)")
    p.set_defaults(func=cmd_order)

    w = sub.add_parser("worker", parents=[common], help="process queued DIP orders and expire old DIPs")
    w.add_argument("--once", action="store_true", help="drain the queue once and exit")
    w.add_argument("--interval", type=float, default=5.0)
    w.set_defaults(func=cmd_worker)
