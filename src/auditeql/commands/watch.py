"""`auditeql watch`: detect live — from the kernel, a followed audit.log, auditd's dispatcher or stdin.

Only wiring lives here; the loop is :class:`auditeql.watch.runner.LiveRunner`, the inputs are in
:mod:`auditeql.watch.inputs`. Exit status: 0 after a clean stop (SIGTERM, SIGINT, end of
input), 2 for usage or setup errors (with a message saying what to do).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

EXIT_OK, EXIT_ERROR = 0, 2
#: Environment variable holding a webhook bearer token (kept out of argv and of logs).
TOKEN_ENV = "AUDITEQL_WEBHOOK_TOKEN"


def _fail(message: str) -> None:
    click.echo(f"auditeql watch: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _say(message: str) -> None:
    click.echo(f"auditeql watch: {message}", err=True)


@click.command("watch")
@click.option("--source", "-s", required=True, metavar="SRC",
              help="netlink | file:PATH | audisp | audisp:SOCKET | - (stdin: raw audit lines or ECS NDJSON).")
@click.option("--rule", "rule_files", multiple=True, metavar="FILE", help="A detection-rules TOML file (repeatable).")
@click.option("--rules-dir", "rule_dirs", multiple=True, metavar="DIR", help="A folder of TOML rules (repeatable).")
@click.option("--no-builtin", is_flag=True, help="Do not run the built-in rules.")
@click.option("--all-builtin", is_flag=True, help="Also run auditeql's own built-in rules (maturity development).")
@click.option("--format", "fmt", type=click.Choice(["table", "ndjson"]), default="table", show_default=True,
              help="table: one line per alert group; ndjson: the Kibana alert documents.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), metavar="FILE", help="Append alerts here instead of stdout.")
@click.option("--store", "store_path", metavar="PATH", help="Alert store (SQLite). Default: $XDG_STATE_HOME/auditeql/alerts.db.")
@click.option("--no-store", is_flag=True, help="Do not keep alerts in the store.")
@click.option("--flavor", type=click.Choice(["auditd-manager", "auditbeat"]), default="auditd-manager", show_default=True)
@click.option("--host-id", metavar="ID", help="host.id for the documents (default: /etc/machine-id).")
@click.option("--host-name", metavar="NAME", help="host.name for the documents (default: the hostname).")
@click.option("--webhook", metavar="URL", help="POST each alert as JSON to URL (background, retried, never blocks detection).")
@click.option("--webhook-header", multiple=True, metavar="'Name: value'",
              help=f"Extra HTTP header (repeatable). A token may instead come from ${TOKEN_ENV} (sent as 'Authorization: Bearer …').")
@click.option("--webhook-insecure", is_flag=True, help="Do not verify the webhook's TLS certificate (tests only).")
@click.option("--syslog", "use_syslog", is_flag=True, help="Also send each alert to the local syslog (RFC 5424).")
@click.option("--syslog-socket", default="/dev/log", show_default=True, metavar="PATH", help="The syslog socket.")
@click.option("--syslog-facility", default="auth", show_default=True, metavar="NAME", help="Syslog facility (auth, daemon, local0…).")
@click.option("--health-interval", type=float, default=60.0, show_default=True, metavar="SECONDS",
              help="Print a health line on stderr this often (0: only on SIGUSR1).")
@click.option("--checkpoint", "checkpoint_path", metavar="PATH",
              help="file: sources: where to keep the read position (default: $XDG_STATE_HOME/auditeql/follow-<name>.json).")
@click.option("--from-start", is_flag=True, help="file: sources without a checkpoint: read the file from its start (default: its end).")
@click.option("--rcvbuf", type=int, default=8 * 1024 * 1024, show_default=True, metavar="BYTES", help="netlink receive buffer size.")
@click.option("--reorder-ms", type=int, default=500, show_default=True, metavar="MS",
              help="How long sequences wait for late events (samples fire immediately).")
@click.option("--user", "run_as", metavar="USER", help="Drop root privileges to USER once the sources and outputs are open.")
@click.option("--no-pushdown", "pushdown", flag_value=False, default=True,
              help="Build a document for every audit event, even those no rule can match (slower; fuller alert context).")
@click.option("--duration", type=float, default=None, metavar="SECONDS", help="Stop after this many seconds (tests, benchmarks).")
def watch(source: str, rule_files: tuple[str, ...], rule_dirs: tuple[str, ...], no_builtin: bool, all_builtin: bool, fmt: str,
          output: str | None, store_path: str | None, no_store: bool, flavor: str, host_id: str | None,
          host_name: str | None, webhook: str | None, webhook_header: tuple[str, ...], webhook_insecure: bool,
          use_syslog: bool, syslog_socket: str, syslog_facility: str, health_interval: float,
          checkpoint_path: str | None, from_start: bool, rcvbuf: int, reorder_ms: int, run_as: str | None,
          pushdown: bool, duration: float | None) -> None:
    """Run detection rules on live audit data; each alert is written the moment it is found.

    SIGHUP reloads the rules, SIGUSR1 prints a health line, SIGTERM/SIGINT flush and exit 0.
    The kernel records nothing without audit rules: see `auditeql audit-rules --install`.
    """
    from auditeql.audit.host import HostInfo
    from auditeql.audit.pipeline import Normalizer
    from auditeql.rules import LoadReport, RuleError, load_rules
    from auditeql.sources.audisp import StreamFormatError
    from auditeql.sources.checkpoint import CheckpointError
    from auditeql.sources.netlink import NetlinkError, audit_status
    from auditeql.watch import inputs
    from auditeql.watch.prefilter import RecordPrefilter
    from auditeql.watch.pushdown import SyscallKeep
    from auditeql.watch.runner import LiveRunner, WatchConfig
    from auditeql.watch.signals import SignalFlags

    if store_path and no_store:
        _fail("--store and --no-store exclude each other")
    if no_builtin and all_builtin:
        _fail("--no-builtin and --all-builtin exclude each other")
    if health_interval < 0:
        _fail("--health-interval must be >= 0")

    def load() -> list[Any]:
        report = LoadReport()
        builtin: bool | str = False if no_builtin else ("all" if all_builtin else True)
        rules = load_rules(rule_files, rule_dirs, builtin=builtin, report=report)
        for err in report.errors:
            _say(f"warning: rule skipped: {err}")
        return rules

    try:
        rules = load()
    except RuleError as exc:
        _fail(str(exc))
    if not rules:
        _fail("no rules to run; add --rule FILE or --rules-dir DIR, or drop --no-builtin")

    keep = SyscallKeep(rules) if pushdown else None
    prefilter = RecordPrefilter(rules) if pushdown else None

    def on_rules(new_rules: Any) -> None:
        if keep is not None:
            keep.update(new_rules)
        if prefilter is not None:
            prefilter.update(new_rules)

    try:
        host = HostInfo.detect(host_id=host_id, host_name=host_name)
    except OSError as exc:
        _fail(f"cannot detect the host identity ({exc}); pass --host-id and --host-name")

    def make_normalizer() -> Normalizer:
        return Normalizer(flavor, host, keep=keep, clock=time.monotonic)

    if source.startswith("file:") and checkpoint_path is None:
        checkpoint_path = _default_checkpoint(source[5:])
    try:
        live = inputs.open_input(source, make_normalizer, rcvbuf=rcvbuf, checkpoint_path=checkpoint_path,
                                 from_start=from_start, prefilter=prefilter)
    except inputs.SourceError as exc:
        _fail(str(exc))
    except (NetlinkError, CheckpointError, StreamFormatError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot open --source {source}: {exc.strerror or exc}")

    kernel_status = None
    if source == "netlink":
        kernel_status = audit_status
        try:
            status = audit_status()
            if status.enabled == 0:
                _say("warning: kernel auditing is disabled, nothing will be recorded; run `auditeql audit-rules --install`")
        except OSError:
            pass  # health will say "kernel=unavailable"

    sinks: list[Any] = []
    if webhook:
        from auditeql.alerts.webhook import WebhookSink, parse_header

        headers: dict[str, str] = {}
        try:
            for h in webhook_header:
                name, value = parse_header(h)
                headers[name] = value
            token = os.environ.get(TOKEN_ENV)
            if token and not any(k.lower() == "authorization" for k in headers):
                headers["Authorization"] = f"Bearer {token}"
            sinks.append(WebhookSink(webhook, headers=headers, insecure=webhook_insecure))
        except ValueError as exc:
            _fail(str(exc))
    if use_syslog:
        from auditeql.alerts.syslog import SyslogSink

        try:
            sinks.append(SyslogSink(syslog_socket, facility=syslog_facility))
        except ValueError as exc:
            _fail(str(exc))

    store = None
    if not no_store:
        from auditeql.alerts.store import AlertStore, StoreError

        try:
            store = AlertStore(store_path)
        except StoreError as exc:
            # detection comes first: alert to the outputs without a store (issue 9)
            _say(f"error: {exc}; alerts will NOT be stored (they still go to the outputs)")

    out_fh = None
    if output:
        try:
            out_fh = open(output, "ab")  # noqa: SIM115 - closed below
        except OSError as exc:
            _fail(f"cannot open --output {output}: {exc.strerror}")

    if run_as:
        from auditeql.watch.privileges import PrivilegeError, drop_privileges

        try:
            drop_privileges(run_as)
        except PrivilegeError as exc:
            _fail(str(exc))

    def reload() -> list[Any]:
        return load()

    runner = LiveRunner(
        live, rules,
        config=WatchConfig(fmt=fmt, reorder_ms=reorder_ms, health_interval=health_interval, alert_out=out_fh),
        store=store, sinks=sinks, kernel_status=kernel_status, reload_rules=reload, on_rules=on_rules,
    )
    signals = SignalFlags()
    _say(f"watching {source} with {len(rules)} rule(s)"
         + (f"; audit syscalls kept: {','.join(sorted(keep.syscalls))}" if keep is not None and keep.syscalls else "")
         + ("" if pushdown else "; push-down off"))
    try:
        code = runner.run(signals, max_seconds=duration)
    except CheckpointError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"reading --source {source} failed: {exc.strerror or exc}; alerts found so far were written")
    finally:
        signals.restore()
        live.close()
        if store is not None:
            store.close()
        if out_fh is not None:
            out_fh.close()
    runner.report_health()
    sys.exit(code)


def _default_checkpoint(path: str) -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    name = os.path.abspath(path).strip("/").replace("/", "_") or "stdin"
    return os.path.join(base, "auditeql", f"follow-{name}.json")
