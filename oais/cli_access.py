"""``oais search`` and ``oais dataset embargo|rules``: parsing and printing only (see oais.cli).

Wire into ``oais.cli.build_parser`` with ``cli_access.add_parsers(sub, common)``. Malformed options
(dates, wavelengths, ``K=V``) are argparse errors that name the option: exit 2. Times accept ISO 8601
dates or dates and times, UTC when no offset is given; ``--end DATE`` includes that whole day.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
ENV_USER = "OAIS_USER"


def _argtype(parse: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    """An argparse ``type``: a ValueError becomes "argument --OPTION: <message>", exit 2."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = what
    return convert


def _time(text: str) -> Any:
    from oais.services.search import parse_time

    return parse_time(text)


def _end_time(text: str) -> Any:
    from oais.services.search import parse_time

    return parse_time(text, end_of_day=True)


def _wavelength(text: str) -> Any:
    from oais.services.search import parse_wavelength

    return parse_wavelength(text)


def _keyword(text: str) -> Any:
    from oais.services.search import parse_keyword

    return parse_keyword(text)


def _limit(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must not be negative: {text}")
    return value


def default_user() -> str | None:
    """``$OAIS_USER``, else the login name of the process owner."""
    user = os.environ.get(ENV_USER, "").strip()
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name at all (some containers): anonymous
        return None


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _open(args: argparse.Namespace) -> Any:
    from oais.bootstrap import open_archive
    from oais.config import load_settings

    return open_archive(load_settings(getattr(args, "home", None)))


def _usage(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


# -- commands ----------------------------------------------------------------------------------
def cmd_search(args: argparse.Namespace) -> int:
    from oais.bootstrap import utc_now
    from oais.services.search import SearchCriteria, search

    if args.start and args.end and args.start > args.end:
        return _usage("oais search", "--start is after --end")
    user = args.user if args.user is not None else default_user()
    groups = list(args.group or [])
    criteria = SearchCriteria(dataset=args.dataset, producer=args.producer, instrument=args.instrument,
                              detector=args.detector, wavelength=args.wavelength, start=args.start,
                              end=args.end, keywords=list(args.keyword or []), format=args.format,
                              aip=args.aip)
    archive = _open(args)
    try:
        with archive.sessions() as session:
            result = search(session, criteria, user=user, groups=groups, now=utc_now(), limit=args.limit)
    finally:
        archive.close()
    if getattr(args, "json", False):
        _print_json({**result.to_dict(), "shown": len(result.files), "user": user, "groups": groups})
        return EXIT_OK
    for f in result.files:
        wave = f"{f['wavelength']:g}" if f["wavelength"] is not None else "-"
        print(f"{f['date_obs'] or '-':<24} {f['instrument'] or '-':<8} {wave:>7}  {f['dataset']}  "
              f"{f['aip_id']} v{f['version']}  {f['path']}  {_human(f['size'])}")
    more = f" (showing {len(result.files)})" if len(result.files) < result.count else ""
    print(f"{result.count} files, {_human(result.bytes)}{more}")
    return EXIT_OK


def cmd_dataset(args: argparse.Namespace) -> int:
    from oais.bootstrap import utc_now
    from oais.services import access

    as_json = getattr(args, "json", False)
    if args.dataset_command == "embargo" and args.until is None and not (args.user or args.group):
        return _usage("oais dataset embargo", "give --until, or --user/--group for a lasting restriction")
    archive = _open(args)
    try:
        now = utc_now()
        if args.dataset_command == "rules":
            with archive.sessions() as session:
                rows = access.list_rules(session, now)
        else:
            with archive.sessions.begin() as session:
                rule = access.set_embargo(session, args.dataset, args.until, args.user or (),
                                          args.group or (), args.note, now=now)
                rows = [access.rule_dict(rule, now)]
    finally:
        archive.close()
    if as_json:
        _print_json(rows if args.dataset_command == "rules" else rows[0])
        return EXIT_OK
    if args.dataset_command == "rules" and not rows:
        print("no access rule: every holding is open to everyone")
    for r in rows:
        target = f"dataset {r['dataset']}" if r["dataset"] else f"AIP {r['aip_id']}"
        when = f"embargo until {r['embargo_until']}" if r["embargo_until"] else "restricted"
        who = ", ".join([*r["users"], *(f"@{g}" for g in r["groups"])]) or "nobody"
        state = "in force" if r.get("in_force") else "lapsed"
        print(f"{target}: {when} ({state}); allowed: {who}{'  # ' + r['note'] if r['note'] else ''}")
    return EXIT_OK


# -- parsers -----------------------------------------------------------------------------------
SEARCH_KEYS = ("dataset", "producer", "instrument", "detector", "wavelength", "start", "end", "keyword", "format")


def add_search_options(p: argparse.ArgumentParser) -> None:
    """The search criteria options, shared by ``oais search`` and ``oais order create``."""
    p.add_argument("--dataset", help="dataset identifier")
    p.add_argument("--producer", help="producer name")
    p.add_argument("--instrument", help="INSTRUME as written, e.g. EIT")
    p.add_argument("--detector", help="DETECTOR as written")
    p.add_argument("--wavelength", type=_argtype(_wavelength, "wavelength"),
                   help="WAVELNTH: a number (195) or an inclusive range MIN-MAX (171-284)")
    p.add_argument("--start", type=_argtype(_time, "time"),
                   help="observations ending at or after this ISO 8601 date or time (UTC if no offset)")
    p.add_argument("--end", type=_argtype(_end_time, "time"),
                   help="observations beginning at or before this time (a date includes that whole day)")
    p.add_argument("--keyword", action="append", metavar="K=V", type=_argtype(_keyword, "keyword"),
                   help="FITS keyword equal to a value, in any HDU (repeatable; all must match)")
    p.add_argument("--format", help="PRONOM PUID, e.g. fmt/9")


def criteria_from_args(args: argparse.Namespace) -> Any:
    """A ``SearchCriteria`` from the options, or None when no criterion was given."""
    from oais.services.search import SearchCriteria

    if not any(getattr(args, k, None) for k in SEARCH_KEYS):
        return None
    if args.start and args.end and args.start > args.end:
        raise ValueError("--start is after --end")
    return SearchCriteria(dataset=args.dataset, producer=args.producer, instrument=args.instrument,
                          detector=args.detector, wavelength=args.wavelength, start=args.start, end=args.end,
                          keywords=list(args.keyword or []), format=args.format)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``search`` and ``dataset`` on ``sub`` (the subparsers of ``oais``)."""
    p = sub.add_parser("search", parents=[common], help="find archived files by dataset, instrument, "
                                                         "wavelength, time, FITS keywords or format")
    add_search_options(p)
    p.add_argument("--aip", help="one AIP identifier")
    p.add_argument("--limit", type=_argtype(_limit, "count"), default=100,
                   help="list at most N files (default 100; count and bytes cover every match)")
    p.add_argument("--user", help=f"search as this user (default: ${ENV_USER}, else your login name)")
    p.add_argument("--group", action="append", help="a group the user belongs to (repeatable)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("dataset", parents=[common], help="dataset embargoes and access restrictions")
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    emb = dsub.add_parser("embargo", parents=[common],
                          help="hide a dataset until a date from all but the users and groups named")
    emb.add_argument("dataset")
    emb.add_argument("--until", type=_argtype(_time, "time"),
                     help="ISO 8601 date or time the embargo lifts by itself (UTC if no offset); "
                          "without it, --user/--group restrict the dataset for good")
    emb.add_argument("--user", action="append", help="a user who may see it meanwhile (repeatable)")
    emb.add_argument("--group", action="append", help="a group that may see it meanwhile (repeatable)")
    emb.add_argument("--note", help="why (kept with the rule)")
    dsub.add_parser("rules", parents=[common], help="list embargoes and restrictions")
    p.set_defaults(func=cmd_dataset)


__all__ = ["add_parsers", "cmd_dataset", "cmd_search", "default_user"]
