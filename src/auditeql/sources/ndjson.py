"""ECS NDJSON documents from files, ``.gz`` files or stdin (``-``).

One document per line. A line that is not a JSON object is reported on stderr with its
file and line number and skipped — a bad line never ends the run and never costs the valid
lines around it. :func:`read_ndjson_raw` also hands out each raw line, so callers can skip
lines cheaply before parsing (``auditeql.eql.plan.line_may_match``) and print documents
exactly as they were read.
"""

from __future__ import annotations

import gzip
import sys
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import orjson

from . import pipes
from .linescan import BlockScanner

#: Called with a one-line message for every line or file that cannot be used.
Reporter = Callable[[str], None]


def stderr_reporter(message: str) -> None:
    print(f"auditeql: {message}", file=sys.stderr)


class NdjsonStats:
    """Counters a caller can show at the end of a run."""

    __slots__ = ("bad_files", "bad_lines", "documents", "lines", "skipped_by_literals")

    def __init__(self) -> None:
        self.lines = 0
        self.documents = 0
        self.bad_lines = 0
        self.skipped_by_literals = 0
        self.bad_files = 0


def _display(path: str) -> str:
    return pipes.display_name(path)


def open_binary(path: str) -> IO[bytes]:
    """Open ``path`` (``-`` = stdin) for reading bytes, decompressing gzip by magic number.

    Stdin and the pipes registered by :func:`auditeql.sources.pipes.prepared` are peeked, not
    re-read; any other path that is not a regular file is read as it comes."""
    stream = pipes.open_stream(path)
    if stream is not None or path == "-" or pipes.reads_once(path):
        raw: IO[bytes] = stream if stream is not None else sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        peek = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        if peek == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
        return raw
    fh = open(path, "rb")  # noqa: SIM115 - returned to the caller
    magic = fh.read(2)
    fh.seek(0)
    if magic == b"\x1f\x8b":
        fh.close()
        # GzipFile itself (not wrapped): its read1 keeps what was read before a truncation
        return gzip.GzipFile(path, "rb")  # type: ignore[return-value]
    return fh


def iter_lines(
    paths: Iterable[str], report: Reporter = stderr_reporter, stats: NdjsonStats | None = None
) -> Iterator[tuple[str, int, bytes]]:
    """``(path, line_number, raw_line)`` for every non-blank line of every input."""
    for path in paths:
        try:
            fh = open_binary(path)
        except OSError as exc:
            if stats is not None:
                stats.bad_files += 1
            report(f"{_display(path)}: cannot read: {exc.strerror or exc}")
            continue
        lineno = 0
        try:
            for lineno, line in enumerate(fh, 1):
                if stats is not None:
                    stats.lines += 1
                if line.isspace() or not line:
                    continue
                yield path, lineno, line
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            if stats is not None:
                stats.bad_files += 1
            report(f"{_display(path)}:{lineno + 1}: input ends early ({exc}); the lines before were used")
        finally:
            if path != "-":
                fh.close()


#: Bytes read at a time by :func:`iter_candidate_lines`.
CHUNK_BYTES = 4 << 20
#: A chunk whose candidate lines exceed this share switches the file to line-by-line reading.
CHUNK_MAX_SHARE = 0.3


def iter_candidate_lines(
    paths: Iterable[str],
    needles: tuple[bytes, ...],
    report: Reporter = stderr_reporter,
    stats: NdjsonStats | None = None,
    scanner: BlockScanner | None = None,
) -> Iterator[tuple[str, int, bytes]]:
    """Like :func:`iter_lines`, but only lines holding one of ``needles`` (or a ``\\u`` escape).

    The search runs over whole 4 MiB chunks at C speed, so lines that cannot matter are never
    touched one by one. It is exact: every line that contains a needle or a ``\\u`` escape is
    yielded. Each chunk is first checked to consist only of lines ending in ``}``;
    a chunk that does not (blank lines, CRLF, damage) is handed out line by line instead, so
    bad lines are still reported. When needles turn out to be common (more than
    :data:`CHUNK_MAX_SHARE` of a chunk's lines), the rest of that input is read line by line.

    With a ``scanner`` (:mod:`auditeql.sources.linescan`), it decides the candidate lines
    instead of ``needles`` (its own exactness rule), and chunked reading is always kept: the
    scan costs far less than the lines it lets through.
    """
    st = stats if stats is not None else NdjsonStats()
    # An ASCII character can only be escaped as \u00XX; other text needs the wider guard.
    guard = b"\\u00" if all(n.isascii() for n in needles) else b"\\u"
    for path in paths:
        try:
            fh = open_binary(path)
        except OSError as exc:
            st.bad_files += 1
            report(f"{_display(path)}: cannot read: {exc.strerror or exc}")
            continue
        lineno = 0  # lines fully handed out so far
        carry = b""
        chunked = True
        try:
            while True:
                block, error = _read_chunk(fh)
                if not block:
                    if carry:
                        yield from _lines_of(path, lineno, carry + b"\n", st)
                        lineno += 1
                    if error is not None:
                        st.bad_files += 1
                        report(f"{_display(path)}:{lineno + 1}: input ends early ({error}); the lines before were used")
                    break
                # The block is searched in place (no copies: memory bandwidth is the cost here).
                # The line straddling the previous block is joined and handed out as it is.
                first_nl = block.find(b"\n")
                if first_nl == -1:
                    carry += block
                    continue
                if carry:
                    joined = carry + block[: first_nl + 1]
                    if not chunked or not joined.rstrip().endswith(b"}") or (
                        scanner.may_match(joined) if scanner is not None else any(
                            x in joined for x in (*needles, guard)
                        )
                    ):
                        yield from _lines_of(path, lineno, joined, st)
                    else:
                        st.lines += 1
                        st.skipped_by_literals += 1
                    lineno += 1
                    begin = first_nl + 1
                else:
                    begin = 0
                cut = block.rfind(b"\n") + 1
                carry = block[cut:]
                if begin >= cut:
                    continue
                # One pass over the line ends (memchr-fast finds): where each line ends, and
                # whether every line ends with "}" — a cheap check that no line is truncated.
                ends: list[int] = []
                find = block.find
                shaped = True
                i = begin
                while i < cut:
                    j = find(b"\n", i, cut)
                    if j == i or block[j - 1] != 0x7D:  # an empty line, or one not ending in "}"
                        shaped = False
                        break
                    ends.append(j)
                    i = j + 1
                if not chunked or not shaped:
                    n = block.count(b"\n", begin, cut)
                    yield from _lines_of(path, lineno, block[begin:cut], st)
                    lineno += n
                    continue
                n = len(ends)
                hits: set[int] = set()  # indexes of candidate lines within the chunk
                if scanner is not None:
                    hits = {bisect_left(ends, p) for p in scanner.offsets(block, begin, cut)}
                for needle in () if scanner is not None else (*needles, guard):
                    k = find(needle, begin, cut)
                    while k != -1:
                        idx = bisect_left(ends, k)
                        hits.add(idx)
                        k = find(needle, ends[idx], cut)
                st.lines += n
                st.skipped_by_literals += n - len(hits)
                if scanner is None and len(hits) > n * CHUNK_MAX_SHARE:
                    chunked = False
                for idx in sorted(hits):
                    start = ends[idx - 1] + 1 if idx else begin
                    yield path, lineno + idx + 1, block[start : ends[idx] + 1]
                lineno += n
        finally:
            if path != "-":
                fh.close()


def _read_chunk(fh: IO[bytes]) -> tuple[bytes, BaseException | None]:
    """Up to :data:`CHUNK_BYTES`; on a read error, what was read before it and the error."""
    parts: list[bytes] = []
    size = 0
    read = getattr(fh, "read1", fh.read)
    try:
        while size < CHUNK_BYTES:
            b = read(CHUNK_BYTES - size)
            if not b:
                break
            parts.append(b)
            size += len(b)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        return b"".join(parts), exc
    return b"".join(parts), None


def _lines_of(path: str, lineno: int, chunk: bytes, st: NdjsonStats) -> Iterator[tuple[str, int, bytes]]:
    """The lines of a newline-terminated chunk, numbered from ``lineno + 1`` (blank ones skipped)."""
    lines = chunk.split(b"\n")
    lines.pop()  # after the final newline
    for i, line in enumerate(lines, lineno + 1):
        st.lines += 1
        if not line or line.isspace():
            continue
        yield path, i, line + b"\n"


def parse_line(path: str, lineno: int, line: bytes, report: Reporter) -> dict[str, Any] | None:
    """The JSON object on ``line``, or ``None`` (reported) when it is not one."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        report(f"{_display(path)}:{lineno}: skipped: not valid JSON ({exc.msg})")
        return None
    if not isinstance(doc, dict):
        report(f"{_display(path)}:{lineno}: skipped: a document must be a JSON object, found {type(doc).__name__}")
        return None
    return doc


#: Lines used to decide whether a raw-line pre-filter pays for itself.
PROBE_LINES = 1000


def read_ndjson_raw(
    paths: Iterable[str],
    *,
    may_match: Callable[[bytes], bool] | None = None,
    report: Reporter = stderr_reporter,
    stats: NdjsonStats | None = None,
    adaptive: bool = True,
    needles: tuple[bytes, ...] | None = None,
    scanner: BlockScanner | None = None,
) -> Iterator[tuple[dict[str, Any], bytes]]:
    """``(document, raw_line)`` pairs; lines for which ``may_match`` is false are not parsed.

    ``may_match`` must be exact (false only for lines whose document cannot matter). With
    ``adaptive``, the first :data:`PROBE_LINES` lines are both tested and parsed, timing each;
    the test is kept only if it costs less than the parsing it saves (a test that lets most
    lines through, or that is slower than ``orjson`` itself, is dropped).
    """
    st = stats if stats is not None else NdjsonStats()
    if scanner is not None or needles:
        source = iter_candidate_lines(paths, needles or (), report, st, scanner)
    else:
        source = iter_lines(paths, report, st)

    def bad(path: str, lineno: int, line: bytes) -> None:
        parse_line(path, lineno, line, report)  # reports why

    for _path, _lineno, doc, line in _parse_lines(source, may_match, adaptive, st, bad):
        yield doc, line


def _parse_lines(
    source: Iterable[tuple[Any, int, bytes]],
    may_match: Callable[[bytes], bool] | None,
    adaptive: bool,
    st: NdjsonStats,
    bad: Callable[[Any, int, bytes], None],
) -> Iterator[tuple[Any, int, dict[str, Any], bytes]]:
    """``(tag, line number, document, line)`` for the object lines of ``(tag, line number, line)``.

    ``may_match`` (exact) skips lines before parsing; with ``adaptive`` it is timed on the first
    :data:`PROBE_LINES` lines and dropped if it costs more than the parsing it saves. Lines that
    are not JSON objects go to ``bad`` and are counted.
    """
    loads = orjson.loads
    test = may_match
    probing = adaptive and test is not None
    probe_n = probe_pass = 0
    t_test = t_parse = 0.0
    clock = time.perf_counter
    for tag, lineno, line in source:
        if probing:
            t0 = clock()
            ok = test(line)  # type: ignore[misc]
            t1 = clock()
            try:
                doc = loads(line)
            except orjson.JSONDecodeError:
                doc = None
            t2 = clock()
            probe_n += 1
            probe_pass += ok
            t_test += t1 - t0
            t_parse += t2 - t1
            if probe_n >= PROBE_LINES:
                probing = False
                saved = (1 - probe_pass / probe_n) * t_parse
                if t_test >= saved:
                    test = None
        elif test is not None and not test(line):
            # No filter can match this line, so it is not parsed. A line that is not even shaped
            # like a JSON object is still parsed, so that damage is reported, never hidden.
            stripped = line.strip()
            if stripped[:1] == b"{" and stripped[-1:] == b"}":
                st.skipped_by_literals += 1
                continue
            doc = _try_loads(line)
        else:
            doc = _try_loads(line)
        if doc.__class__ is not dict:
            bad(tag, lineno, line)
            st.bad_lines += 1
            continue
        st.documents += 1
        yield tag, lineno, doc, line


def _try_loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def read_ndjson(
    paths: Iterable[str], *, report: Reporter = stderr_reporter, stats: NdjsonStats | None = None
) -> Iterator[dict[str, Any]]:
    """ECS documents from NDJSON inputs (architecture contract: ``read_ndjson(paths)``)."""
    for doc, _line in read_ndjson_raw(paths, report=report, stats=stats):
        yield doc
