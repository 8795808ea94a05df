"""Java value semantics the Elasticsearch EQL functions inherit: int/long arithmetic, string forms.

Elasticsearch evaluates scripts and folds constants in Java. Python ints are unbounded and Python
``//``/``%`` floor, so the rules are re-stated here once: ``+ - *`` overflow is an error (Math.*Exact),
integer ``/`` truncates toward zero, ``%`` takes the dividend's sign, integer division by zero is
an error, doubles follow IEEE 754. "int" vs "long" is decided statically by the compiler
(``is_int``), because JSON values carry no such distinction (every JSON integer is a long).
"""

from __future__ import annotations

import math
from typing import Any

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


class JavaError(ArithmeticError):
    """A Java runtime error (overflow, division by zero, bad number): the search would fail."""


def is_number(v: Any) -> bool:
    return (type(v) is int or type(v) is float) and v is not True and v is not False


def _check(value: int, is_int: bool) -> int:
    lo, hi = (INT_MIN, INT_MAX) if is_int else (LONG_MIN, LONG_MAX)
    if value < lo or value > hi:
        raise JavaError(f"[{'integer' if is_int else 'long'}] overflow")
    return value


def arith(op: str, a: Any, b: Any, is_int: bool = False) -> Any:
    """``a op b`` with Java widening; ``None`` operand -> ``None``; non-numbers -> :class:`JavaError`."""
    if a is None or b is None:
        return None
    if not is_number(a) or not is_number(b):
        raise JavaError(f"[{op}] needs numbers, got [{java_str(a)}] and [{java_str(b)}]")
    if type(a) is float or type(b) is float:
        a, b = float(a), float(b)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if b == 0.0:
                if a == 0.0 or math.isnan(a):
                    return math.nan
                return math.copysign(math.inf, a) * math.copysign(1.0, b)
            return a / b
        if b == 0.0 or math.isinf(a):
            return math.nan
        return math.fmod(a, b)
    if op == "+":
        return _check(a + b, is_int)
    if op == "-":
        return _check(a - b, is_int)
    if op == "*":
        return _check(a * b, is_int)
    if b == 0:
        raise JavaError("/ by zero")
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        q = -q
    if op == "/":
        return _check(q, is_int)
    return a - b * q


def negate(a: Any, is_int: bool = False) -> Any:
    if a is None:
        return None
    if not is_number(a):
        raise JavaError(f"[-] needs a number, got [{java_str(a)}]")
    if type(a) is float:
        return -a
    return _check(-a, is_int)


def java_double_str(x: float) -> str:
    """``Double.toString``: plain notation for 1e-3 <= |x| < 1e7, else ``d.dddE±n``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    ax = abs(x)
    if 1e-3 <= ax < 1e7:
        text = repr(x)
        if "e" in text or "E" in text:  # repr may still use exponent for some values
            text = format(x, "f").rstrip("0")
        if "." not in text:
            text += ".0"
        if text.endswith("."):
            text += "0"
        return text
    digits, exp = _shortest_digits(ax)
    sign = "-" if x < 0 else ""
    rest = digits[1:].rstrip("0") or "0"
    return f"{sign}{digits[0]}.{rest}E{exp}"


def _shortest_digits(ax: float) -> tuple[str, int]:
    """Shortest round-trip significant digits of ``ax`` > 0 and its decimal exponent."""
    mant, _, exp = f"{ax!r}".partition("e")
    int_part, _, frac = mant.partition(".")
    if exp:
        return (int_part + frac).rstrip("0") or "0", int(exp) + len(int_part) - 1
    stripped = int_part.lstrip("0")
    if stripped:
        return (stripped + frac).rstrip("0") or "0", len(stripped) - 1
    zeros = len(frac) - len(frac.lstrip("0"))
    return frac.lstrip("0"), -(zeros + 1)


def java_str(v: Any) -> str:
    """``String.valueOf`` of a JSON value as Elasticsearch renders it."""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if type(v) is float:
        return java_double_str(v)
    return str(v)


def utf16_len(s: str) -> int:
    if s.isascii():
        return len(s)
    return len(s) + sum(1 for ch in s if ord(ch) > 0xFFFF)


def to_utf16(s: str) -> str:
    """``s`` with astral characters split into surrogate pairs, so Python indices are Java indices."""
    if s.isascii() or all(ord(ch) <= 0xFFFF for ch in s):
        return s
    out = []
    for ch in s:
        code = ord(ch)
        if code > 0xFFFF:
            code -= 0x10000
            out.append(chr(0xD800 + (code >> 10)) + chr(0xDC00 + (code & 0x3FF)))
        else:
            out.append(ch)
    return "".join(out)


def from_utf16(s: str) -> str:
    """Re-join surrogate pairs produced by :func:`to_utf16` (lone halves stay as they are)."""
    if s.isascii() or not any(0xD800 <= ord(ch) <= 0xDFFF for ch in s):
        return s
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


_ASCII_LOWER = {i: i + 32 for i in range(65, 91)}


def ascii_lower(s: str) -> str:
    """Lucene's ``case_insensitive``: folds A-Z only."""
    if s.isascii():
        return s.lower()
    return s.translate(_ASCII_LOWER)


def java_lower(s: str) -> str:
    """``toLowerCase(Locale.ROOT)`` (close enough: Python's full Unicode lowercase)."""
    return s.lower()
