"""Documents from files: raw audit logs (normalized on the fly) or ECS NDJSON, auto-detected.

``read_documents`` is what ``query``, ``scan`` and ``normalize`` read through, so every command
accepts the same inputs:

* plain or gzip-compressed files (detected by their magic bytes, not their name), ``-`` for stdin,
  and globs (``/var/log/audit/audit.log*``);
* each file is raw audit (``type=… msg=audit(…)``, with or without ``node=``) or ECS NDJSON,
  decided by the kind of most of its first lines (:mod:`auditeql.sources.sniff`: an export cut
  in the middle of a line is still NDJSON);
* an auditd rotated set (``audit.log audit.log.1 audit.log.2.gz``) given in any order is read
  oldest first (highest number first, the live file last), and all raw files go through one
  normalizer, so an event cut by a rotation is still one document.

Bad lines are counted in ``stats`` and skipped; nothing valid around them is lost.
"""

from __future__ import annotations

import glob
import gzip
import io
import itertools
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

import orjson

from auditeql.audit.host import HostInfo
from auditeql.audit.pipeline import KeepFn, KeepPolicy, Normalizer

from . import pipes, sniff

_ROTATED = re.compile(r"^(?P<base>.*?)(?:\.(?P<num>\d+))?(?:\.gz)?$")


class InputError(Exception):
    """An input path that cannot be read (missing file, directory, no glob match)."""


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Globs expanded, then rotated sets ordered oldest first; other files keep their order."""
    expanded: list[str] = []
    for p in paths:
        if p == "-":
            expanded.append(p)
            continue
        if any(c in p for c in "*?["):
            matches = sorted(glob.glob(p))
            if not matches:
                raise InputError(f"{p}: no file matches this pattern")
            expanded.extend(matches)
        else:
            expanded.append(p)
    seen: set[str] = set()
    unique = [p for p in expanded if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]
    # group by rotation base, keep first-appearance order of the groups
    groups: dict[str, list[tuple[int, str]]] = {}
    for p in unique:
        if p == "-":
            groups.setdefault("\0stdin", []).append((-1, p))
            continue
        m = _ROTATED.match(p)
        base = m.group("base") if m else p
        num = int(m.group("num")) if m and m.group("num") else -1
        groups.setdefault(base, []).append((num, p))
    ordered: list[str] = []
    for members in groups.values():
        members.sort(key=lambda t: -t[0])  # audit.log.3, .2, .1, audit.log
        ordered.extend(p for _, p in members)
    return ordered


def _open(path: str) -> BinaryIO:
    stream = pipes.open_stream(path)
    if stream is not None:
        raw: BinaryIO = stream
    elif path == "-":
        raw = sys.stdin.buffer
    else:
        p = Path(path)
        if p.is_dir():
            raise InputError(f"{path}: is a directory; give the log files (e.g. {path}/audit.log*)")
        try:
            raw = open(p, "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except PermissionError:
            raise InputError(f"{path}: permission denied (audit logs are usually root-only; try sudo)") from None
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=buffered)  # type: ignore[return-value]
    return buffered  # type: ignore[return-value]


def input_kind(path: str) -> str:
    """``"audit"``, ``"ndjson"`` or ``"empty"`` by :mod:`auditeql.sources.sniff`'s rule (the lines
    of the first 64 KiB, decompressed), without consuming anything (stdin is peeked; a pipe
    registered by :func:`auditeql.sources.pipes.prepared` keeps what was read to look).
    Unreadable paths are ``"ndjson"``: the NDJSON reader reports them.
    """
    if pipes.registered(path):
        try:
            return pipes.kind(path)[0]
        except OSError:
            return "ndjson"
    try:
        if path == "-":
            head = sys.stdin.buffer.peek(sniff.HEAD_LIMIT)[: sniff.HEAD_LIMIT]
            return sniff.kind_of(head, eof=False)
        with open(path, "rb") as fh:
            return sniff.kind_of_reads(lambda: fh.read(1 << 16))
    except (OSError, ValueError):
        return "ndjson"


def _sniff(stream: IO[bytes]) -> tuple[str, list[bytes]]:
    """("ndjson" | "audit" | "empty", the lines consumed while looking), by
    :mod:`auditeql.sources.sniff`'s rule over the (decompressed) lines."""
    consumed: list[bytes] = []
    sniffer = sniff.Sniffer()
    for line in stream:
        consumed.append(line)
        kind = sniffer.feed(line)
        if kind is not None:
            return kind, consumed
    return sniffer.finish(eof=True), consumed


def _chunks(stream: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """``stream`` in pieces of about ``size`` bytes, each ending with a whole line (but the last).

    A piece is completed with ``readline`` (the buffered reader's C loop), so each byte is copied
    once more at most, instead of slicing off and re-joining a partial line every time."""
    read, readline = stream.read, stream.readline
    while True:
        block = read(size)
        if not block:
            break
        if block[-1:] != b"\n":
            block += readline()
        yield block


def _chain(first: list[bytes], rest: Iterable[bytes]) -> Iterator[bytes]:
    return itertools.chain(first, rest)  # in C: this runs once per line


def _ndjson_lines(lines: Iterable[bytes], stats: dict[str, Any]) -> Iterator[dict[str, Any]]:
    skipped = stats.setdefault("ndjson_skipped", 0)
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            skipped += 1
            stats["ndjson_skipped"] = skipped
            continue
        if isinstance(doc, dict):
            stats["ndjson_documents"] = stats.get("ndjson_documents", 0) + 1
            yield doc
        else:
            skipped += 1
            stats["ndjson_skipped"] = skipped


def _read_ndjson_file(path: str, stats: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The NDJSON module's reader (it reports bad lines with file:line on stderr)."""
    from auditeql.sources.ndjson import NdjsonStats, read_ndjson

    st = NdjsonStats()
    try:
        yield from read_ndjson([path], stats=st)
    finally:
        stats["ndjson_documents"] = stats.get("ndjson_documents", 0) + st.documents
        stats["ndjson_skipped"] = stats.get("ndjson_skipped", 0) + st.bad_lines


#: Inputs up to this size (compressed files count ``_GZ_FACTOR`` times) are read once and held in
#: memory for the semi-join; bigger ones are read twice (a counting census, then the real pass).
HOLD_LIMIT = 256 << 20
_GZ_FACTOR = 8


def _semijoin_mode(ordered: list[str], policy: Any) -> str | None:
    """``"hold"``, ``"count"`` or None (no semi-join: an input is stdin, NDJSON or unreadable)."""
    if getattr(policy, "semijoin", None) is None or not getattr(policy, "active", False) or not ordered:
        return None
    total = 0
    for p in ordered:
        if p == "-" or not Path(p).is_file() or input_kind(p) != "audit":
            return None
        with open(p, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        total += Path(p).stat().st_size * (_GZ_FACTOR if gz else 1)
    return "hold" if total <= HOLD_LIMIT else "count"


def _census(ordered: list[str], flavor: str, host: HostInfo, policy: Any, stats: dict[str, Any]) -> None:
    """The counting census of the join-key semi-join (:mod:`auditeql.rules.semijoin`) for inputs
    too big to hold: a first pass over every file; on a read error the semi-join is switched off."""
    semijoin = policy.semijoin
    feeder = policy.line_feeder(Normalizer(flavor, host), census="count")
    note = semijoin.note_document
    try:
        for path in ordered:
            with _open(path) as stream:
                for doc in feeder.feed_chunks(_chunks(stream)):
                    note(doc)
        for doc in feeder.flush():
            note(doc)
    except (OSError, EOFError, gzip.BadGzipFile, InputError):
        policy.semijoin = None  # the real pass reports the damage; nothing is narrowed
        return
    semijoin.finish()
    _semijoin_stats(semijoin, stats)


def _semijoin_stats(semijoin: Any, stats: dict[str, Any]) -> None:
    stats["semijoin"] = {"candidates": semijoin.census_candidates, "documents": semijoin.census_documents,
                         "not_needed": semijoin.skipped_headers}


def read_documents(
    paths: Iterable[str],
    *,
    flavor: str = "auditd-manager",
    host: HostInfo | None = None,
    keep: KeepFn | KeepPolicy | None = None,
    pushdown: KeepFn | KeepPolicy | None = None,
    stats: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield ECS documents from raw audit logs and/or ECS NDJSON files (see module docstring).

    ``host`` defaults to this machine (:meth:`HostInfo.detect`). ``stats``, if given, is filled
    in place: ``files``, the normalizer counters (``events``, ``records``, ``skipped`` by reason,
    ``reassembly_timeouts``…) and ``ndjson_documents``/``ndjson_skipped``.
    Raises :class:`InputError` for a path that cannot be read.

    With a push-down that carries a join-key semi-join (``scan``), regular audit files are either
    held in memory while the census decides which candidates are needed, or read twice
    (:data:`HOLD_LIMIT`); the documents are the same either way. Inputs that can be read only
    once (stdin, pipes, ``<(…)``) are read as they come, or, where the semi-join applies, copied
    once to be read as files (:mod:`auditeql.sources.pipes`).
    """
    if stats is None:
        stats = {}
    ordered = expand_paths(list(paths))
    policy = keep if keep is not None else pushdown
    with pipes.prepared(ordered, _spool_policy(ordered, policy)) as ordered:
        yield from _read_prepared(ordered, flavor, host, keep, pushdown, stats, policy)


def _spool_policy(ordered: list[str], policy: Any) -> pipes.SpoolPolicy | None:
    """Copy a piped raw audit log when the semi-join can use it: every other input is a regular
    raw audit file (the semi-join needs them all), the push-down carries one."""
    if getattr(policy, "semijoin", None) is None or not getattr(policy, "active", False):
        return None
    for p in ordered:
        if not pipes.reads_once(p) and (not Path(p).is_file() or input_kind(p) != "audit"):
            return None
    return lambda kind, gz: kind == "audit"


def _read_prepared(
    ordered: list[str],
    flavor: str,
    host: HostInfo | None,
    keep: Any,
    pushdown: Any,
    stats: dict[str, Any],
    policy: Any,
) -> Iterator[Any]:
    mode = _semijoin_mode(ordered, policy)
    if mode is None and getattr(policy, "semijoin", None) is not None:
        policy.semijoin = None  # type: ignore[union-attr]
    if mode == "count":
        _census(ordered, flavor, host if host is not None else HostInfo.detect(), policy, stats)
    if mode != "hold":
        yield from _read_all(ordered, flavor, host, keep, pushdown, stats, None)
        return
    from auditeql.rules.pushdown import held_items

    semijoin = policy.semijoin  # type: ignore[union-attr]
    note = semijoin.note_document
    items: list[Any] = []
    for item in _read_all(ordered, flavor, host, keep, pushdown, stats, "hold"):
        if item.__class__ is dict:
            note(item)
        items.append(item)
    semijoin.finish()
    _semijoin_stats(semijoin, stats)
    yield from held_items(items, semijoin)


def _read_all(
    ordered: list[str],
    flavor: str,
    host: HostInfo | None,
    keep: Any,
    pushdown: Any,
    stats: dict[str, Any],
    census: str | None,
) -> Iterator[Any]:
    normalizer: Normalizer | None = None
    feeder: Any = None
    stats["files"] = []
    for path in ordered:
        if pipes.registered(path):
            try:
                kind = pipes.kind(path)[0]
            except OSError as exc:
                raise InputError(f"{pipes.display_name(path)}: cannot read: {exc.strerror or exc}") from None
            if kind == "ndjson":  # the NDJSON reader takes the stream as it takes a file
                stats["files"].append({"path": pipes.display(path), "kind": kind})
                yield from _read_ndjson_file(path, stats)
                continue
        stream = _open(path)
        try:
            kind, first = _sniff(stream)
            stats["files"].append({"path": pipes.display(path), "kind": kind})
            if kind == "ndjson":
                if path != "-":
                    stream.close()
                    yield from _read_ndjson_file(path, stats)
                else:
                    yield from _ndjson_lines(_chain(first, stream), stats)
            elif kind == "audit":
                if normalizer is None:
                    policy = keep if keep is not None else pushdown
                    make_feeder = getattr(policy, "line_feeder", None)
                    if make_feeder is not None and getattr(policy, "active", True):
                        # the rules' push-down skips events at their SYSCALL line, before parsing
                        normalizer = Normalizer(flavor, host if host is not None else HostInfo.detect(), policy.normalizer_keep)
                        feeder = make_feeder(normalizer, census=census) if census else make_feeder(normalizer)
                    else:
                        normalizer = Normalizer(flavor, host if host is not None else HostInfo.detect(), keep, pushdown=pushdown)
                if feeder is not None:
                    yield from feeder.feed_lines(first)
                    yield from feeder.feed_chunks(_chunks(stream))
                else:
                    feed = normalizer.feed_line
                    for line in _chain(first, stream):
                        docs = feed(line)
                        if docs:
                            yield from docs
                stats.update(normalizer.stats)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            stats.setdefault("file_errors", []).append(f"{pipes.display_name(path)}: {exc}")
        finally:
            if path != "-":
                stream.close()
    if normalizer is not None:
        yield from (feeder.flush() if feeder is not None else normalizer.flush())
        stats.update(normalizer.stats)
        if feeder is not None:
            stats["pushdown_skipped_events"] = feeder.skipped_events
