"""fido's PRONOM signature matching with the same results, without trying every signature.

``IndexedFido`` is fido's own ``Fido`` class (PyPI ``opf-fido``): reading the file, the buffer sizes
(first and last 128 KiB), the container step (ZIP and OLE2 signatures), the zero-byte rule and the
match handler all stay fido's code. It replaces only ``Fido.match_formats``, the loop that tries each
of the ~1,900 PRONOM signatures with ``re.match``/``re.search`` on pattern strings (about 4 ms for a
file that no signature matches). The replacement returns the same list, in the same order, for any
pair of buffers:

* Every pattern is parsed and compiled once, when the signatures are loaded.
* A signature matches only if all its patterns match. From each pattern's parse tree (the tree the
  regex compiler compiles, read with ``re._parser``) come the literal byte strings that every match
  contains, with the offsets where they can start. ``SignatureIndex`` keeps one such literal per
  signature, the cheapest to look for; a buffer without it cannot match the signature, which is
  then not tried. Literals at a fixed offset from the start of the file (``\\A\\x89PNG``,
  ``\\A.{8}WAVE``) are looked up in one dict per (offset, length); the others are searched for in
  the bytes where they could start (``\\A.{0,3}<?xml``, ``%%EOF.{0,1024}\\Z``). A signature with no
  literal (or whose format has a pattern fido fails on) is always tried.
* The signatures let through are tried as fido tries them: in fido's order; a format only if it is
  "as good as any" match found before it (``Fido.as_good_as_any``); patterns in order until one
  fails; a pattern fido would raise on abandons its format with fido's message on stderr; inferior
  matches are removed at the end with fido's ``as_good_as_any``.

``tests/unit/test_identify_fast.py`` compares the two, file by file, with fido's own class.
"""

from __future__ import annotations

import itertools
import operator
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from re import _compiler as sre_compile
from re import _constants as sre_c
from re import _parser as sre_parse
from typing import Any
from xml.etree.ElementTree import Element

from fido.fido import Fido

# How Fido.match_formats applies a pattern, by its <position>: re.match on the first buffer (BOF),
# re.search on the last buffer (EOF) or on the first (VAR, IFB). Any other position: not applied.
_MATCH_BOF, _SEARCH_EOF, _SEARCH_BOF, _IGNORED, _RAISES = range(5)
_APPLY = {"BOF": _MATCH_BOF, "EOF": _SEARCH_EOF, "VAR": _SEARCH_BOF, "IFB": _SEARCH_BOF}
_UNBOUNDED = sre_c.MAXREPEAT  # a width at least this large has no upper bound
_FIXED_KEY = 4  # at most this many bytes of a fixed-offset literal make its dict key
_TYPICAL = 64 * 1024  # buffer size the cost of a literal is estimated for
_REGEX_RUN = 30000.0  # rough cost of trying a signature's regexes on 64 KiB (ns): some scan it all
_UNUSED = re.compile(b"")  # the regex of a pattern that is not applied


@dataclass(frozen=True, slots=True)
class Literal:
    """Bytes that every match of a pattern contains, and where in the buffer they can start.

    ``lo``, ``hi``: bounds of that start (``hi`` None: none). ``tail_lo``, ``tail_hi``: for a
    pattern ending with ``\\Z``, bounds of the distance from the literal's start to the end of the
    buffer (None otherwise, or no bound)."""

    data: bytes
    in_eof: bool  # in fido's last buffer (an EOF pattern), else in its first
    lo: int
    hi: int | None
    tail_lo: int | None = None
    tail_hi: int | None = None

    @property
    def fixed(self) -> bool:
        """At a single offset from the start of the first buffer."""
        return not self.in_eof and self.hi == self.lo

    def bounds(self) -> tuple[int, int | None]:
        """(start, end) for ``buffer.find(data, start, end)``, which finds the literal whenever a match
        exists, whatever the buffer's size (a negative index counts from the end). Counted from the
        start (``lo``, ``hi``) or, for a pattern ending with ``\\Z``, from the end, whichever is narrower
        in a 64 KiB buffer: the other bound is left out, which only widens the search."""
        n = len(self.data)
        head = (self.lo, None if self.hi is None else self.hi + n)
        if self.tail_lo is None:
            return head
        tail = (self.lo if self.tail_hi is None else -self.tail_hi, -(self.tail_lo - n) or None)
        return min(head, tail, key=lambda bounds: _span(*bounds))

    def cost(self) -> float:
        """A rough cost in a 64 KiB buffer of random bytes (nanoseconds, as measured with CPython
        3.11's ``bytes.find``): the search, plus the signature's regexes when the literal is found by
        chance."""
        n = len(self.data)
        if self.fixed:
            return _REGEX_RUN * 256.0 ** -n
        start, end = self.bounds()
        return _search_cost(self.data, start, end) + _REGEX_RUN * min(1.0, _span(start, end) / 256.0 ** n)


def _span(start: int, end: int | None) -> int:
    """Bytes between ``start`` and ``end`` (bytes.find's bounds) in a 64 KiB buffer."""
    first, stop, _ = slice(start, end).indices(_TYPICAL)
    return max(stop - first, 0)


def _search_cost(data: bytes, start: int, end: int | None) -> float:
    """Rough cost of ``buffer.find(data, start, end)`` not finding it in a 64 KiB buffer (ns)."""
    n = len(data)
    per_byte = 0.02 if n == 1 else 0.08 + 4.0 / (n + 2)  # memchr for one byte; longer: bigger skips
    return 100 + _span(start, end) * per_byte


def pattern_literals(tree: sre_parse.SubPattern, position: str) -> list[Literal]:
    """The literals that every match of the parsed pattern ``tree`` contains, when fido applies it at
    ``position`` ("BOF": re.match on the first buffer; "EOF": re.search on the last; "VAR", "IFB":
    re.search on the first; anything else: not applied, no literal).

    Only the top-level sequence of the pattern is read: an item inside a group, a branch or a repeat
    may not be part of every match, so it only moves the offsets that follow (by the width range the
    regex compiler computes for it). A case-insensitive pattern has no certain literal."""
    apply = _APPLY.get(position, _IGNORED)
    if apply == _IGNORED:
        return []
    if tree.state.flags & (sre_c.SRE_FLAG_IGNORECASE | sre_c.SRE_FLAG_LOCALE):
        return []
    items: list[tuple[Any, Any]] = list(tree.data)
    widths = [(1, 1) if op is sre_c.LITERAL else sre_parse.SubPattern(tree.state, [(op, av)]).getwidth()
              for op, av in items]
    to_end = bool(items) and items[-1] == (sre_c.AT, sre_c.AT_END_STRING)  # ends with \Z
    found: list[Literal] = []
    for first, last, lo, hi in _literal_runs(items, widths):
        tail_lo = tail_hi = None
        if to_end:  # the match ends at the end of the buffer
            tail_lo = sum(w[0] for w in widths[first:])
            rest_hi = sum(w[1] for w in widths[first:])
            tail_hi = rest_hi if rest_hi < _UNBOUNDED else None
        data = bytes(av for _, av in items[first:last])
        if apply == _MATCH_BOF:
            found.append(Literal(data, False, lo, hi, tail_lo, tail_hi))
        else:  # re.search: the match may start anywhere
            found.append(Literal(data, apply == _SEARCH_EOF, lo, None, tail_lo, tail_hi))
    return found


def _literal_runs(items: Sequence[tuple[Any, Any]], widths: Sequence[tuple[int, int]]
                  ) -> Iterator[tuple[int, int, int, int | None]]:
    """(first, last, lo, hi) for each run items[first:last] of LITERAL items, with the bounds of its
    offset from the start of the match (hi None: unbounded)."""
    lo, hi = 0, 0
    first = -1
    run_lo, run_hi = 0, 0
    for i, ((op, _), (wlo, whi)) in enumerate(zip(items, widths, strict=True)):
        if op is sre_c.LITERAL:
            if first < 0:
                first, run_lo, run_hi = i, lo, hi
        elif first >= 0:
            yield first, i, run_lo, run_hi
            first = -1
        lo += wlo
        hi = None if hi is None or whi >= _UNBOUNDED else hi + whi
    if first >= 0:
        yield first, len(items), run_lo, run_hi


@dataclass(frozen=True, slots=True)
class _Pattern:
    """One ``<pattern>``: how it is applied, its regex, its literals; or the error fido would raise."""

    apply: int
    regex: re.Pattern[bytes] = _UNUSED
    literals: tuple[Literal, ...] = ()
    error: Exception | None = None
    reach: int = 0  # how far a match attempt may read: the longest match for re.match, else unbounded


@dataclass(frozen=True, slots=True)
class _Signature:
    format_index: int  # of its format in Fido.formats
    name: str | None  # what fido puts in a match: sig.findtext("name")
    patterns: tuple[_Pattern, ...]


def _load_pattern(fido: Fido, pat: Element) -> _Pattern:
    """The pattern as Fido.match_formats would apply it (same accessors, same order of failures)."""
    try:
        position = fido.get_pos(pat)
        regex = fido.get_regex(pat)
        apply = _APPLY.get(position, _IGNORED)
        if apply == _IGNORED:
            return _Pattern(_IGNORED)
        tree = sre_parse.parse(regex)  # as re.compile(regex) does (flags 0)
    except Exception as exc:  # fido's loop catches Exception, writes it and goes to the next format
        return _Pattern(_RAISES, error=exc)
    literals = tuple(pattern_literals(tree, position))  # before compiling, which may annotate the tree
    reach = min(tree.getwidth()[1], _UNBOUNDED) if apply == _MATCH_BOF else _UNBOUNDED
    try:
        regex_compiled = sre_compile.compile(tree)  # re.compile(regex) but for .pattern (None here)
    except Exception as exc:
        return _Pattern(_RAISES, error=exc)
    return _Pattern(apply, regex_compiled, literals, reach=reach)


class SignatureIndex:
    """fido's signatures, compiled, and which of them can match given buffers."""

    def __init__(self, fido: Fido) -> None:
        self.formats: list[Element] = fido.formats
        self.size = len(self.formats)
        self.signatures: list[_Signature] = []
        always: list[int] = []
        fixed: dict[tuple[int, int], dict[bytes, list[int]]] = {}
        floating: dict[tuple[bool, bytes, int, int | None], list[int]] = {}  # same search: done once
        for format_index, element in enumerate(self.formats):
            sigs = [(sig.findtext("name"), tuple(_load_pattern(fido, p) for p in fido.get_patterns(sig)))
                    for sig in fido.get_signatures(element)]
            clean = all(p.apply != _RAISES for _, patterns in sigs for p in patterns)
            for name, patterns in sigs:
                sid = len(self.signatures)
                if clean:  # all must match and none raises: the order does not matter, so cheapest first
                    patterns = tuple(sorted(patterns, key=lambda p: p.reach))
                self.signatures.append(_Signature(format_index, name, patterns))
                literals = [lit for p in patterns for lit in p.literals]
                if not clean or not literals:  # fido gives up on that format at the failing pattern
                    always.append(sid)
                    continue
                best = min(literals, key=lambda lit: (lit.cost(), -len(lit.data)))
                if best.fixed:
                    key = best.data[:_FIXED_KEY]
                    fixed.setdefault((best.lo, len(key)), {}).setdefault(key, []).append(sid)
                else:
                    floating.setdefault((best.in_eof, best.data, *best.bounds()), []).append(sid)
        self.always = tuple(always)
        groups = sorted(fixed.items())
        # bofbuffer[start:start + n] for each group, in one call (one more, always empty, so that
        # itemgetter returns a tuple even for a single group); then each group's dict
        slices = [slice(start, start + n) for (start, n), _ in groups] + [slice(0, 0)]
        self._fixed_keys = operator.itemgetter(*slices)
        self._fixed_tables = [{key: tuple(sids) for key, sids in table.items()} for _, table in groups]
        self._fixed_tables.append({})
        self._floating = tuple(_Searches.gated([(*key[1:], tuple(sids)) for key, sids in floating.items()
                                                if key[0] == in_eof]) for in_eof in (False, True))

    def candidates(self, bofbuffer: bytes, eofbuffer: bytes) -> list[int]:
        """The signatures that may match, as indexes into ``signatures``, in fido's order."""
        found = list(self.always)
        for sids in filter(None, map(dict.get, self._fixed_tables, self._fixed_keys(bofbuffer))):
            found.extend(sids)
        self._floating[0].run(bofbuffer, found)
        self._floating[1].run(eofbuffer, found)
        found.sort()
        return found


_FOUND = (-1).__ne__  # bytes.find found it
_GATE_PREFIX = 4  # searches whose literals share this many first bytes are tried only if their prefix is there


@dataclass(frozen=True, slots=True)
class _Searches:
    """``buffer.find(data[i], start[i], end[i])`` for each i; when found, ``then[i]``: the signatures
    that may match, or the searches to make next (the members of a gate)."""

    data: tuple[bytes, ...]
    start: tuple[int, ...]
    end: tuple[int | None, ...]
    then: tuple[tuple[int, ...] | _Searches, ...]

    def run(self, buf: bytes, found: list[int]) -> None:
        """Add to ``found`` the signatures whose literals are in ``buf``."""
        for then in itertools.compress(self.then, map(_FOUND, map(buf.find, self.data, self.start, self.end))):
            if isinstance(then, _Searches):
                then.run(buf, found)
            else:
                found.extend(then)

    @staticmethod
    def gated(searches: list[tuple[bytes, int, int | None, tuple[int, ...]]]) -> _Searches:
        """The searches, those whose literals share a prefix (and count from the start of the buffer)
        behind one search for that prefix, from the first start to the last end: one scan instead
        of several when, as usual, the prefix is not there."""
        entries: list[tuple[bytes, int, int | None, tuple[int, ...] | _Searches]] = []
        searches = sorted(searches, key=lambda s: (s[0], s[1], -1 if s[2] is None else s[2]))
        i = 0
        while i < len(searches):
            j = i + 1
            if _from_start(searches[i]):
                head = searches[i][0][:_GATE_PREFIX]
                while (j < len(searches) and len(head) == _GATE_PREFIX and searches[j][0].startswith(head)
                       and _from_start(searches[j])):
                    j += 1
            group = searches[i:j]
            ends = [end for _, _, end, _ in group]
            gate = (os.path.commonprefix([data for data, _, _, _ in group]),
                    min(start for _, start, _, _ in group),
                    None if None in ends else max(e for e in ends if e is not None))
            if len(group) > 1 and _search_cost(*gate) < sum(_search_cost(*s[:3]) for s in group):
                entries.append((*gate, _Searches.gated_off(group)))
            else:
                entries.extend(group)
            i = j
        return _Searches(tuple(e[0] for e in entries), tuple(e[1] for e in entries),
                         tuple(e[2] for e in entries), tuple(e[3] for e in entries))

    @staticmethod
    def gated_off(searches: list[tuple[bytes, int, int | None, tuple[int, ...]]]) -> _Searches:
        """The searches as they are, without gates."""
        return _Searches(tuple(s[0] for s in searches), tuple(s[1] for s in searches),
                         tuple(s[2] for s in searches), tuple(s[3] for s in searches))


def _from_start(search: tuple[bytes, int, int | None, tuple[int, ...]]) -> bool:
    """Its bounds count from the start of the buffer (a gate takes the lowest start and highest end)."""
    return search[1] >= 0 and (search[2] is None or search[2] >= 0)


class IndexedFido(Fido):
    """fido's ``Fido`` whose ``match_formats`` tries only the signatures that ``SignatureIndex``
    lets through. Built with the same arguments as ``Fido``."""

    def __init__(self, **kwargs: Any) -> None:
        self._index: SignatureIndex | None = None
        super().__init__(**kwargs)

    def process_format_element(self, element: Element) -> None:
        """fido's; the index is rebuilt on next use (the formats changed)."""
        self._index = None
        super().process_format_element(element)

    def signature_index(self) -> SignatureIndex:
        """The index of the current ``formats`` (built on first use, rebuilt when they changed)."""
        index = self._index
        if index is None or index.formats is not self.formats or index.size != len(self.formats):
            index = self._index = SignatureIndex(self)
        return index

    def match_formats(self, bofbuffer: bytes, eofbuffer: bytes) -> list[tuple[Element, str | None]]:
        """What ``Fido.match_formats(bofbuffer, eofbuffer)`` returns: the (format, signature name)
        matches, inferior ones removed."""
        self.current_count += 1
        index = self.signature_index()
        formats, signatures = index.formats, index.signatures
        result: list[tuple[Element, str | None]] = []
        current = -1
        skip = False  # the rest of the current format: not as good as any, or abandoned on an error
        for sid in index.candidates(bofbuffer, eofbuffer):
            sig = signatures[sid]
            if sig.format_index != current:
                current = sig.format_index
                self.current_format = formats[current]
                skip = not self.as_good_as_any(self.current_format, result)
            if skip:
                continue
            success = True
            for pattern in sig.patterns:
                apply = pattern.apply
                if apply == _MATCH_BOF:
                    success = pattern.regex.match(bofbuffer) is not None
                elif apply == _SEARCH_EOF:
                    success = pattern.regex.search(eofbuffer) is not None
                elif apply == _SEARCH_BOF:
                    success = pattern.regex.search(bofbuffer) is not None
                elif apply == _RAISES:
                    sys.stderr.write(f"{pattern.error}\n")  # fido's message
                    success, skip = False, True
                if not success:
                    break
            if success:
                result.append((formats[current], sig.name))
        return [match for match in result if self.as_good_as_any(match[0], result)]


__all__ = ["IndexedFido", "SignatureIndex", "Literal", "pattern_literals"]
