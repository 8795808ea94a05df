"""Event order: timestamps, the optional tiebreaker, input order.

Elasticsearch orders EQL hits by an *ordinal* (timestamp, then ``tiebreaker_field`` with a null
tiebreaker after every non-null one, then the implicit shard-doc order). We keep the same three
levels; the third is the position in the input, which is the natural stand-in for ``_shard_doc``.

Timestamps are kept as integer **nanoseconds** so that date_nanos data orders exactly and ms data
loses nothing. Accepted forms (what an ES ``date`` field with the default
``strict_date_optional_time||epoch_millis`` format accepts): ISO-8601 strings (``T`` or space,
optional fraction up to 9 digits, ``Z``/offset, no zone = UTC, date-only) and epoch milliseconds
as numbers or digit strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from functools import lru_cache
from typing import Any

from auditeql.fields import values

_NS_PER_MS = 1_000_000
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(?:([Zz])|([+-])(\d{2}):?(\d{2})?)?$"
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@lru_cache(maxsize=4096)
def _epoch_day(y: int, m: int, d: int) -> int:
    return date(y, m, d).toordinal() - _EPOCH_ORDINAL


_minute_base: dict[str, int] = {}


def _fast_utc(value: str) -> int | None:
    """The common ``YYYY-MM-DDTHH:MM:SS[.f…]Z`` form, with the minute's epoch cached.

    Consecutive events share their minute, so one dict lookup replaces the date arithmetic.
    """
    base = _minute_base.get(value[:16])
    if base is None:
        m = _ISO.match(value[:16] + ":00Z")
        if m is None or value[4] != "-" or value[10] not in "Tt":
            return None
        base = _slow(m)
        if base is None:
            return None
        if len(_minute_base) > 4096:
            _minute_base.clear()
        _minute_base[value[:16]] = base
    sec = value[17:19]
    if not (sec.isascii() and sec.isdigit()) or sec > "60":
        return None
    ns = base + int(sec) * 1_000_000_000
    if value[19] == ".":
        frac = value[20:-1]
        if not (frac.isascii() and frac.isdigit()) or len(frac) > 9:
            return None
        ns += int(frac) * 10 ** (9 - len(frac))
    elif len(value) != 20:
        return None
    return ns


def _slow(m: re.Match) -> int | None:
    y, mo, d, h, mi, sec, frac, _z, sign, oh, om = m.groups()
    try:
        days = _epoch_day(int(y), int(mo), int(d))
    except ValueError:
        return None
    hh = int(h) if h else 0
    mm = int(mi) if mi else 0
    ss = int(sec) if sec else 0
    if hh > 23 or mm > 59 or ss > 60:
        return None
    secs = days * 86400 + hh * 3600 + mm * 60 + ss
    if sign:
        off = int(oh) * 3600 + (int(om) * 60 if om else 0)
        secs = secs - off if sign == "+" else secs + off
    ns = secs * 1_000_000_000
    if frac:
        ns += int(frac.ljust(9, "0"))
    return ns


def timestamp_ns(value: Any) -> int | None:
    """``value`` as integer nanoseconds since the epoch, or ``None`` if it is not a timestamp."""
    t = type(value)
    if t is str:
        n = len(value)
        if n >= 20 and value[-1] == "Z" and value[16] == ":" and value[13] == ":" and (value[19] == "." or n == 20):
            fast = _fast_utc(value)
            if fast is not None:
                return fast
        m = _ISO.match(value)
        if m is None:
            s = value.strip()
            if s.isdigit() or (s[:1] == "-" and s[1:].isdigit()):
                return int(s) * _NS_PER_MS
            try:
                return int(round(float(s) * _NS_PER_MS)) if s and "." in s else None
            except ValueError:
                return None
        return _slow(m)
    if t is int:
        return value * _NS_PER_MS
    if t is float:
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return int(round(value * _NS_PER_MS))
    if t is list and len(value) == 1:
        return timestamp_ns(value[0])
    return None


def timestamp_ms(value: Any) -> int | float | None:
    """``value`` as epoch milliseconds (an ``int`` when whole, else a ``float``), or ``None``."""
    ns = timestamp_ns(value)
    if ns is None:
        return None
    ms, rest = divmod(ns, _NS_PER_MS)
    return ms if rest == 0 else ns / _NS_PER_MS


def doc_timestamp_ns(doc: Mapping[str, Any], field: str = "@timestamp") -> int | None:
    """The document's timestamp in ns (first value of ``field``), or ``None``."""
    v = doc.get(field) if "." not in field else None
    if v is None or type(v) is list:
        vals = values(doc, field)
        if not vals:
            return None
        v = vals[0]
    return timestamp_ns(v)


def tiebreaker_key(value: Any) -> tuple:
    """Sort key of a tiebreaker value: non-null values by type rank then value, null last."""
    if value is None:
        return (1, 0, 0)
    if type(value) is bool:
        return (0, 0, int(value))
    if isinstance(value, (int, float)):
        return (0, 1, value)
    if isinstance(value, str):
        return (0, 2, value)
    return (0, 3, repr(value))


def make_tiebreaker(field: str | None) -> Callable[[Mapping[str, Any]], tuple] | None:
    """A function doc -> tiebreaker sort key, or ``None`` when no tiebreaker field is set."""
    if not field:
        return None

    def tb(doc: Mapping[str, Any]) -> tuple:
        vals = values(doc, field)
        return tiebreaker_key(vals[0] if vals else None)

    return tb


def make_order_key(
    timestamp_field: str, tiebreaker_field: str | None
) -> Callable[[Mapping[str, Any], int], tuple | None]:
    """A function (doc, input_position) -> sort key ``(ts_ns, [tiebreaker,] position)``.

    Returns ``None`` for a document without a usable timestamp.
    """
    tb = make_tiebreaker(tiebreaker_field)
    if tb is None:

        def key(doc: Mapping[str, Any], pos: int) -> tuple | None:
            ts = doc_timestamp_ns(doc, timestamp_field)
            return None if ts is None else (ts, pos)

    else:

        def key(doc: Mapping[str, Any], pos: int) -> tuple | None:
            ts = doc_timestamp_ns(doc, timestamp_field)
            return None if ts is None else (ts, tb(doc), pos)

    return key
