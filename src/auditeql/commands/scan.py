"""`auditeql scan`: run detection rules over recorded data, as Kibana's scheduler would have.

Inputs are raw audit logs (plain, .gz, rotated sets, globs, ``-`` for stdin) or ECS NDJSON
exports, auto-detected by :func:`auditeql.sources.files.read_documents`. Rules: the built-ins
plus ``--rule``/``--rules-dir``. Alerts go to stdout (table or NDJSON) and to the alert store.
Exit status: 0 no alerts, 1 alerts, 2 usage or input error.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import click

from auditeql.rules.pushdown import Deferred as _Deferred
from auditeql.rules.replay import ENGINES

EXIT_NO_ALERTS, EXIT_ALERTS, EXIT_ERROR = 0, 1, 2


def _fail(message: str) -> None:
    click.echo(f"auditeql scan: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _warn(message: str) -> None:
    click.echo(f"auditeql scan: warning: {message}", err=True)


@click.command("scan")
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option("--rule", "rule_files", multiple=True, metavar="FILE", help="A detection-rules TOML file (repeatable).")
@click.option("--rules-dir", "rule_dirs", multiple=True, metavar="DIR", help="A folder of TOML rules, searched recursively (repeatable).")
@click.option("--no-builtin", is_flag=True, help="Do not run the built-in rules.")
@click.option("--all-builtin", is_flag=True, help="Also run auditeql's own built-in rules (maturity development), which catch UDP shells the Elastic rule misses.")
@click.option("--format", "fmt", type=click.Choice(["table", "ndjson"]), default="table", show_default=True, help="table: one row per alert group; ndjson: the Kibana alert documents.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), metavar="FILE", help="Write alerts here instead of stdout.")
@click.option("--store", "store_path", metavar="PATH", help="Alert store (SQLite). Default: $XDG_STATE_HOME/auditeql/alerts.db.")
@click.option("--no-store", is_flag=True, help="Do not keep alerts in the store.")
@click.option("--flavor", type=click.Choice(["auditd-manager", "auditbeat"]), default="auditd-manager", show_default=True, help="ECS shape for raw audit logs.")
@click.option("--host-id", metavar="ID", help="host.id of the machine the data comes from (raw logs: default /etc/machine-id; ECS exports: filled in where missing, with host.os.type linux).")
@click.option("--host-name", metavar="NAME", help="host.name of the machine the data comes from (filled in where missing).")
@click.option("--engine", default="python", show_default=True, metavar="NAME", help=f"Evaluation engine: {', '.join(sorted(ENGINES))} (more with the scale extras).")
@click.option("--quiet", "-q", is_flag=True, help="No summary or progress on stderr (warnings still shown).")
@click.option("--no-pushdown", is_flag=True, help="Build every event's document even when no rule can match it (for comparison; same alerts, slower).")
def scan(
    paths: tuple[str, ...],
    rule_files: tuple[str, ...],
    rule_dirs: tuple[str, ...],
    no_builtin: bool,
    all_builtin: bool,
    fmt: str,
    output: str | None,
    store_path: str | None,
    no_store: bool,
    flavor: str,
    host_id: str | None,
    host_name: str | None,
    engine: str,
    quiet: bool,
    no_pushdown: bool = False,
) -> None:
    """Run detection rules over audit logs or ECS NDJSON, replaying Kibana's schedule.

    PATH may be a raw audit.log (plain or .gz, a rotated set in any order, a glob) or an ECS
    NDJSON export (Auditbeat / Auditd Manager); "-" reads stdin; named pipes and <(zcat …) work too.
    """
    from auditeql.alerts.context import ProcessContext
    from auditeql.rules import LoadReport, RuleError, load_rules
    from auditeql.rules.replay import Replayer

    if not paths:
        if sys.stdin.isatty():
            _fail("give at least one PATH (an audit log, a glob, an ECS NDJSON file, or - for stdin)")
        paths = ("-",)
    if no_builtin and all_builtin:
        _fail("--no-builtin and --all-builtin exclude each other")
    if store_path and no_store:
        _fail("--store and --no-store exclude each other")
    if engine not in ENGINES:
        _load_engine_plugins()
    if engine not in ENGINES:
        _fail(f"unknown engine {engine!r}; choose one of {', '.join(sorted(ENGINES))}")

    report = LoadReport()
    try:
        rules = load_rules(rule_files, rule_dirs, builtin=False if no_builtin else ("all" if all_builtin else True), report=report)
    except RuleError as exc:
        _fail(str(exc))
    for err in report.errors:
        _warn(f"rule skipped: {err}")
    if report.unsupported:
        _warn(f"{len(report.unsupported)} rule file(s) of types auditeql cannot run were skipped (only type = \"eql\")")
    for w in (w for r in rules for w in r.warnings):
        _warn(w)
    if not rules:
        _fail("no rules to run; add --rule FILE or --rules-dir DIR, or drop --no-builtin")

    context = ProcessContext(max_pids=1_000_000)
    replayer = Replayer(rules, engine=engine, context=context)
    filler = _HostFiller(host_id, host_name)
    stats: dict[str, Any] = {}
    # Documents and skipped-event stand-ins are acyclic and freed by reference counting; a scan
    # keeps hundreds of thousands of them alive (candidates for the replay, process context), which
    # the cycle collector would only re-scan over and over (~15% of a scan, measured).
    gc.disable()
    try:
        pushdown = None if no_pushdown else _pushdown(rules)
        docs = _read(paths, flavor, host_id, host_name, stats, pushdown)
        skipped_early = 0
        for doc in _progress(docs, quiet):
            if doc.__class__ is _Deferred:
                skipped_early += 1
                context.observe_deferred(doc)  # an event push-down skipped; see rules/pushdown.py
                continue
            replayer.feed(filler(_unwrap_hit(doc)))
    except _InputError as exc:
        _fail(str(exc))
    for err in stats.get("file_errors", []):
        _warn(f"input cut short: {err} (documents before the damage were used)")
    _report_skipped(stats)
    if filler.missing:
        _warn(
            f"{filler.missing} document(s) have no host.id or host.os.type (exports without host metadata, "
            "like Auditbeat's without add_host_metadata); rules that test them, as the built-in one does, "
            "cannot match them. Pass --host-id ID to fill them in."
        )
    result = replayer.finish()
    gc.enable()
    for w in result.warnings:
        _warn(w)

    new = None
    if not no_store and result.alerts:
        from auditeql.alerts.store import AlertStore, StoreError

        try:
            with AlertStore(store_path) as store:
                new = store.add(result.alerts)
                where = store.path
        except StoreError as exc:
            # detection comes first: the alerts still go to the output below (issue 9)
            click.echo(f"auditeql scan: error: {exc}; the alerts below were NOT stored", err=True)
    _emit(result.alerts, fmt, output)
    if not quiet:
        groups = sum(1 for a in result.alerts if a.get("kibana.alert.group.id") in (None, a["kibana.alert.uuid"]))
        stored = f"; {new} new in {where}" if new is not None else ""
        click.echo(
            f"scanned {result.documents + skipped_early} events"
            + (f" ({skipped_early} that no rule can use skipped early)" if skipped_early else "")
            + f" with {len(rules)} rule(s): {result.scheduled_runs} scheduled runs "
            f"({len(result.runs)} evaluated), {groups} alert group(s), {len(result.alerts)} alert document(s){stored}",
            err=True,
        )
    sys.exit(EXIT_ALERTS if result.alerts else EXIT_NO_ALERTS)


class _InputError(Exception):
    pass


def _report_skipped(stats: Mapping[str, Any]) -> None:
    """Say what was not used (bad lines), so nothing is dropped silently."""
    skipped = stats.get("skipped")
    if isinstance(skipped, Mapping):
        total = sum(int(v) for v in skipped.values() if isinstance(v, int))
        if total:
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items()) if v)
            _warn(f"{total} audit line(s) skipped ({detail})")
    if stats.get("ndjson_skipped"):
        _warn(f"{stats['ndjson_skipped']} NDJSON line(s) were not JSON objects and were skipped")


def _load_engine_plugins() -> None:
    """Let the scale back ends register their engines (they add entries to ENGINES on import)."""
    import importlib

    for name in ("auditeql.scale.duckdb", "auditeql.scale.spark"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _any_parquet(paths: Iterable[str]) -> bool:
    import os

    for p in paths:
        if p != "-" and os.path.isfile(p):
            with open(p, "rb") as fh:
                if fh.read(4) == b"PAR1":
                    return True
    return False


def _read(
    paths: Iterable[str], flavor: str, host_id: str | None, host_name: str | None, stats: dict[str, Any],
    pushdown: Any = None,
) -> Iterator[Mapping[str, Any]]:
    from auditeql.audit.host import HostInfo
    from auditeql.sources.files import InputError, read_documents

    try:
        host = HostInfo.detect(host_id=host_id, host_name=host_name)
        if _any_parquet(paths):  # auditeql Parquet files (`auditeql convert`): read by the scale layer
            from auditeql.scale.inputs import read_any

            yield from read_any(list(paths), flavor=flavor, host=host, pushdown=pushdown, stats=stats)
            return
        yield from read_documents(list(paths), flavor=flavor, host=host, pushdown=pushdown, stats=stats)
    except InputError as exc:
        raise _InputError(f"{exc}") from None
    except FileNotFoundError as exc:
        raise _InputError(f"no such file: {exc.filename or exc}; check the PATH") from None
    except IsADirectoryError as exc:
        raise _InputError(f"{exc.filename or exc} is a directory; give the log files (or a glob like DIR/audit.log*)") from None
    except PermissionError as exc:
        raise _InputError(f"cannot read {exc.filename or exc}: permission denied (audit logs are usually root-only)") from None
    except OSError as exc:
        raise _InputError(f"cannot read input: {exc}") from None


def _pushdown(rules: Any) -> Any:
    """The rules' push-down, deferring skipped events so process ancestry still sees every exec."""
    from auditeql.rules.pushdown import PushDown

    pd = PushDown.from_rules(rules, defer=True, semijoin=True)
    return pd if pd.active else None


def _unwrap_hit(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """An Elasticsearch hit (``{"_index", "_id", "_source"}``, as exports of a search give) -> its source.

    ``_id`` and ``_index`` are kept beside the fields: alert ids are built from them, as Kibana does.
    """
    src = doc.get("_source")
    if src.__class__ is not dict or ("_id" not in doc and "_index" not in doc):
        return doc
    out = dict(src)
    for key in ("_id", "_index"):
        if key in doc:
            out[key] = doc[key]
    return out


class _HostFiller:
    """Fill ``host.id``/``host.name``/``host.os.type`` in documents that lack them (ECS exports)."""

    def __init__(self, host_id: str | None, host_name: str | None) -> None:
        self.host_id = host_id
        self.host_name = host_name
        self.missing = 0

    def __call__(self, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        from auditeql.fields import first

        has_id = first(doc, "host.id") is not None
        has_os = first(doc, "host.os.type") is not None
        if has_id and has_os and (self.host_name is None or first(doc, "host.name") is not None):
            return doc
        if self.host_id is None:
            if not (has_id and has_os):
                self.missing += 1
            return doc
        out = dict(doc)
        host = out.get("host")
        host = dict(host) if isinstance(host, Mapping) else {}
        if not has_id:
            host["id"] = self.host_id
        if not has_os:
            os_ = dict(host.get("os") or {}) if isinstance(host.get("os"), Mapping) else {}
            os_["type"] = "linux"
            host["os"] = os_
        if self.host_name is not None and first(doc, "host.name") is None:
            host["name"] = self.host_name
        out["host"] = host
        return out


def _progress(docs: Iterable[Mapping[str, Any]], quiet: bool) -> Iterable[Mapping[str, Any]]:
    """Pass documents through, showing a live count on stderr when it is a terminal."""
    if quiet or not sys.stderr.isatty():
        return docs  # (no generator layer: this runs once per event)
    return _counting(docs)


def _counting(docs: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("scanning: {task.completed:,} documents"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("scan", total=None)
        n = 0
        for doc in docs:
            n += 1
            if n % 2048 == 0:
                progress.update(task, completed=n)
            yield doc


def _emit(alerts: list[dict[str, Any]], fmt: str, output: str | None) -> None:
    from auditeql.alerts.sinks import write_ndjson, write_table

    try:
        if fmt == "ndjson":
            if output:
                with open(output, "wb") as fh:
                    write_ndjson(alerts, fh)
            else:
                write_ndjson(alerts, sys.stdout.buffer)
                sys.stdout.flush()
        elif output:
            with open(output, "w", encoding="utf-8") as fh:
                write_table(alerts, fh)
        else:
            write_table(alerts, sys.stdout)
    except BrokenPipeError:
        # the reader went away (`| head`): not an error of ours; keep the exit status meaningful
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as exc:
        _fail(f"cannot write alerts to {output or 'stdout'}: {exc}")
