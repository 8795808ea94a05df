"""``auditeql query QUERY [FILE…]``: run one EQL query over ECS NDJSON, print NDJSON results.

Output contract (issue 2): an event query prints each matching document exactly as it was read,
one per line, in result order (timestamp, tiebreaker, input order; then ``size``/``head``/``tail``);
a sample or sequence prints one line per result, ``{"join_keys": […], "events": [doc…]}``,
with ``{"missing": true}`` in a missing-event slot. An invalid query exits with code 2 and
prints ``line L:C: message`` on stderr and nothing on stdout.

Lines that no filter of the query can match are skipped before JSON parsing, using the
filters' required literals (exact, see ``auditeql.eql.plan.line_may_match``). A ``sample`` with
rare and common filters on NDJSON files takes a join-key semi-join
(:mod:`auditeql.sources.ndjson_semijoin`): the common filters' lines are parsed only where
they can hold a key the rare filters produced; the samples are the same.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import click
import orjson

from auditeql.eql import EqlError, compile_query
from auditeql.eql.plan import EventPlan, Plan, QueryOptions, SamplePlan, plan_filters
from auditeql.eql.prefilter import combine_line_filters
from auditeql.sources import pipes
from auditeql.sources.linescan import BlockScanner, block_scanner
from auditeql.sources.ndjson import NdjsonStats, read_ndjson_raw, stderr_reporter
from auditeql.sources.ndjson_semijoin import plain_ndjson as _plain_ndjson
from auditeql.sources.ndjson_semijoin import semijoin_source


def line_prefilter(plan: Plan) -> Callable[[bytes], bool] | None:
    """A cheap raw-line test that is false only for lines no filter of ``plan`` can match.

    (The NDJSON reader keeps it only while it costs less than the parsing it saves.)
    """
    return combine_line_filters([f.line_filter for f in plan_filters(plan)])


def line_needles(plan: Plan) -> tuple[bytes, ...] | None:
    """Strings one of which every line that can matter holds (``None`` = unknown)."""
    out: set[bytes] = set()
    for f in plan_filters(plan):
        if f.literals is None:
            return None
        out.update(lit.encode("utf-8") for lit in f.literals)
    return tuple(sorted(out))


def line_scanner(plan: Plan) -> BlockScanner | None:
    """A block scanner over every filter's term groups (``None``: Hyperscan missing or no terms)."""
    return block_scanner([f.line_groups for f in plan_filters(plan)])


def _readable_twice(path: str, stats: NdjsonStats) -> bool:
    """False (with a message) for a named pipe or device not registered by
    :func:`auditeql.sources.pipes.prepared` (the command registers every input): sniffing it before
    reading it would lose its first bytes. Stdin (``-``) is peeked instead."""
    if path == "-" or pipes.registered(path):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return True  # the reader reports it
    if stat.S_ISREG(mode):
        return True
    stats.bad_files += 1
    stderr_reporter(f"{path}: not a regular file (a pipe?); give it on standard input instead: … | auditeql query QUERY -")
    return False


def iter_input(
    paths: Iterable[str],
    may_match: Callable[[bytes], bool] | None,
    stats: NdjsonStats,
    needles: tuple[bytes, ...] | None = None,
    scanner: BlockScanner | None = None,
) -> Iterator[tuple[dict[str, Any], bytes | None]]:
    """``(document, raw line or None)`` from the inputs.

    The seam for other input kinds: raw audit logs will arrive through
    ``auditeql.sources.files.read_documents`` (which yields documents without a raw line, and
    are then printed re-serialised).
    """
    paths = [p for p in paths if _readable_twice(p, stats)]
    if not paths:
        return
    if all(_plain_ndjson(p) for p in paths):
        yield from read_ndjson_raw(
            paths, may_match=may_match, stats=stats, report=stderr_reporter, needles=needles, scanner=scanner
        )
        return
    from auditeql.sources.files import input_kind, read_documents

    kinds: dict[int, str] = {}

    def kind_of(i: int) -> str:
        if i not in kinds:
            kinds[i] = input_kind(paths[i])
        return kinds[i]

    # Raw audit logs (auto-detected) are normalized to Auditd Manager documents; consecutive raw
    # files share one normalizer so that a rotated set reads as one stream. A pipe's first bytes
    # are looked at only when its turn comes or a raw log before it needs to know (so pipes fed
    # one after the other by one writer are read in turn).
    i = 0
    while i < len(paths):
        raw = kind_of(i) == "audit"
        j = i + 1
        while j < len(paths) and (
            kind_of(j) == "audit" if raw else not pipes.registered(paths[j]) and kind_of(j) != "audit"
        ):
            j += 1
        if raw:
            audit_stats: dict[str, Any] = {}
            for doc in read_documents(paths[i:j], stats=audit_stats):
                yield doc, None
            skipped = audit_stats.get("skipped") or {}
            if skipped:
                detail = ", ".join(f"{reason} {n}" for reason, n in sorted(skipped.items()))
                stderr_reporter(f"{sum(skipped.values())} audit line(s) skipped ({detail})")
        else:
            yield from read_ndjson_raw(
                paths[i:j], may_match=may_match, stats=stats, report=stderr_reporter, needles=needles, scanner=scanner
            )
        i = j


def _top_keys(paths: list[str]) -> tuple[str, ...]:
    """Top-level keys through which ``auditeql.fields.values`` can reach these paths.

    For ``a.b.c`` it looks only at the top-level keys ``a``, ``a.b`` and ``a.b.c`` (nested or
    dotted spellings), so a document restricted to them gives the same values.
    """
    return tuple(sorted({".".join(p.split(".")[:j]) for p in paths for j in range(1, p.count(".") + 2)}))


def _always(doc: Any) -> bool:
    return True


def _default(value: Any) -> Any:
    inner = getattr(value, "value", None)
    if inner is not None or value.__class__.__name__ == "BoolKey":
        return inner
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _show_error(query: str, exc: EqlError) -> None:
    click.echo(f"auditeql: invalid query: {exc}", err=True)
    lines = query.split("\n")
    if 1 <= exc.line <= len(lines) and exc.column >= 1:
        text = lines[exc.line - 1]
        click.echo(f"  {text}", err=True)
        click.echo("  " + " " * (exc.column - 1) + "^", err=True)


@click.command("query")
@click.argument("query_text", metavar="QUERY")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--size", default=10, show_default=True, type=click.IntRange(min=0),
              help="Maximum number of results (Elasticsearch's request size).")
@click.option("--max-samples-per-key", default=1, show_default=True, type=click.IntRange(min=1),
              help="Samples per join key (sample queries).")
@click.option("--timestamp-field", default="@timestamp", show_default=True, help="Field ordering events in time.")
@click.option("--tiebreaker-field", default=None, help="Field ordering events that share a timestamp.")
@click.option("--event-category-field", default="event.category", show_default=True,
              help="Field holding the event category matched by `cat where`.")
@click.option("--jobs", default=None, type=click.IntRange(min=1, max=2),
              help="Processes reading a large NDJSON input for a sample (default: 2 when a second CPU is "
                   "free, by the 1-minute load average).")
@click.option("--semijoin", "semijoin", default="auto", hidden=True,
              type=click.Choice(["auto", "off", "force"]),
              help="Internal: the sample join-key semi-join (auto = when measured worthwhile).")
def query(
    query_text: str,
    files: tuple[str, ...],
    size: int,
    max_samples_per_key: int,
    timestamp_field: str,
    tiebreaker_field: str | None,
    event_category_field: str,
    jobs: int | None = None,
    semijoin: str = "auto",
) -> None:
    """Run an EQL QUERY (Elasticsearch dialect) over ECS NDJSON FILEs (.gz ok; none or - = stdin; pipes and <(…) ok)."""
    try:
        plan = compile_query(query_text, event_category_field=event_category_field)
    except EqlError as exc:
        _show_error(query_text, exc)
        sys.exit(2)
    options = QueryOptions(
        size=size,
        max_samples_per_key=max_samples_per_key,
        timestamp_field=timestamp_field,
        tiebreaker_field=tiebreaker_field,
        event_category_field=event_category_field,
    )
    paths = list(files) or ["-"]
    stats = NdjsonStats()
    run_stats: dict[str, Any] = {}
    prefilter = line_prefilter(plan)
    needles = line_needles(plan)
    # Documents are acyclic JSON trees freed by reference counting; the cycle collector would
    # only re-scan the retained matches over and over.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with pipes.prepared(paths, _spool_policy(plan, semijoin), stderr_reporter) as paths:
            _run(plan, paths, options, prefilter, needles, stats, run_stats, None, semijoin, jobs)
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly, like other Unix tools
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        sys.exit(0)
    finally:
        if gc_was_enabled:
            gc.enable()
    no_ts = run_stats.get("no_timestamp", 0)
    if no_ts and not isinstance(plan, SamplePlan):
        click.echo(
            f"auditeql: {no_ts} matching document(s) had no usable [{timestamp_field}] and were not placed in time "
            "(use --timestamp-field to choose another field)",
            err=True,
        )
    if stats.bad_lines:
        click.echo(f"auditeql: {stats.bad_lines} unreadable line(s) skipped (see messages above)", err=True)
    if stats.bad_files:
        sys.exit(1)


def _spool_policy(plan: Plan, semijoin: str) -> pipes.SpoolPolicy | None:
    """Copy a piped input when the sample semi-join can use it: plain (uncompressed) NDJSON, which
    it reads back by offset (:mod:`auditeql.sources.ndjson_semijoin`); everything else is read once
    as it comes. The results are the same either way."""
    if not isinstance(plan, SamplePlan) or len(plan.filters) < 2 or semijoin == "off":
        return None
    return lambda kind, gz: kind == "ndjson" and not gz


def _run(
    plan: Plan,
    paths: list[str],
    options: QueryOptions,
    prefilter: Callable[[bytes], bool] | None,
    needles: tuple[bytes, ...] | None,
    stats: NdjsonStats,
    run_stats: dict[str, Any],
    scanner: BlockScanner | None = None,
    semijoin: str = "auto",
    jobs: int | None = None,
) -> None:
    """Read, match and print: event documents as read, or sample/sequence records.

    ``scanner``: the single pass's block scanner; ``None``: built here when the single pass is taken
    (a sample's semi-join builds its own).
    """
    from auditeql.engine import run_batch

    def single_pass(paths: list[str]) -> Iterator[tuple[dict[str, Any], bytes | None]]:
        return iter_input(paths, prefilter, stats, needles, scanner if scanner is not None else line_scanner(plan))

    out = sys.stdout.buffer
    if isinstance(plan, EventPlan):
        pred = plan.filter.predicate
        raw_of: dict[int, bytes | None] = {}

        # Matches are printed from their raw lines, so the engine only needs what orders them:
        # it keeps a projection on the top-level keys that can reach the timestamp/tiebreaker
        # (see the sample branch below), not the whole document.
        wanted = [options.timestamp_field] + ([options.tiebreaker_field] if options.tiebreaker_field else [])
        tops = _top_keys(wanted)

        def matching() -> Iterator[dict[str, Any]]:
            for doc, line in single_pass(paths):
                if pred(doc):
                    if line is not None:
                        doc = {k: doc[k] for k in tops if k in doc}
                    raw_of[id(doc)] = line
                    yield doc

        # the documents handed over already match: don't let the engine evaluate them again
        checked = dataclasses.replace(plan, filter=dataclasses.replace(plan.filter, predicate=_always))
        docs = run_batch(checked, matching(), options, stats=run_stats)
        for doc in docs:
            line = raw_of.get(id(doc))
            out.write(line.rstrip(b"\r\n") + b"\n" if line is not None else orjson.dumps(doc) + b"\n")
    else:
        preds = [f.predicate for f in plan_filters(plan)]
        if isinstance(plan, SamplePlan):
            # Each filter is evaluated once per document here; the engine then reads the
            # answers back instead of evaluating the filters again. The table keeps every
            # handed-over document alive, so its id() stays unique for the whole run.
            # What the engine keeps is a projection: the top-level keys through which a join key,
            # the timestamp or the tiebreaker can be reached (fields.values only ever looks at
            # the prefixes "a", "a.b", … of a path "a.b.c" at the top), sharing their values,
            # plus the raw line; results are re-read from their lines. Holding every matching
            # document whole costs more than parsing it.
            verdicts: dict[int, tuple[int, dict[str, Any]]] = {}
            line_of: dict[int, bytes] = {}
            wanted = [k.path for f in plan.filters for k in f.keys] + [options.timestamp_field]
            if options.tiebreaker_field:
                wanted.append(options.tiebreaker_field)
            tops = _top_keys(wanted)

            # (document, raw line, filter bits or None = not evaluated yet)
            source: Iterator[tuple[dict[str, Any], bytes | None, int | None]] | None = None
            if semijoin != "off":
                source = semijoin_source(plan, paths, stats, semijoin, run_stats, jobs=jobs)
            if source is None:
                source = ((doc, line, None) for doc, line in single_pass(paths))

            def relevant() -> Iterator[dict[str, Any]]:
                for doc, line, bits in source:
                    if bits is None:
                        bits = 0
                        bit = 1
                        for p in preds:
                            if p(doc):
                                bits |= bit
                            bit <<= 1
                    if bits:
                        if line is not None:
                            doc = {k: doc[k] for k in tops if k in doc}
                            line_of[id(doc)] = line
                        verdicts[id(doc)] = (bits, doc)
                        yield doc

            def answer(bit: int) -> Callable[[Any], bool]:
                return lambda doc: verdicts[id(doc)][0] & bit != 0

            plan = dataclasses.replace(plan, filters=tuple(
                dataclasses.replace(f, predicate=answer(1 << i)) for i, f in enumerate(plan.filters)
            ))
        else:
            line_of = {}

            def relevant() -> Iterator[dict[str, Any]]:
                for doc, _line in single_pass(paths):
                    for p in preds:
                        if p(doc):
                            yield doc
                            break

        matches = run_batch(plan, relevant(), options, stats=run_stats)
        for m in matches:
            record = {
                "join_keys": list(m.join_keys),
                "events": [
                    {"missing": True} if ev is None else orjson.loads(line_of[id(ev)]) if id(ev) in line_of else ev
                    for ev in m.events
                ],
            }
            out.write(orjson.dumps(record, default=_default) + b"\n")
    out.flush()
