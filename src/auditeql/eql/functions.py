"""The EQL functions of Elasticsearch (spec §4), on plain Python values with Java semantics.

Each function takes already-evaluated arguments (``None`` = null) and the ``~`` flag, and
returns a value or ``None``. Type errors and Java runtime errors raise :class:`JavaError`; the
compiler turns those into an :class:`EqlError` when it folds constants and into "no match" when
they happen on a document. The table :data:`FUNCTIONS` (name -> arity, ``~`` support, result
type) is what the verifier checks calls against.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import javatypes as jt
from .javatypes import JavaError, java_lower, java_str


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # canonical camelCase spelling
    min_args: int
    max_args: int | None  # None = variadic
    insensitive: bool  # accepts the ``~`` form
    returns: str  # "string" | "int" | "number" | "boolean"
    impl: Callable[..., Any]


def _need_str(fn: str, v: Any) -> str:
    if not isinstance(v, str):
        raise JavaError(f"[{fn}] needs a string, got [{java_str(v)}]")
    return v


def between(s: Any, left: Any, right: Any, greedy: Any = False, *, ci: bool = False) -> Any:
    if s is None or left is None or right is None:
        return None
    s, left, right = _need_str("between", s), _need_str("between", left), _need_str("between", right)
    if greedy is None:
        greedy = False
    if not isinstance(greedy, bool):
        raise JavaError("[between] greedy must be a boolean")
    if not s or not left or not right:
        return s
    u = jt.to_utf16(s)
    hay, lf, rt = u, jt.to_utf16(left), jt.to_utf16(right)
    if ci:
        hay, lf, rt = java_lower(hay), java_lower(lf), java_lower(rt)
    start = hay.find(lf)
    if start < 0:
        return ""
    start += len(lf)
    end = hay.rfind(rt) if greedy else hay.find(rt, start)
    if end < start:
        return ""
    return jt.from_utf16(u[start:end])


class CidrSet:
    """Parsed ``cidrMatch`` blocks as (network, mask) pairs in the IPv6 space (IPv4 mapped)."""

    __slots__ = ("blocks",)

    def __init__(self, blocks: tuple[str, ...]) -> None:
        parsed = []
        for block in blocks:
            parsed.append(parse_cidr(block))
        self.blocks = tuple(parsed)

    def contains(self, ip: Any) -> bool:
        addr = ip_to_int(ip) if isinstance(ip, str) else None
        if addr is None:
            return False
        for net, mask in self.blocks:
            if addr & mask == net:
                return True
        return False


_ALL = (1 << 128) - 1
_V4_MAPPED = 0xFFFF << 32


def parse_cidr(block: str) -> tuple[int, int]:
    """``"10.0.0.0/8"`` -> (network, mask) over 128 bits; a bare address is exact."""
    text, slash, plen_s = block.partition("/")
    addr = ip_to_int(text)
    if addr is None:
        raise JavaError(f"[{block}] is not a valid IP address or CIDR block")
    is_v4 = ":" not in text
    bits = 32 if is_v4 else 128
    if slash:
        if not plen_s.isdigit() or int(plen_s) > bits:
            raise JavaError(f"invalid prefix length in CIDR block [{block}]")
        plen = int(plen_s) + (96 if is_v4 else 0)
    else:
        plen = 128
    mask = (_ALL << (128 - plen)) & _ALL
    return addr & mask, mask


@lru_cache(maxsize=65536)
def ip_to_int(text: str) -> int | None:
    """An IPv4 or IPv6 address as a 128-bit int (IPv4 as ``::ffff:a.b.c.d``); ``None`` if invalid."""
    try:
        if ":" in text:
            return int(ipaddress.IPv6Address(text.split("%", 1)[0]))
        return _V4_MAPPED | int(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def cidr_match(ip: Any, *blocks: Any, ci: bool = False) -> Any:
    if ip is None:
        return None
    for b in blocks:
        if not isinstance(b, str):
            raise JavaError("[cidrMatch] blocks must be strings")
    if not isinstance(ip, str):
        raise JavaError(f"[cidrMatch] needs an IP address, got [{java_str(ip)}]")
    if ip_to_int(ip) is None:
        raise JavaError(f"[{ip}] is not an IP string literal")
    return CidrSet(tuple(blocks)).contains(ip)


def concat(*args: Any, ci: bool = False) -> Any:
    if any(a is None for a in args):
        return None
    return "".join(java_str(a) for a in args)


def ends_with(s: Any, x: Any, *, ci: bool = False) -> Any:
    if s is None or x is None:
        return None
    s, x = _need_str("endsWith", s), _need_str("endsWith", x)
    if ci:
        s, x = java_lower(s), java_lower(x)
    return s.endswith(x)


def index_of(s: Any, x: Any, start: Any = None, *, ci: bool = False) -> Any:
    if s is None or x is None:
        return None
    s, x = jt.to_utf16(_need_str("indexOf", s)), jt.to_utf16(_need_str("indexOf", x))
    if start is None:
        start = 0
    if not jt.is_number(start):
        raise JavaError("[indexOf] start must be a number")
    start = max(int(start), 0)
    if ci:
        s, x = java_lower(s), java_lower(x)
    if not x:
        return min(start, len(s))
    idx = s.find(x, start)
    return None if idx < 0 else idx


def length(s: Any, *, ci: bool = False) -> Any:
    if s is None:
        return None
    return jt.utf16_len(_need_str("length", s))


_LONG_RE = re.compile(r"[+-]?[0-9]+\Z")
_DOUBLE_RE = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?)\Z"
)
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def number(s: Any, base: Any = None, *, ci: bool = False) -> Any:
    if s is None:
        return None
    s = _need_str("number", s)
    if base is None:
        base = 10
    if not jt.is_number(base) or type(base) is float:
        raise JavaError("[number] base must be an integer")
    if base == 10:
        if _LONG_RE.match(s):
            v = int(s)
            if jt.LONG_MIN <= v <= jt.LONG_MAX:
                return v
        if s.startswith("0x"):
            return _parse_long(s[2:], 16, s)
        stripped = s.strip("".join(chr(c) for c in range(33)))
        if _DOUBLE_RE.match(stripped):
            text = stripped.rstrip("fFdD")
            return float(text.replace("Infinity", "inf"))
        raise JavaError(f"unable to convert [{s}] to number")
    if not 2 <= base <= 36:
        raise JavaError(f"[number] base [{base}] out of range 2..36")
    return _parse_long(s, int(base), s)


def _parse_long(text: str, base: int, orig: str) -> int:
    body = text[1:] if text[:1] in "+-" else text
    allowed = _DIGITS[:base]
    if not body or any(c.lower() not in allowed for c in body):
        raise JavaError(f"unable to convert [{orig}] to number")
    v = int(text, base)
    if not jt.LONG_MIN <= v <= jt.LONG_MAX:
        raise JavaError(f"unable to convert [{orig}] to number (out of range)")
    return v


def starts_with(s: Any, x: Any, *, ci: bool = False) -> Any:
    if s is None or x is None:
        return None
    s, x = _need_str("startsWith", s), _need_str("startsWith", x)
    if ci:
        s, x = java_lower(s), java_lower(x)
    return s.startswith(x)


def string(v: Any, *, ci: bool = False) -> Any:
    return None if v is None else java_str(v)


def string_contains(s: Any, x: Any, *, ci: bool = False) -> Any:
    if s is None or x is None:
        return None
    s, x = _need_str("stringContains", s), _need_str("stringContains", x)
    if not s or not x:
        return False
    if ci:
        s, x = java_lower(s), java_lower(x)
    return x in s


def substring(s: Any, start: Any, end: Any = None, *, ci: bool = False) -> Any:
    if s is None:
        return None
    u = jt.to_utf16(_need_str("substring", s))
    for v in (start, end):
        if v is not None and (not jt.is_number(v) or type(v) is float):
            raise JavaError("[substring] start and end must be integers")
    return jt.from_utf16(u[start:end])


def _arith(op: str) -> Callable[..., Any]:
    def fn(a: Any, b: Any, *, ci: bool = False, is_int: bool = False) -> Any:
        return jt.arith(op, a, b, is_int)

    return fn


FUNCTIONS: dict[str, FunctionSpec] = {
    spec.name.lower(): spec
    for spec in (
        FunctionSpec("add", 2, 2, False, "number", _arith("+")),
        FunctionSpec("between", 3, 4, True, "string", between),
        FunctionSpec("cidrMatch", 2, None, False, "boolean", cidr_match),
        FunctionSpec("concat", 1, None, False, "string", concat),
        FunctionSpec("divide", 2, 2, False, "number", _arith("/")),
        FunctionSpec("endsWith", 2, 2, True, "boolean", ends_with),
        FunctionSpec("indexOf", 2, 3, True, "int", index_of),
        FunctionSpec("length", 1, 1, False, "int", length),
        FunctionSpec("modulo", 2, 2, False, "number", _arith("%")),
        FunctionSpec("multiply", 2, 2, False, "number", _arith("*")),
        FunctionSpec("number", 1, 2, False, "number", number),
        FunctionSpec("startsWith", 2, 2, True, "boolean", starts_with),
        FunctionSpec("string", 1, 1, False, "string", string),
        FunctionSpec("stringContains", 2, 2, True, "boolean", string_contains),
        FunctionSpec("substring", 2, 3, False, "string", substring),
        FunctionSpec("subtract", 2, 2, False, "number", _arith("-")),
    )
}
ARITH_FUNCTIONS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "modulo": "%"}
