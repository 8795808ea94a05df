"""One audit record from an audit.log line or a netlink message, parsed lazily.

Both inputs meet in :func:`_from_payload`: auditd writes ``type=NAME msg=<payload>`` while the
kernel sends ``<payload>`` with the type in the netlink header, so once the type number is known
the rest is one code path. Parsing stops at the header (type, time, serial): the key=value body is
kept as text and split only when an event is actually built (:func:`fields`), so events that a
push-down filter drops cost almost nothing.

What is cut before anything else:

* the ENRICHED tail: auditd (``log_format = ENRICHED``) appends ``0x1D`` and its own
  interpretation (``ARCH=x86_64 SYSCALL=connect …``). Netlink never carries it, and go-libaudit
  garbles values when fed it, so it is dropped to get exactly what Auditbeat sees;
* a ``node=<name>`` prefix (auditd ``name_format``): kept as :attr:`AuditRecord.node`.

Bad input never raises: :func:`parse_line` returns a :class:`Skip` with a reason that the caller
counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from auditeql.audit import tables

#: longest line accepted. The kernel caps a record at 8970 bytes (MAX_AUDIT_MESSAGE_LENGTH);
#: auditd's ENRICHED tail and node prefix add little. Anything far longer is not a record.
MAX_LINE_BYTES = 64 * 1024

_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# go-libaudit's key=value grammar: key [a-z0-9_-]+, value unquoted / '…' / "…"
_KV = re.compile(r"""([a-z0-9_-]+)=((?:[^"'\s]+)|'(?:\\'|[^'])*'|"(?:\\"|[^"])*")""")
_DROP_VALUES = frozenset(("", "?", "?,", "(null)"))
# raw tokens whose value (quotes and spaces trimmed) is one of _DROP_VALUES
_DROP_RAW = frozenset(
    [q + v + q for v in _DROP_VALUES for q in ("", '"', "'")] + ['" "', "' '", "\"''\"", "'\"\"'"]
)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A single audit record: type number, header and the unparsed key=value body."""

    type: int
    seconds: int
    millis: int
    serial: int
    body: str
    node: str | None = None

    @property
    def type_name(self) -> str:
        return tables.type_name(self.type)

    @property
    def timestamp_ms(self) -> int:
        return self.seconds * 1000 + self.millis

    def header(self) -> str:
        return f"audit({self.seconds}.{self.millis:03d}:{self.serial})"

    def original(self) -> str:
        """The record as Auditbeat writes it in ``event.original``: ``type=NAME msg=…``."""
        return f"type={self.type_name} msg={self.header()}: {self.body}"


_new_record = object.__new__
_SET_TYPE, _SET_SECONDS, _SET_MILLIS, _SET_SERIAL, _SET_BODY, _SET_NODE = (
    AuditRecord.__dict__[name].__set__ for name in ("type", "seconds", "millis", "serial", "body", "node")
)


def _make_record(rtype: int, seconds: int, millis: int, serial: int, body: str, node: str | None) -> AuditRecord:
    """``AuditRecord(...)`` at less than half the cost: a frozen dataclass's ``__init__`` goes
    through ``object.__setattr__`` per field; the slot descriptors set them directly. Same object."""
    rec = _new_record(AuditRecord)
    _SET_TYPE(rec, rtype)
    _SET_SECONDS(rec, seconds)
    _SET_MILLIS(rec, millis)
    _SET_SERIAL(rec, serial)
    _SET_BODY(rec, body)
    _SET_NODE(rec, node)
    return rec


@dataclass(frozen=True, slots=True)
class Skip:
    """A line that is not a usable audit record, and why (a short reason used as a counter key)."""

    reason: str
    detail: str = ""


# The common line in one C-level match: type, header, and a body free of control bytes that ends
# at the ENRICHED separator or the end of line. Anything else takes the careful path below.
#: Seconds have at most 11 digits (year 5138): beyond that no calendar date can be written.
_FAST = re.compile(rb"type=([A-Z0-9_]+) msg=audit\(([0-9]{1,11})\.([0-9]{1,3}):([0-9]+)\):? ?")
_TYPES_B: dict[bytes, int] = {k.encode(): v for k, v in tables.RECORD_TYPE_NUMBERS.items()}
_CONTROL_BYTES = bytes(range(0x00, 0x09)) + bytes(range(0x0A, 0x20)) + b"\x7f"


def parse_line(line: bytes | str) -> AuditRecord | Skip:
    """Parse one audit.log line (``[node=N ]type=NAME msg=audit(S.MS:SERIAL): body[\\x1d…]``)."""
    # The common line: the header by one regex match, the body checked and decoded by C-level
    # byte operations (a regex over the body costs more than everything else here).
    # Anything unusual takes the careful path below, which also names the reason of a skip.
    if type(line) is bytes and len(line) <= MAX_LINE_BYTES:
        m = _FAST.match(line)
        if m is not None:
            body = line[m.end() :]
            cut = body.find(b"\x1d")
            if cut >= 0:
                body = body[:cut]
            else:
                body = body.rstrip(b"\r\n")
            if len(body.translate(None, _CONTROL_BYTES)) == len(body):
                name, sec, ms, serial = m.groups()
                rtype = _TYPES_B.get(name)
                serial_n = int(serial)
                if rtype is not None and serial_n <= 0xFFFFFFFF:
                    try:
                        text = body.decode("utf-8").strip()
                    except UnicodeDecodeError:
                        return Skip("invalid-utf8")
                    if text.count('"') & 1:
                        return Skip("truncated")
                    return _make_record(rtype, int(sec), int(ms), serial_n, text, None)
    return _parse_line_slow(line)


def _parse_line_slow(line: bytes | str) -> AuditRecord | Skip:
    if isinstance(line, str):
        line = line.encode("utf-8", "surrogateescape")
    if len(line) > MAX_LINE_BYTES:
        return Skip("too-long", f"{len(line)} bytes")
    cut = line.find(b"\x1d")
    if cut >= 0:
        line = line[:cut]
        if not line.strip():
            return Skip("not-audit")  # an ENRICHED tail without a record
    line = line.rstrip(b"\r\n")
    if _CONTROL.search(line):
        if not line.strip():
            return Skip("empty")
        return Skip("binary")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return Skip("invalid-utf8")
    text = text.strip()
    if not text:
        return Skip("empty")
    node = None
    if text.startswith("node="):
        space = text.find(" ")
        if space < 0:
            return Skip("not-audit")
        node = text[5:space]
        text = text[space + 1 :].lstrip()
    if not text.startswith("type="):
        return Skip("not-audit")
    msg = text.find(" msg=", 5)
    if msg < 0:
        return Skip("not-audit")
    name = text[5:msg]
    record_type = tables.RECORD_TYPE_NUMBERS.get(name)
    if record_type is None:
        record_type = _unknown_type(name)
        if record_type is None:
            return Skip("unknown-type", name[:40])
    return _from_payload(record_type, text[msg + 5 :], node)


def parse_netlink(msg_type: int, payload: bytes) -> AuditRecord | Skip:
    """Parse a netlink audit message payload (the bytes after the 16-byte nlmsghdr).

    The kernel sends ``audit(S.MS:SERIAL): body`` (sometimes NUL-terminated); the record type is
    ``nlmsg_type``. Same checks and same result as :func:`parse_line` on the auditd line.
    """
    if len(payload) > MAX_LINE_BYTES:
        return Skip("too-long", f"{len(payload)} bytes")
    payload = payload.rstrip(b"\x00\r\n ")
    if _CONTROL.search(payload):
        return Skip("binary")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return Skip("invalid-utf8")
    return _from_payload(msg_type, text.strip(), None)


def _unknown_type(name: str) -> int | None:
    # auditd writes types it has no name for as UNKNOWN[1234]
    if name.startswith("UNKNOWN[") and name.endswith("]") and name[8:-1].isdigit():
        return int(name[8:-1])
    return None


_HEADER = re.compile(r"audit\(([0-9]{1,11})\.([0-9]{1,3}):([0-9]+)\)")


def _from_payload(record_type: int, payload: str, node: str | None) -> AuditRecord | Skip:
    m = _HEADER.match(payload)
    if m is None:
        if not payload.startswith("audit("):
            return Skip("bad-header")
        if payload.find(")", 6) < 0:
            return Skip("truncated")
        return Skip("bad-header")
    sec, ms, serial = m.groups()
    serial_n = int(serial)
    if serial_n > 0xFFFFFFFF:
        return Skip("bad-header")
    body = payload[m.end() :]
    if body[:1] == ":":
        body = body[1:]
    body = body.strip()
    if body.count('"') & 1:
        # the kernel hex-encodes any value containing a double quote, so an odd count means the
        # line was cut short (a partial write, a truncated copy)
        return Skip("truncated")
    return _make_record(record_type, int(sec), int(ms), serial_n, body, node)


def fields(body: str) -> dict[str, str]:
    """Split a record body into ``key -> raw value`` (quotes kept), like go-libaudit does.

    Keys are ``[a-z0-9_-]+``; values are unquoted tokens, ``'…'`` or ``"…"``. Useless values
    (``""``, ``?``, ``?,``, ``(null)``) are dropped and a ``msg='…'`` value (user-space records) is
    parsed recursively and merged. One C-level regex pass per record is the fastest way to do this
    in Python (faster than splitting and partitioning tokens).
    """
    pairs = _KV.findall(body)
    out = dict(pairs)
    if "msg" in out:
        return _fields_regex(body)
    if not _DROP_RAW.isdisjoint(out.values()):
        # go-libaudit skips a useless value, so an earlier value of the same key survives
        out = {}
        for key, raw in pairs:
            if raw not in _DROP_RAW:
                out[key] = raw
    return out


def _fields_regex(body: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, raw in _KV.findall(body):
        value = raw.strip("'\" ")
        if value in _DROP_VALUES:
            continue
        if key == "msg":
            out.update(_fields_regex(value))
            continue
        out[key] = raw
    return out


def unquote(raw: str) -> str:
    """The value as go-libaudit sees it: surrounding quotes and spaces trimmed."""
    return raw.strip("'\" ")
