"""Raw audit log or ECS NDJSON? One rule for every reader that has to guess.

Why not just the first byte (``{`` = NDJSON): an NDJSON export cut out of the middle of a file
(``split -b``, ``tail -c``), or one whose first line is damaged (``ss":{"name":"bash"}}``,
``null``, ``[1]``, a byte-order mark), would be read as a raw audit log, and the audit parser
skips every line that is not an audit record: every document lost without a word. The other way
round, one garbage line starting with ``{`` at the top of an audit.log would send the whole log
to the JSON reader.

The rule: the lines at the start of the (decompressed) input are classified one by one as

* an **audit record**: what :func:`auditeql.audit.records.parse_line` accepts (optional
  ``node=… ``, then ``type=NAME msg=audit(S.MS:SERIAL)…``);
* a **JSON object**: starts with ``{`` (after blanks and a byte-order mark) and, when the whole
  line is at hand, parses as a JSON object;
* anything else (blank lines are not counted at all);

until one kind has :data:`DECISIVE` lines or :data:`WINDOW` bytes have been looked at (counted
from the first non-blank byte) or the input ends. The kind with more lines wins; on a tie
(including no line of either kind) the old rule decides: ``{`` as first non-blank byte is NDJSON,
anything else raw audit, and an input with no non-blank byte is ``"empty"``.

The verdict depends only on the bytes, never on how they arrive in pieces, so a file, a peek at
stdin, a line-by-line look at a stream and a pipe's first reads all agree. Stopping at
:data:`DECISIVE` lines keeps the look short on a slow pipe.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator

import orjson

from auditeql.audit.records import Skip, parse_line

#: Bytes looked at, from the first non-blank byte on (decompressed).
WINDOW = 1 << 16
#: Lines of one kind that settle the question early.
DECISIVE = 16
#: Raw bytes read at most (compressed or not) to find the first non-blank byte; an input blank
#: that far is decided as it stands (``"empty"`` for a whole blank file).
HEAD_LIMIT = 1 << 20

_BOM = b"\xef\xbb\xbf"
_BLANK = b" \t\r\n\x0b\x0c"


def _line_kind(line: bytes, complete: bool) -> tuple[str, bytes] | None:
    """(``"audit"``, ``"json"`` or ``"other"``, the line's first non-blank byte); ``None`` for a
    blank line."""
    s = line.strip()
    if s.startswith(_BOM):
        s = s[3:].lstrip()
    if not s:
        return None
    first = s[:1]
    if first == b"{":
        if not complete:
            return "json", first  # cut by the window: its start is all there is
        try:
            return ("json" if isinstance(orjson.loads(s), dict) else "other"), first
        except orjson.JSONDecodeError:
            return "other", first
    return ("other" if isinstance(parse_line(s), Skip) else "audit"), first


class Sniffer:
    """The rule above, fed the decompressed input in pieces of any size.

    :meth:`feed` returns the kind once it is decided (and ignores anything fed after);
    :meth:`finish` decides with what was seen (``eof``: the last line is whole).
    """

    __slots__ = ("_pending", "_seen", "audit", "first", "json", "kind")

    def __init__(self) -> None:
        self._pending = bytearray()  # the line being collected
        self._seen = 0  # bytes taken into the window
        self.audit = 0
        self.json = 0
        self.first: bytes | None = None  # first non-blank byte (after a byte-order mark)
        self.kind: str | None = None

    def feed(self, data: bytes) -> str | None:
        if self.kind is not None:
            return self.kind
        if self._seen == 0:
            data = data.lstrip(_BLANK)  # leading blank lines: not part of the window
            if not data:
                return None
        take = data[: WINDOW - self._seen]
        self._seen += len(take)
        pending = self._pending
        start = len(pending)
        pending += take
        begin = 0
        while True:
            nl = pending.find(b"\n", start)
            if nl < 0:
                break
            self._count(_line_kind(bytes(pending[begin:nl]), True))
            begin = start = nl + 1
            if self.kind is not None:
                return self.kind
        del pending[:begin]
        if self._seen >= WINDOW:
            return self.finish(eof=False)
        return None

    def finish(self, eof: bool = True) -> str:
        if self.kind is None:
            if self._pending:
                self._count(_line_kind(bytes(self._pending), eof))
                self._pending.clear()
            if self.kind is None:
                self.kind = self._verdict()
        return self.kind

    def _count(self, seen: tuple[str, bytes] | None) -> None:
        if seen is None:
            return
        kind, first = seen
        if self.first is None:
            self.first = first
        if kind == "audit":
            self.audit += 1
        elif kind == "json":
            self.json += 1
        else:
            return
        if self.audit >= DECISIVE or self.json >= DECISIVE:
            self.kind = self._verdict()

    def _verdict(self) -> str:
        if self.audit != self.json:
            return "audit" if self.audit > self.json else "ndjson"
        if self.first is None:
            return "empty"
        return "ndjson" if self.first == b"{" else "audit"


class Inflater:
    """gzip data fed in pieces, decompressed a bounded amount at a time, member after member."""

    def __init__(self) -> None:
        self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decompressed pieces of ``data`` (raises ``zlib.error`` on damaged data)."""
        while data:
            out = self.z.decompress(data, 1 << 16)
            if out:
                yield out
            if self.z.eof:  # a member ended: the next one starts in unused_data
                data = self.z.unused_data
                self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                data = self.z.unconsumed_tail


def kind_of(head: bytes, eof: bool) -> str:
    """``"audit"``, ``"ndjson"`` or ``"empty"`` for an input whose first bytes are ``head``
    (gzip-compressed or not); ``eof``: ``head`` is the whole input. A damaged gzip stream is
    ``"ndjson"`` when nothing could be read before the damage (the NDJSON reader reports it)."""
    pieces = [head] if head else []
    return kind_of_reads(lambda: pieces.pop() if pieces else b"", eof_after=eof)


def kind_of_reads(read: Callable[[], bytes], *, eof_after: bool = True, blank: str | None = None) -> str:
    """The kind of an input given as successive raw reads (``b""`` = the end: decided as a whole
    input when ``eof_after``, as a cut one otherwise). Reads stop as soon as the kind is decided.
    The first read must hold at least two bytes unless the input is shorter (the gzip magic).
    ``blank``: the verdict for an input still blank after :data:`HEAD_LIMIT` raw bytes (default:
    decided as it stands, ``"empty"``)."""
    sniffer = Sniffer()
    inflater: Inflater | None = None
    raw = 0
    first = True
    while True:
        data = read()
        if not data:
            return sniffer.finish(eof=eof_after)
        if first:
            first = False
            if data[:2] == b"\x1f\x8b":
                inflater = Inflater()
        raw += len(data)
        try:
            pieces = inflater.feed(data) if inflater is not None else (data,)
            for piece in pieces:
                if sniffer.feed(piece) is not None:
                    return sniffer.kind  # type: ignore[return-value]
        except zlib.error:
            return sniffer.finish(eof=False) if sniffer.first is not None else "ndjson"
        if raw >= HEAD_LIMIT and sniffer.first is None:
            return blank if blank is not None else sniffer.finish(eof=False)
