"""Embargoes and restrictions: who may see and order the holdings of a dataset or an AIP.

An :class:`~oais.catalog.models.AccessRule` applies to one dataset or one AIP and names an embargo
date, a list of users and groups, or both. A user is *allowed* by a rule when

* the rule names the user or one of the user's groups, or
* the rule has an embargo date and ``now`` is at or after it (so an embargo opens by itself).

A rule with users/groups and no date is a permanent restriction; a date without users/groups is an
embargo that nobody passes before the date. Holdings are visible (in searches) and deliverable (in
orders) when every rule that applies to them (its dataset's and its own AIP's) allows the user.

Two implementations of the same predicate, kept in agreement by the tests:
:func:`visible_filter` is a SQL condition on ``Aip`` (for searches over millions of files) and
:func:`can_access` evaluates the rules in Python (for one AIP in an order). Membership of a name in
the rules' JSON lists is tested in SQL with ``json_each`` on SQLite and ``jsonb @>`` on PostgreSQL
(:class:`json_list_has`, compiled per dialect).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date, datetime, time, timezone
from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, exists, literal, not_, or_, select
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from oais.catalog import models as m
from oais.catalog import repository as repo
from oais.services.holdings import NotFound


class json_list_has(FunctionElement[bool]):  # noqa: N801 - a SQL function name
    """``json_list_has(column, name)``: the JSON list stored in ``column`` holds the string ``name``."""

    type = Boolean()
    name = "json_list_has"
    inherit_cache = True


@compiles(json_list_has, "sqlite")
def _json_list_has_sqlite(element: json_list_has, compiler: Any, **kw: Any) -> str:
    column, value = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXISTS (SELECT 1 FROM json_each({column}) AS jl WHERE jl.value = {value})"


@compiles(json_list_has, "postgresql")
def _json_list_has_postgresql(element: json_list_has, compiler: Any, **kw: Any) -> str:
    column, value = (compiler.process(c, **kw) for c in element.clauses)
    return f"(CAST({column} AS JSONB) @> jsonb_build_array(CAST({value} AS TEXT)))"


@compiles(json_list_has)
def _json_list_has_other(element: json_list_has, compiler: Any, **kw: Any) -> str:
    raise CompileError(f"access rules need SQLite or PostgreSQL, not {compiler.dialect.name}")


def _names(values: Iterable[str] | None) -> list[str]:
    """Distinct, stripped, non-empty names in their first order."""
    out: list[str] = []
    for v in values or ():
        v = str(v).strip()
        if v and v not in out:
            out.append(v)
    return out


def _check_now(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("naive datetime given as 'now'; pass a timezone-aware time")


def _allowed_sql(user: str | None, groups: Collection[str], now: datetime) -> ColumnElement[bool]:
    r = m.AccessRule
    terms: list[ColumnElement[bool]] = [and_(r.embargo_until.is_not(None), r.embargo_until <= now)]
    if user:
        terms.append(json_list_has(r.users, literal(user)))
    terms.extend(json_list_has(r.groups, literal(g)) for g in _names(groups))
    return or_(*terms)


def visible_filter(user: str | None, groups: Collection[str], now: datetime) -> ColumnElement[bool]:
    """A SQL condition on ``m.Aip`` (correlated): no rule on its dataset or on itself refuses ``user``."""
    _check_now(now)
    r = m.AccessRule
    refusing = (select(literal(1)).where(
        or_(r.dataset_id == m.Aip.dataset_id, r.aip_id == m.Aip.id),
        not_(_allowed_sql(user, groups, now))).correlate(m.Aip))
    return not_(exists(refusing))


def rule_allows(rule: m.AccessRule, user: str | None, groups: Collection[str], now: datetime) -> bool:
    """Whether one rule lets ``user`` (member of ``groups``) see and order its holdings at ``now``."""
    _check_now(now)
    if rule.embargo_until is not None and rule.embargo_until <= now:
        return True
    if user and user in (rule.users or []):
        return True
    return bool(set(_names(groups)) & set(rule.groups or []))


def can_access(session: Session, aip: m.Aip | str, user: str | None, groups: Collection[str],
               now: datetime) -> bool:
    """Whether ``user`` may receive ``aip`` (a row or an identifier) at ``now``: used by orders."""
    if isinstance(aip, str):
        found = repo.find_aip(session, aip)
        if found is None:
            raise NotFound(f"no AIP {aip!r} in the catalog (see 'oais aip list')")
        aip = found
    rules = session.scalars(select(m.AccessRule).where(
        or_(m.AccessRule.dataset_id == aip.dataset_id, m.AccessRule.aip_id == aip.id)))
    return all(rule_allows(rule, user, groups, now) for rule in rules)


def as_utc(value: datetime | date | None) -> datetime | None:
    """A date means its first instant (midnight UTC); a naive datetime is taken as UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _set_rule(session: Session, where: ColumnElement[bool], target: dict[str, Any],
              until: datetime | date | None, users: Iterable[str], groups: Iterable[str],
              note: str | None, now: datetime | None) -> m.AccessRule:
    users_, groups_ = _names(users), _names(groups)
    if until is None and not users_ and not groups_:
        raise ValueError("an access rule needs an embargo date, or users or groups to restrict to")
    rule = session.scalar(select(m.AccessRule).where(where))
    if rule is None:
        rule = m.AccessRule(**target, created_at=now or datetime.now(timezone.utc))
        session.add(rule)
    rule.embargo_until = as_utc(until)
    rule.users, rule.groups, rule.note = users_, groups_, note
    session.flush()
    return rule


def set_embargo(session: Session, dataset: str | m.Dataset, until: datetime | date | None,
                users: Iterable[str] = (), groups: Iterable[str] = (), note: str | None = None, *,
                now: datetime | None = None) -> m.AccessRule:
    """Put ``dataset`` under embargo until ``until`` and/or restrict it to ``users``/``groups``.

    A dataset has one rule: setting it again replaces the date, the lists and the note.
    """
    row = dataset if isinstance(dataset, m.Dataset) else repo.find_dataset(session, dataset)
    if row is None:
        raise NotFound(f"no dataset {dataset!r} in the catalog")
    return _set_rule(session, m.AccessRule.dataset_id == row.id, {"dataset_id": row.id}, until, users,
                     groups, note, now)


def restrict_aip(session: Session, aip: str | m.Aip, until: datetime | date | None,
                 users: Iterable[str] = (), groups: Iterable[str] = (), note: str | None = None, *,
                 now: datetime | None = None) -> m.AccessRule:
    """The same as :func:`set_embargo` for one AIP (on top of its dataset's rule, if any)."""
    row = aip if isinstance(aip, m.Aip) else repo.find_aip(session, aip)
    if row is None:
        raise NotFound(f"no AIP {aip!r} in the catalog (see 'oais aip list')")
    return _set_rule(session, m.AccessRule.aip_id == row.id, {"aip_id": row.id}, until, users, groups,
                     note, now)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def rule_dict(rule: m.AccessRule, now: datetime | None = None) -> dict[str, Any]:
    out = {
        "id": rule.id,
        "dataset": rule.dataset.identifier if rule.dataset else None,
        "aip_id": rule.aip.identifier if rule.aip else None,
        "embargo_until": _iso(rule.embargo_until),
        "users": list(rule.users or []),
        "groups": list(rule.groups or []),
        "created": _iso(rule.created_at),
        "note": rule.note,
    }
    if now is not None:  # a restriction is always in force; an embargo until its date
        out["in_force"] = rule.embargo_until is None or now < rule.embargo_until
    return out


def list_rules(session: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every rule, dataset rules first; with ``now``, each says whether it is still ``in_force``."""
    rules = session.scalars(select(m.AccessRule).order_by(m.AccessRule.aip_id.is_not(None),
                                                          m.AccessRule.id))
    return [rule_dict(r, now) for r in rules]


__all__ = ["as_utc", "can_access", "json_list_has", "list_rules", "restrict_aip", "rule_allows",
           "set_embargo", "visible_filter"]
