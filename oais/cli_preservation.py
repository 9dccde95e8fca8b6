"""``oais audit``, ``oais replicas check``, ``oais incidents list`` and ``oais scheduler``.

Parsing and printing only; the work is in ``oais.services.audit``, ``replicas``, ``incidents`` and
``oais.scheduler``. Exit 0 only when everything checked is intact (or was repaired).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from oais.cli import EXIT_FAILED, EXIT_OK, ProgressBar, _human, _open, _print_json

if TYPE_CHECKING:
    from oais.config import Settings
    from oais.storage.hash_ahead import HashAhead


def _hash_ahead(args: argparse.Namespace, settings: Settings) -> HashAhead | None:
    """For a whole, uncapped audit of a location (or of all): start hashing its stored files in
    another process now, while this one imports the catalog's libraries (``oais.storage.hash_ahead``).
    None otherwise: an audit of one AIP reads few files, and a capped one must read at its cap."""
    from oais.config import ConfigError

    if args.aip or os.environ.get("OAIS_AUDIT_HASH_AHEAD") == "0":
        return None
    try:
        if settings.audit_mb_per_s(args.location) is not None:
            return None
    except ConfigError:
        return None  # an unknown location: reported below, with the usual message
    from oais.storage.hash_ahead import HashAhead
    from oais.storage.local import ROOT_DIR  # not make_locations: its imports would delay the start

    return HashAhead.start([loc.path / ROOT_DIR for loc in settings.locations
                            if args.location is None or loc.name == args.location])


def cmd_audit(args: argparse.Namespace) -> int:
    from oais.config import load_settings

    settings = load_settings(args.home)
    ahead = _hash_ahead(args, settings)
    try:
        return _audit(args, settings, ahead)
    finally:
        if ahead is not None:
            ahead.close()


def _audit(args: argparse.Namespace, settings: Settings, ahead: HashAhead | None) -> int:
    from oais.bootstrap import new_urn, open_archive, utc_now
    from oais.services.audit import run_audit

    archive = open_archive(settings)
    try:
        if args.aip:
            from oais.services import holdings

            with archive.sessions() as s:
                aip_id = holdings.show_aip(s, args.aip)["aip_id"]  # raises NotFound with a clear message
            scope, policy = f"aip:{aip_id}", archive.audit_policy()
        elif args.location:
            archive.settings.location(args.location)  # a clear error for an unknown name
            scope, policy = f"location:{args.location}", archive.audit_policy(args.location)
        else:
            scope, policy = "all", archive.audit_policy()
        result = run_audit(archive.engine, archive.location_map(), scope, clock=utc_now, new_id=new_urn,
                           policy=policy, progress=ProgressBar(), ahead=ahead)
        if result.alerts:  # incidents were opened (the ORM and the incidents' modules are loaded then)
            from oais.services.incidents import send_alerts

            send_alerts(result.alerts, archive.alert_settings())
    finally:
        archive.close()
    data = result.to_dict()
    if args.json:
        _print_json(data)
    else:
        print(f"audit {data['audit_id']} ({scope}{', resumed' if data['resumed'] else ''}): {data['files']} files, "
              f"{_human(data['bytes'])}, {data['passed']} intact, {len(data['failed'])} not")
        for f in data["failed"]:
            print(f"  {f['outcome']}: {f['aip_id']} in {f['location']}: {f['detail']}", file=sys.stderr)
    return EXIT_OK if result.intact else EXIT_FAILED


def cmd_replicas(args: argparse.Namespace) -> int:
    from oais.bootstrap import new_urn, utc_now
    from oais.services.incidents import send_alerts
    from oais.services.replicas import check_replicas

    archive = _open(args)
    try:
        report = check_replicas(archive.sessions, archive.location_map(), archive.required_locations(),
                                repair=args.repair, clock=utc_now, new_id=new_urn)
        send_alerts(report.alerts, archive.alert_settings())
    finally:
        archive.close()
    data = report.to_dict()
    if args.json:
        _print_json(data)
    else:
        print(f"{data['aips']} AIPs checked: {len(data['problems'])} problems, {data['fixed']} repaired")
        for p in data["problems"]:
            print(f"  {p['location']}: {p['kind']} {p['path'] or ''} ({p['aip_id']}) {p['detail']}")
        for r in data["repaired"]:
            print(f"  repaired {r['aip_id']} in {r['location']} from {', '.join(r['sources']) or '-'}: "
                  f"{len(r['restored'])} restored, {len(r['moved_aside'])} moved aside")
        for u in data["unrepairable"]:
            print(f"  NO GOOD COPY: {u['aip_id']} in {u['location']}: {', '.join(u['paths'][:5])}", file=sys.stderr)
    return EXIT_OK if report.intact else EXIT_FAILED


def cmd_incidents(args: argparse.Namespace) -> int:
    from oais.services.incidents import list_incidents

    archive = _open(args)
    try:
        with archive.sessions() as s:
            rows = list_incidents(s, args.state)
    finally:
        archive.close()
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            print(f"#{r['id']} {r['opened_at']} {r['severity']} {r['kind']} [{r['state']}] {r['summary']}")
            for t in r["timeline"]:
                print(f"    {t['at']} {t['what']}: {t['detail'][:200]}")
    return EXIT_OK


def cmd_scheduler(args: argparse.Namespace) -> int:
    from oais.scheduler import run_scheduler

    archive = _open(args)
    try:
        run_scheduler(archive)
    finally:
        archive.close()
    return EXIT_OK


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("audit", parents=[common], help="fixity audit of stored copies (exit 0 only when intact)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--aip", help="one AIP")
    scope.add_argument("--location", help="every AIP copy in one storage location")
    scope.add_argument("--all", action="store_true", help="every copy of every AIP (the default)")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("replicas", parents=[common], help="replica checks and repair")
    rsub = p.add_subparsers(dest="replicas_command", metavar="ACTION", required=True)
    chk = rsub.add_parser("check", parents=[common], help="every AIP has complete copies where required")
    chk.add_argument("--repair", action="store_true", help="restore missing or damaged files from a good copy")
    p.set_defaults(func=cmd_replicas)

    p = sub.add_parser("incidents", parents=[common], help="preservation incidents and their timelines")
    isub = p.add_subparsers(dest="incidents_command", metavar="ACTION", required=True)
    il = isub.add_parser("list", parents=[common], help="list incidents")
    il.add_argument("--state", choices=["open", "repaired", "closed"])
    p.set_defaults(func=cmd_incidents)

    p = sub.add_parser("scheduler", parents=[common], help="run the periodic jobs (audit, replica check, "
                                                            "drop folder, reports) until stopped")
    p.set_defaults(func=cmd_scheduler)
