"""Per-record interpretation of key=value fields, as go-libaudit's ``auparse`` does it.

This is what turns ``arch=c000003e syscall=41 success=yes exit=-115 key="net"`` into
``arch: x86_64, syscall: socket, result: fail, exit: EINPROGRESS`` plus the tag ``net``. The rules
(and their quirks) follow go-libaudit so that our documents equal Auditbeat's:

* ``auid``/``old-auid``/``ses`` of 4294967295 or -1 become ``unset``;
* ``subj`` (and PATH ``obj``) SELinux contexts split into ``subj_user/_role/_domain/_level/_category``;
* ``success``/``res`` become ``result`` = ``success`` | ``fail``;
* a negative ``exit`` becomes its errno name;
* ``key`` becomes the record's tags (hex with ``\\x01`` separators for several keys, ``key=x`` prefix);
* hex-encoded strings are decoded only when they are unquoted upper-case hex of even length.

Deliberate difference (docs/deviations.md): ``comm`` is hex-decoded too (go-libaudit never does).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

from auditeql.audit import tables
from auditeql.audit.records import AuditRecord, fields, unquote
from auditeql.audit.sockaddr import parse_saddr

_HEX_UPPER = frozenset("0123456789ABCDEF")
_SELINUX_SUFFIXES = ("_user", "_role", "_domain", "_level", "_category")
_UNSET = ("4294967295", "-1")


@dataclass(slots=True)
class RecordData:
    """Interpreted fields of one record. ``error`` set = go-libaudit's ``Data()`` failed."""

    values: dict[str, str] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    tags: list[str] | None = None
    error: str | None = None
    #: coalesce's split of ``values`` (ids / SELinux / data / hashable ids+SELinux), memoised
    split: tuple[dict[str, str], dict[str, str], dict[str, str], tuple[Any, ...]] | None = None


def decode_hex(raw: str) -> bytes | None:
    """Bytes of an unquoted upper-case even-length hex value, else None (go-libaudit's rule)."""
    n = len(raw)
    if n == 0 or n & 1 or not _HEX_UPPER.issuperset(raw):
        return None
    return bytes.fromhex(raw)


def _text(data: bytes) -> str:
    # Go keeps bytes in strings and its JSON encoder replaces invalid UTF-8 with U+FFFD
    return data.decode("utf-8", "replace")


def hex_strings(raw: str) -> str | None:
    """Decoded hex split at NUL and joined with spaces (proctitle, cwd, exe, name…)."""
    data = decode_hex(raw)
    if data is None:
        return None
    return _text(data).replace("\x00", " ")


def hex_string(raw: str) -> str | None:
    """Decoded hex cut at the first NUL (EXECVE arguments)."""
    data = decode_hex(raw)
    if data is None:
        return None
    nul = data.find(b"\x00")
    if nul >= 0:
        data = data[:nul]
    return _text(data)


_CACHE: dict[tuple[int, str], RecordData] = {}
_CACHE_MAX = 4096
_CACHE_BODY_MAX = 1024  # long bodies (big EXECVE records) rarely repeat: not worth the memory


def record_data(rec: AuditRecord) -> RecordData:
    """Interpret one record's fields (go-libaudit ``AuditMessage.Data()`` + ``Tags()``).

    Results are memoised by (type, body): CWD, PATH (the dynamic loader, the same binary),
    PROCTITLE of a busy process and BPRM_FCAPS records repeat verbatim all the time. Callers must
    not mutate the returned ``values`` (copy first).
    """
    key = (rec.type, rec.body)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    out = _record_data(rec)
    if len(rec.body) > _CACHE_BODY_MAX:
        return out
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = out
    return out


def _record_data(rec: AuditRecord) -> RecordData:
    body = rec.body
    rtype = rec.type
    if rtype == tables.AVC:
        body = _normalize_avc(body)
    elif rtype == tables.LOGIN:
        body = body.replace("old ", "old_", 2).replace("new ", "new_", 2)
    elif rtype in (tables.CRED_DISP, tables.USER_START, tables.USER_END):
        body = body.replace(" (hostname=", " hostname=", 2).rstrip(")'")
    raw = fields(body)
    values = {k: v.strip("'\" ") for k, v in raw.items()}
    out = RecordData(values, raw)

    for key in ("auid", "old-auid", "ses"):
        if values.get(key) in _UNSET:
            values[key] = "unset"
    _selinux(values, "subj")
    if "success" in values:
        res = values.pop("success")
    else:
        res = values.pop("res", None)
    if res is not None:
        low = res.lower()
        values["result"] = "success" if low in ("yes", "1") or low.startswith("suc") else "fail"
    exit_ = values.get("exit")
    if exit_ is not None and exit_.startswith("-"):
        try:
            name = tables.ERRNO_NAMES.get(-int(exit_))
        except ValueError:
            name = None
        if name:
            values["exit"] = name
    if "key" in values:
        del values["key"]
        out.tags = _tags(raw["key"])
    _hex_field(values, raw, "cwd")

    if rtype == tables.SYSCALL or rtype == tables.SECCOMP:
        if rtype == tables.SECCOMP and "sig" in values:
            _signal_name(values)
        err = _syscall_fields(values)
        if err:
            out.error = err
            return out
        _hex_field(values, raw, "exe")
        # deviation: the kernel hex-encodes comm like every untrusted string; decode it
        _hex_field(values, raw, "comm")
    elif rtype == tables.SOCKADDR:
        saddr = values.pop("saddr", None)
        if saddr is None:
            out.error = "saddr key not found"
            return out
        parsed = parse_saddr(saddr)
        if parsed is None:
            out.error = "failed to parse saddr"
            return out
        values.update(parsed)
    elif rtype == tables.PROCTITLE:
        _hex_field(values, raw, "proctitle")
    elif rtype == tables.USER_CMD:
        _hex_field(values, raw, "cmd")
    elif rtype == tables.TTY or rtype == tables.USER_TTY:
        _hex_field(values, raw, "data")
    elif rtype == tables.PATH:
        _selinux(values, "obj")
        _hex_field(values, raw, "name")
    elif rtype == tables.USER_LOGIN:
        _hex_field(values, raw, "acct")
    return out


def _hex_field(values: dict[str, str], raw: dict[str, str], key: str) -> None:
    if key in values:
        decoded = hex_strings(raw[key])
        if decoded is not None:
            values[key] = decoded


def _selinux(values: dict[str, str], key: str) -> None:
    context = values.pop(key, None)
    if context is None:
        return
    for suffix, part in zip(_SELINUX_SUFFIXES, context.split(":", 4)):
        values[key + suffix] = part


def _tags(raw: str) -> list[str]:
    data = decode_hex(raw)
    if data is not None:
        return _text(data).split("\x01")
    value = unquote(raw)
    parts = value.split("=", 1)
    return parts[1:] if len(parts) == 2 else parts


def _syscall_fields(values: dict[str, str]) -> str | None:
    arch = values.get("arch")
    if arch is None:
        return "arch key not found"
    try:
        int(arch, 16)
    except ValueError:
        return "failed to parse arch"
    name = tables.arch_name(arch)
    values["arch"] = name
    syscall = values.get("syscall")
    if syscall is None:
        return "syscall key not found"
    try:
        number = int(syscall)
    except ValueError:
        return "failed to parse syscall"
    table = tables.SYSCALL_NAMES.get(name)
    if table is not None:
        resolved = table.get(number)
        if resolved is not None:
            values["syscall"] = resolved
    return None


def _signal_name(values: dict[str, str]) -> None:
    try:
        values["sig"] = signal.Signals(int(values["sig"])).name
    except ValueError:
        pass


def _normalize_avc(body: str) -> str:
    # "avc:  denied  { read write } for  pid=…" -> "seresult=denied seperms=read,write pid=…"
    start = body.find("avc:")
    if start < 0:
        return body
    open_ = body.find("{", start)
    close = body.find("}", open_ + 1)
    if open_ < 0 or close < 0:
        return body
    result = body[start + 4 : open_].split()
    after = body[close + 1 :].lstrip()
    if not result or not after.startswith("for"):
        return body
    perms = ",".join(body[open_ + 1 : close].split())
    return f"seresult={result[0]} seperms={perms} {after[3:].lstrip()}"
