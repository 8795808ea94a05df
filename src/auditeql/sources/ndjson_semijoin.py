"""A ``sample``'s join-key semi-join over NDJSON files, in ONE read of the input (``auditeql query``).

Why: a sample only has a result for a join key under which every filter has a match. When some
filters are rare (the seed rule's ``socket`` of ``SOCK_DGRAM`` and egress ``connect``: a few
percent of lines) and another is common (a shell's ``execve``: a fifth of them), the rare
filters' keys bound the whole answer, and most common-filter documents need never be parsed.

How (one Hyperscan scan per 4 MiB block, :mod:`auditeql.sources.ndjson_classify`): every line of the input is
put in one of three classes from its raw bytes —

* **R**: it holds a term of a rare filter (or an escape that could spell one, or it is in a
  block with a line that does not end in ``}``, which the single pass reads line by line, so
  that damage is reported): parsed at once, evaluated against every filter, kept when it
  matches one; its keys go to the
  :class:`~auditeql.engine.semijoin.KeyCollector`;
* **C**: it holds a term of a common filter only: not parsed, but kept aside as raw bytes (up
  to :data:`HOLD_BYTES`; beyond, only its file position);
* neither: it cannot match any filter and is passed over.

A line is a candidate of a filter when it holds a term of each of the term groups chosen for it
(``CompiledFilter.line_groups``: each group is a necessary condition). After the read, the keys
that every rare filter produced are known; of the C lines (read back with ``pread`` where only
their position was kept) only those whose raw text can hold one of those keys
(:mod:`auditeql.sources.keyscan`) are parsed. The engine receives, in input order, every kept R
document and every parsed C document: a superset of the documents of every complete key, so the
samples are exactly those of the plain single pass (``--semijoin off``).

Positions are byte offsets, not line numbers (counting lines costs as much as scanning them);
the few messages about bad lines get their line number at the end, from one count over the
file. Messages come out once each, in input order, as the single pass gives them. Only
uncompressed regular files are read this way (they can be read back); anything else takes the
single pass.

Large inputs are shared with one forked helper process when a second CPU is free (``--jobs``):
it classifies the second half of the blocks exactly as above and sends back its kept R lines,
its rare-filter keys and its messages; given the final keys, it sends its C lines that can hold
one. Each block is classified by exactly one process, on the single pass's block grid, so the
answer and the messages are the same; if the helper fails, this process does its share itself.
"""

from __future__ import annotations

import os
import pickle
import stat
import sys
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from operator import sub
from typing import Any

import orjson

from auditeql.engine.semijoin import (
    KeyCollector,
    key_components,
    split_filters,
    useful_components,
)
from auditeql.eql.plan import SamplePlan

from . import ndjson
from .keyscan import key_scanner
from .linescan import _hs
from .ndjson import NdjsonStats, stderr_reporter
from .ndjson_classify import _C, _R, PROBE_BYTES, LineClassifier, choose_groups

#: Sort positions of messages about a whole file: before its lines (cannot open) / after them.
_BEFORE, _AFTER = -1, sys.maxsize
#: Remembered C lines are read back in spans of about this many bytes.
SPAN_BYTES = 4 << 20
#: C lines are held in memory up to this many bytes in all; beyond, only their positions.
HOLD_BYTES = 128 << 20

Doc = dict[str, Any]


# -- which inputs ---------------------------------------------------------------------------------


def plain_ndjson(path: str) -> bool:
    """A regular, uncompressed file whose first non-blank byte is ``{`` (surely NDJSON).

    A cheap check that spares loading the audit-log pipeline; anything else is decided by
    ``auditeql.sources.files.input_kind``.
    """
    if path == "-":
        return False
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False  # a pipe (`<(zcat …)`) must not lose its first bytes to a peek
        with open(path, "rb") as fh:
            head = fh.read(4096)
            if head.lstrip()[:1] != b"{":
                return False
            # (a raw audit log under a garbage `{` line is not NDJSON: the shared rule decides)
            from auditeql.sources.sniff import kind_of

            more = fh.read(1 << 16)
            return kind_of(head + more, eof=len(head) < 4096 or len(more) < 1 << 16) == "ndjson"
    except OSError:
        return False


def _readable_back(paths: Sequence[str]) -> bool:
    """Every input is an uncompressed regular file of NDJSON (not stdin, a pipe, gzip or audit.log)."""
    unsure = []
    for p in paths:
        if p == "-":
            return False
        try:
            if not stat.S_ISREG(os.stat(p).st_mode):
                return False
            with open(p, "rb") as fh:
                if fh.read(2) == b"\x1f\x8b":
                    return False
        except OSError:
            continue  # unreadable: reported once, in input order, by the read
        if not plain_ndjson(p):
            unsure.append(p)
    if not unsure:
        return True
    from auditeql.sources.files import input_kind

    return all(input_kind(p) != "audit" for p in unsure)


def _head_block(path: str) -> bytes:
    """The first bytes of ``path``, to measure how common each filter's lines are."""
    try:
        with open(path, "rb") as fh:
            return fh.read(PROBE_BYTES)
    except OSError:
        return b""


# -- the semi-join ------------------------------------------------------------------------------------


def semijoin_source(
    plan: SamplePlan,
    paths: list[str],
    stats: NdjsonStats,
    mode: str = "auto",
    run_stats: dict | None = None,
    report: Callable[[str], None] = stderr_reporter,
    jobs: int | None = None,
) -> Iterator[tuple[Doc, bytes, int | None]] | None:
    """``(document, raw line, filter bits or None = not evaluated)`` for a sample; ``None``: read it in one plain pass.

    Applies to uncompressed regular NDJSON files when the first block shows some filters rare and
    others common (``mode="force"``: whenever there are two filters or more, the most common one
    deferred). See the module docstring for why the answer is exactly the single pass's.
    ``jobs``: processes that read (1, or 2 = a helper reads the second half of a large input);
    ``None``: 2 when a second CPU is free (:func:`_cpus`).
    """
    if _hs is None or len(plan.filters) < 2 or not _readable_back(paths):
        return None
    head = b""
    for p in paths:  # the first file that has lines
        head = _head_block(p)
        if b"\n" in head:
            break
    measured = choose_groups([f.line_groups for f in plan.filters], head)
    if measured is None:
        return None
    chosen, shares = measured
    if mode == "force":
        top = max(range(len(shares)), key=lambda i: shares[i])
        split: tuple[list[int], list[int]] | None = ([i for i in range(len(shares)) if i != top], [top])
    else:
        split = split_filters(shares)
    if split is None:
        return None
    rare, common = split
    try:
        classifier = LineClassifier([chosen[i] for i in rare], [chosen[i] for i in common])
    except Exception:  # noqa: BLE001 - a pattern Hyperscan refuses: read in one plain pass
        return None
    if run_stats is not None:
        run_stats["semijoin"] = {"rare": rare, "common": common, "shares": shares}
    return _one_read(plan, paths, stats, rare, common, classifier, run_stats, report, jobs)


class _Reports:
    """Messages with their positions; printed sorted at the end, line numbers filled in then."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = paths
        self.items: list[tuple[int, int, int, Any]] = []  # (file, position, seq, message or bad line)

    def whole_file(self, fi: int, pos: int, message: str) -> None:
        self.items.append((fi, pos, len(self.items), message))

    def bad_line(self, fi: int, offset: int, line: bytes) -> None:
        self.items.append((fi, offset, len(self.items), line))

    def take(self, items: Sequence[tuple[int, int, int, Any]]) -> None:
        """Another process's messages (placed after this one's at the same position)."""
        seq = len(self.items) + (1 << 40)
        self.items.extend((fi, pos, seq + k, what) for k, (fi, pos, _s, what) in enumerate(items))

    def emit(self, report: Callable[[str], None]) -> None:
        from .ndjson import parse_line

        self.items.sort(key=lambda x: x[:3])
        wanted: dict[int, list[int]] = {}
        for fi, pos, _seq, what in self.items:
            if isinstance(what, bytes):
                wanted.setdefault(fi, []).append(pos)
        numbers = {fi: line_numbers(self.paths[fi], offs) for fi, offs in wanted.items()}
        for fi, pos, _seq, what in self.items:
            if isinstance(what, bytes):
                parse_line(self.paths[fi], numbers[fi][pos], what, report)  # says why it is not usable
            else:
                report(what)


def line_numbers(path: str, offsets: Sequence[int]) -> dict[int, int]:
    """The 1-based line number of each byte offset (a line start) of ``path``, by one count of newlines."""
    out: dict[int, int] = {}
    todo = sorted(set(offsets))
    k = 0
    base = 0  # file offset of ``block[0]``
    lines = 0  # newlines before ``base``
    try:
        with open(path, "rb") as fh:
            while k < len(todo):
                block = fh.read(SPAN_BYTES)
                if not block:
                    break
                end = base + len(block)
                prev = 0
                while k < len(todo) and todo[k] < end:
                    rel = todo[k] - base
                    lines += block.count(b"\n", prev, rel)
                    prev = rel
                    out[todo[k]] = lines + 1
                    k += 1
                lines += block.count(b"\n", prev)
                base = end
    except OSError:
        pass
    for off in todo[k:]:  # the file changed under us: no better number to give
        out[off] = lines + 1
    return out


class _Deferred:
    """The C lines, in input order, in batches of one block's lines joined into one text (so that the
    key condition scans them in one call); held in memory up to :data:`HOLD_BYTES`, then as
    positions only (read back with ``pread``)."""

    def __init__(self) -> None:
        #: (file, file offsets, lengths, the lines joined or None)
        self.batches: list[tuple[int, list[int], list[int], bytes | None]] = []
        self.count = 0
        self.room = HOLD_BYTES

    def add(self, fi: int, off: int, line: bytes) -> None:
        """One line (a line across two blocks)."""
        held = self.room >= len(line)
        if held:
            self.room -= len(line)
        self.batches.append((fi, [off], [len(line)], line if held else None))
        self.count += 1

    def add_block(self, fi: int, base: int, block: bytes, starts: list[int]) -> None:
        """The lines of ``block`` starting at ``starts`` (sorted; each ends at its newline)."""
        ends = list(map((1).__add__, map(block.find, repeat(b"\n"), starts)))
        lens = list(map(sub, ends, starts))
        size = sum(lens)
        text = None
        if self.room >= size:
            text = b"".join(map(memoryview(block).__getitem__, map(slice, starts, ends)))
            self.room -= size
        self.batches.append((fi, list(map(base.__add__, starts)), lens, text))
        self.count += len(starts)

    def __len__(self) -> int:
        return self.count


class _Part:
    """What one process gathers from its share of the input: kept R documents, the keys of the rare
    filters' matches, the C lines, messages and counters."""

    def __init__(self, plan: SamplePlan, paths: Sequence[str], rare: list[int], classifier: LineClassifier,
                 stats: NdjsonStats) -> None:
        self.paths = paths
        self.classifier = classifier
        self.items = tuple((1 << i, f.predicate) for i, f in enumerate(plan.filters))
        self.collector = KeyCollector(plan.filters, rare)
        #: R documents that match a filter: (file, offset, document, line, bits), in input order
        self.kept: list[tuple[int, int, Doc, bytes, int]] = []
        self.deferred = _Deferred()
        self.reports = _Reports(paths)
        self.stats = stats

    def take(self, fi: int, off: int, line: bytes) -> None:
        """Parse an R line; keep its document when it matches a filter."""
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            doc = None
        if doc.__class__ is not dict:
            self.stats.bad_lines += 1
            self.reports.bad_line(fi, off, line)
            return
        self.stats.documents += 1
        bits = 0
        for bit, p in self.items:
            if p(doc):
                bits |= bit
        if bits:
            self.collector.add(doc, bits)
            self.kept.append((fi, off, doc, line, bits))

    def read(self, ranges: Sequence[tuple[int, int, int | None]]) -> None:
        for fi, first, stop in ranges:
            _read_file(fi, self.paths[fi], self.classifier, self.take, self.deferred, self.reports, self.stats,
                       first, stop)


def _key_condition(keys: set[tuple], plan: SamplePlan, common: list[int]) -> Any:
    """The raw-text test for lines that can hold one of ``keys`` (``None``: none can be searched)."""
    wanted = useful_components(key_components(keys, plan.filters, common))
    return key_scanner(wanted) if wanted else None


def _one_read(
    plan: SamplePlan,
    paths: list[str],
    stats: NdjsonStats,
    rare: list[int],
    common: list[int],
    classifier: LineClassifier,
    run_stats: dict | None,
    report: Callable[[str], None],
    jobs: int | None = None,
) -> Iterator[tuple[Doc, bytes, int | None]]:
    mine, theirs = split_ranges(paths, jobs)
    part = _Part(plan, paths, rare, classifier, stats)
    helper = _Helper.start(plan, paths, rare, common, classifier, theirs) if theirs else None
    try:
        part.read(mine)
        kept = part.kept
        if helper is not None:
            got = helper.first_half()
            if got is None:  # the helper failed: read its share here
                helper = None
                part.read(theirs)
            else:
                hkept, sets, items, counts = got
                part.collector.merge(sets)
                kept = kept + [(fi, off, orjson.loads(line), line, bits) for fi, off, line, bits in hkept]
                part.reports.take(items)
                stats.documents += counts[0]
                stats.bad_lines += counts[1]
                stats.bad_files += counts[2]
        elif theirs:
            part.read(theirs)
        keys = part.collector.keys()
        deferred_n = len(part.deferred) + (helper.deferred if helper is not None else 0)
        if run_stats is not None:
            run_stats["semijoin"]["keys"] = len(keys)
            run_stats["semijoin"]["deferred"] = deferred_n
            run_stats["semijoin"]["parallel"] = helper is not None
        lines: list[tuple[int, int, bytes]] = []
        # (no key has a match of every rare filter: no sample can exist, the C lines are not needed)
        if keys and deferred_n:
            if helper is not None:
                helper.send_keys(keys)
            ks = _key_condition(keys, plan, common)
            if run_stats is not None:
                run_stats["semijoin"]["key_condition"] = ks is not None
            lines = list(_key_lines(paths, part.deferred, ks))
            if helper is not None:
                more = helper.second_half()
                if more is None:  # the helper failed: gather its share's C lines here
                    again = _Part(plan, paths, rare, classifier, NdjsonStats())
                    again.take = lambda fi, off, line: None  # type: ignore[method-assign]
                    again.read(theirs)
                    more = list(_key_lines(paths, again.deferred, ks))
                lines += more
        elif helper is not None:
            helper.send_keys(None)
        # merge, in input order: the kept R documents and the C lines' documents
        i = 0
        n = len(kept)
        loads = orjson.loads
        for fi, off, line in lines:
            try:
                doc = loads(line)
            except orjson.JSONDecodeError:
                doc = None
            if doc.__class__ is not dict:
                stats.bad_lines += 1
                part.reports.bad_line(fi, off, line)
                continue
            stats.documents += 1
            while i < n and kept[i][:2] < (fi, off):
                yield kept[i][2:]
                i += 1
            yield doc, line, None
        for k in range(i, n):
            yield kept[k][2:]
    finally:
        if helper is not None:
            helper.close()
        part.reports.emit(report)


# -- a helper process for the second half of the input --------------------------------------------

#: Inputs of at least this many bytes are shared with a helper process (when a second CPU is there).
PARALLEL_MIN_BYTES = 32 << 20


def _cpus() -> int:
    """CPUs this process may run on that are not all busy already (1 when the 1-minute load
    average is at least the number of CPUs).

    A helper pays when it gets a CPU of its own. On a 2-CPU machine whose CPUs were both busy
    (load 3-5), it cost 5-20% more CPU time in all and the wall-clock time was no better
    (paired runs, either way about as often), so it is not started then.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cpus
    return cpus if load < cpus else 1


def split_ranges(
    paths: Sequence[str], jobs: int | None = None
) -> tuple[list[tuple[int, int, int | None]], list[tuple[int, int, int | None]]]:
    """``(mine, theirs)``: ``(file, first block, end block or None)`` ranges, in input order, theirs after mine.

    Blocks are the single pass's :data:`~auditeql.sources.ndjson.CHUNK_BYTES` blocks, so each
    process classifies exactly the blocks the single pass would (a line across the cut belongs to
    the range it starts in). ``theirs`` is empty for small inputs, one CPU or ``jobs=1``, or no ``fork``.
    """
    whole = [(fi, 0, None) for fi in range(len(paths))]
    if not hasattr(os, "fork") or (jobs if jobs is not None else _cpus()) < 2:
        return whole, []
    chunk = ndjson.CHUNK_BYTES
    blocks: list[int] = []
    for p in paths:
        try:
            blocks.append(-(-os.stat(p).st_size // chunk))
        except OSError:
            blocks.append(0)
    total = sum(blocks)
    if total < 2 or total * chunk < PARALLEL_MIN_BYTES:
        return whole, []
    half = total // 2
    mine: list[tuple[int, int, int | None]] = []
    theirs: list[tuple[int, int, int | None]] = []
    seen = 0
    for fi, nb in enumerate(blocks):
        if seen + nb <= half:
            mine.append((fi, 0, None))
        elif seen >= half:
            theirs.append((fi, 0, None))
        else:
            cut = half - seen
            mine.append((fi, 0, cut))
            theirs.append((fi, cut, None))
        seen += nb
    return mine, theirs


def _send(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(8, "little") + data)
    while view:
        view = view[os.write(fd, view):]


def _recv(fd: int) -> Any:
    head = _read_exactly(fd, 8)
    return pickle.loads(_read_exactly(fd, int.from_bytes(head, "little")))


def _read_exactly(fd: int, n: int) -> bytes:
    parts = []
    while n:
        b = os.read(fd, min(n, 1 << 24))
        if not b:
            raise EOFError("the helper process went away")
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


class _Helper:
    """A forked process that reads the second half of the input exactly as :func:`_one_read` reads the
    first: it sends back its kept R lines, its rare-filter keys and messages, then, given the final
    keys, its C lines that can hold one. Any failure makes the caller do that share itself."""

    def __init__(self, pid: int, rfd: int, wfd: int) -> None:
        self.pid = pid
        self.rfd = rfd
        self.wfd = wfd
        self.deferred = 0

    @classmethod
    def start(
        cls,
        plan: SamplePlan,
        paths: Sequence[str],
        rare: list[int],
        common: list[int],
        classifier: LineClassifier,
        theirs: list[tuple[int, int, int | None]],
    ) -> _Helper | None:
        try:
            to_child = os.pipe()
            to_parent = os.pipe()
        except OSError:
            return None
        try:
            pid = os.fork()
        except OSError:
            for fd in (*to_child, *to_parent):
                os.close(fd)
            return None
        if pid == 0:  # the helper: never returns
            code = 0
            try:
                os.close(to_child[1])
                os.close(to_parent[0])
                _helper_main(plan, paths, rare, common, classifier, theirs, to_child[0], to_parent[1])
            except BaseException:  # noqa: BLE001 - whatever happens, the parent does the work itself
                code = 1
            finally:
                os._exit(code)
        os.close(to_child[0])
        os.close(to_parent[1])
        return cls(pid, to_parent[0], to_child[1])

    def first_half(self) -> tuple[list, dict, list, tuple[int, int, int]] | None:
        try:
            msg = _recv(self.rfd)
        except Exception:  # noqa: BLE001 - a helper that died: do its share here
            self.close()
            return None
        if msg[0] != "ok":
            self.close()
            return None
        _ok, kept, sets, items, counts, self.deferred = msg
        return kept, sets, items, counts

    def send_keys(self, keys: set[tuple] | None) -> None:
        try:
            _send(self.wfd, keys)
        except OSError:
            pass  # second_half() notices

    def second_half(self) -> list[tuple[int, int, bytes]] | None:
        try:
            msg = _recv(self.rfd)
        except Exception:  # noqa: BLE001
            return None
        return msg[1] if msg[0] == "ok" else None

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.rfd = self.wfd = -1
        if self.pid:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = 0


def _helper_main(
    plan: SamplePlan,
    paths: Sequence[str],
    rare: list[int],
    common: list[int],
    classifier: LineClassifier,
    theirs: list[tuple[int, int, int | None]],
    rfd: int,
    wfd: int,
) -> None:
    stats = NdjsonStats()
    part = _Part(plan, paths, rare, classifier, stats)
    try:
        part.read(theirs)
    except Exception:  # noqa: BLE001
        _send(wfd, ("error",))
        return
    kept = [(fi, off, line, bits) for fi, off, _doc, line, bits in part.kept]
    counts = (stats.documents, stats.bad_lines, stats.bad_files)
    _send(wfd, ("ok", kept, part.collector.sets(), part.reports.items, counts, len(part.deferred)))
    keys = _recv(rfd)
    if not keys:
        return
    try:
        lines = list(_key_lines(paths, part.deferred, _key_condition(keys, plan, common)))
    except Exception:  # noqa: BLE001
        _send(wfd, ("error",))
        return
    _send(wfd, ("ok", lines))


def _read_file(
    fi: int,
    path: str,
    classifier: LineClassifier,
    take: Callable[[int, int, bytes], None],
    deferred: _Deferred,
    reports: _Reports,
    stats: NdjsonStats,
    first: int = 0,
    stop: int | None = None,
) -> None:
    """Classify every line of blocks ``[first, stop)`` of one file: R lines go to ``take``, C lines to ``deferred``.

    A line that starts in the range and ends after it is read to its end; one that starts before
    the range is left to the range before.
    """
    try:
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
    except OSError as exc:
        stats.bad_files += 1
        reports.whole_file(fi, _BEFORE, f"{ndjson._display(path)}: cannot read: {exc.strerror or exc}")
        return
    chunk = ndjson.CHUNK_BYTES
    base = first * chunk  # file offset of the current block's first byte
    carry = b""  # the start of a line that continues in the next block
    carry_at = base
    classify = classifier.classify
    skipping = False  # passing over the end of a line that started before the range
    # Whole blocks are read into one reused buffer: a fresh 4 MiB object per block costs more
    # (page faults) than the copy itself. Nothing refers to the buffer once a block is done:
    # lines that are kept are copied out.
    buf = bytearray(chunk)
    try:
        if first:
            fh.seek(base - 1)
            skipping = fh.read(1) != b"\n"
        k = first
        while True:
            if stop is not None and k >= stop and not carry and not skipping:
                break
            block, error = _fill(fh, buf)
            k += 1
            beyond = stop is not None and k > stop  # read only to finish a line
            if not block:
                if carry.strip():
                    take(fi, carry_at, bytes(carry) + b"\n")
                if error is not None:
                    stats.bad_files += 1
                    # the single pass's number: the lines read (the unfinished one too), plus one
                    n = line_numbers(path, [base])[base] + (1 if carry else 0)
                    reports.whole_file(fi, _AFTER, f"{ndjson._display(path)}:{n}: input ends early ({error}); the lines before were used")
                break
            first_nl = block.find(b"\n")
            if first_nl == -1:
                if not skipping:
                    if not carry:
                        carry_at = base
                    carry += bytes(block)
                base += len(block)
                continue
            if skipping:
                skipping = False
                begin = first_nl + 1
            elif carry:
                joined = bytes(carry) + block[: first_nl + 1]
                carry = b""
                cls = classifier.line_class(joined)
                if cls == _R:
                    take(fi, carry_at, joined)
                elif cls == _C:
                    deferred.add(fi, carry_at, joined)
                begin = first_nl + 1
            else:
                begin = 0
            if beyond:
                break
            cut = block.rfind(b"\n") + 1
            carry = bytes(block[cut:])
            carry_at = base + cut
            if begin < cut:
                r, c = classify(block, begin, cut)
                for s in r:
                    take(fi, base + s, bytes(block[s : block.find(b"\n", s) + 1]))
                if c:
                    deferred.add_block(fi, base, block, c)
            base += len(block)
    finally:
        fh.close()


def _fill(fh: Any, buf: bytearray) -> tuple[bytearray | bytes, BaseException | None]:
    """The next block, read into ``buf`` (a shorter last block is a copy); on a read error, what was
    read before it and the error (as ``ndjson._read_chunk``)."""
    view = memoryview(buf)
    got = 0
    error: BaseException | None = None
    try:
        while got < len(buf):
            n = fh.readinto(view[got:])
            if not n:
                break
            got += n
    except OSError as exc:
        error = exc
    finally:
        view.release()
    return (buf if got == len(buf) else bytes(buf[:got])), error


def _key_lines(paths: Sequence[str], deferred: _Deferred, ks: Any) -> Iterator[tuple[int, int, bytes]]:
    """``(file, offset, line)`` of the remembered C lines that can hold a wanted key (all without ``ks``), in order."""
    for fi, offs, lens, text in _batches(paths, deferred):
        starts: list[int] = []
        pos = 0
        for ln in lens:
            starts.append(pos)
            pos += ln
        if ks is not None:
            picked = sorted({bisect_left(starts, h) for h in ks.offsets(text, 0, len(text))})
        else:
            picked = range(len(starts))
        for idx in picked:
            s = starts[idx]
            line = text[s : s + lens[idx]]
            if line.endswith(b"\n") and b"\n" not in line[:-1]:  # else the file changed since it was read
                yield fi, offs[idx], line


def _batches(
    paths: Sequence[str], deferred: _Deferred
) -> Iterator[tuple[int, list[int], list[int], bytes]]:
    """The batches of :class:`_Deferred`, with the text of the ones not held read back from their file."""
    fds: dict[int, int] = {}
    try:
        for fi, offs, lens, text in deferred.batches:
            if text is None:
                if fi not in fds:
                    try:
                        fds[fi] = os.open(paths[fi], os.O_RDONLY)
                    except OSError:
                        fds[fi] = -1  # it could be read a moment ago: its lines are taken as changed
                start = offs[0]
                try:
                    span = os.pread(fds[fi], offs[-1] + lens[-1] - start, start) if fds[fi] >= 0 else b""
                except OSError:
                    span = b""
                view = memoryview(span)
                text = b"".join([view[o - start : o - start + ln] for o, ln in zip(offs, lens)])
            yield fi, offs, lens, text
    finally:
        for fd in fds.values():
            if fd >= 0:
                os.close(fd)
