"""``auditeql emulate``: run real UDP reverse-shell techniques against a namespaced test host.

Without ``--check`` it only runs them (useful while another process — ``auditeql watch``, an
Auditbeat — is watching). With ``--check`` it also runs the detection pipeline in-process from
the kernel and prints the coverage matrix (technique × rule), optionally writing it as
Markdown, HTML and JSON.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import click

from auditeql.emulate import techniques as catalogue


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"auditeql emulate: {message}", err=True)
    sys.exit(code)


@click.command("emulate")
@click.option("--list", "list_only", is_flag=True, help="List the techniques (and whether their tools are installed).")
@click.option("--technique", "-t", "names", multiple=True, metavar="NAME",
              help="Run only this technique (repeatable). Default: all.")
@click.option("--keep-going/--stop-on-error", default=True, show_default=True,
              help="Go on after a technique fails to start.")
@click.option("--check", is_flag=True, help="Run the detection pipeline from the kernel and print the coverage matrix.")
@click.option("--rules", "rule_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Rule TOML files for --check (default: the built-in rules).")
@click.option("--markdown", type=click.Path(dir_okay=False, writable=True), help="Write the matrix as Markdown.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, writable=True),
              help="Write the matrix as a self-contained HTML page.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, writable=True), help="Write the matrix as JSON.")
@click.option("--record", type=click.Path(dir_okay=False, writable=True),
              help="With --check: also write the raw audit records as an audit.log (.gz to compress).")
@click.option("--cleanup", is_flag=True,
              help="Remove what a killed run left behind (aeq-emu-* namespaces, aeq_emulate audit rules) and exit.")
def emulate(
    list_only: bool, names: tuple[str, ...], keep_going: bool, check: bool, rule_files: tuple[str, ...],
    markdown: str | None, html_out: str | None, json_out: str | None, record: str | None, cleanup: bool,
) -> None:
    """Run real UDP reverse-shell techniques (and benign look-alikes) against a throwaway test host.

    The test host lives in private network namespaces (203.0.113.0/24, 2001:db8:77::/64); nothing
    is sent anywhere else. Needs root.
    """
    from auditeql.emulate.runner import SYSTEM_PATH

    try:
        selected = catalogue.select(list(names))
    except KeyError as exc:
        _fail(f"unknown technique(s): {exc.args[0]}; see `auditeql emulate --list`")
    if list_only:
        for t in selected:
            missing = t.missing_tools(path=SYSTEM_PATH)
            state = f"skipped (missing: {', '.join(missing)})" if missing else "runnable"
            kind = "UDP shell " if t.real else "look-alike"
            click.echo(f"{t.name:30} {kind}  {state:20}  {t.note}")
        return
    if (markdown or html_out or json_out or record or rule_files) and not check:
        _fail("--markdown/--html/--json/--record/--rules need --check")

    from auditeql.emulate.netns import TestHost, TestHostError, require_root

    try:
        require_root()
    except TestHostError as exc:
        _fail(str(exc))
    if cleanup:
        _cleanup()
        return

    def report(o: object) -> None:
        from auditeql.emulate.runner import Outcome

        assert isinstance(o, Outcome)
        if o.status != "ran":
            click.echo(f"  {o.name:30} {o.status}: {o.reason}", err=True)
            return
        evidence = "shell answered" if o.shell_answered else ("reached test host" if o.reached_host else "no traffic")
        ended = "timeout, killed" if o.timed_out else f"exit {o.returncode}"
        click.echo(f"  {o.name:30} ran {o.end - o.start:4.1f}s ({ended}); {evidence}", err=True)

    if not check:
        from auditeql.emulate import runner

        try:
            with TestHost() as host:
                outcomes = runner.run_all(host, selected, keep_going=keep_going, on_done=report)
        except TestHostError as exc:
            _fail(str(exc))
        if any(o.status == "error" for o in outcomes):
            sys.exit(1)
        return

    _run_check(selected, keep_going, rule_files, markdown, html_out, json_out, record, report)


def _cleanup() -> None:
    import subprocess

    from auditeql.emulate.capture import KEY, remove_leftover_rules
    from auditeql.emulate.netns import leftover_namespaces

    spaces = leftover_namespaces()
    for ns in spaces:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    rules = remove_leftover_rules()
    click.echo(f"removed {len(spaces)} namespace(s) ({', '.join(spaces) or 'none'}) and {rules} audit rule(s) "
               f"with key {KEY}")


def _run_check(selected, keep_going, rule_files, markdown, html_out, json_out, record, report) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console

    from auditeql.emulate import matrix as mx
    from auditeql.emulate.capture import AuditRuleError
    from auditeql.emulate.check import run_check
    from auditeql.emulate.netns import TestHostError
    from auditeql.rules import loader

    try:
        rules = [loader.load_rule(f) for f in rule_files] if rule_files else loader.builtin_rules()
        rules.sort(key=lambda r: (r.author != ("Elastic",), -r.risk_score, r.name))  # Elastic first
    except Exception as exc:  # RuleError and friends carry file and field
        _fail(f"cannot load rules: {exc}")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        outcomes, pipeline, attribution = run_check(
            selected, rules, keep_going=keep_going, on_done=report, record_to=Path(record) if record else None,
        )
    except (TestHostError, AuditRuleError, OSError) as exc:
        _fail(str(exc))
    meta = {
        "generated": started,
        "kernel": platform.release(),
        "machine": platform.machine(),
        "command": "auditeql emulate --check" + "".join(f" -t {o.name}" for o in outcomes) if len(outcomes) < 6
        else "auditeql emulate --check",
        "audit documents": str(len(pipeline.docs)),
    }
    m = mx.build(outcomes, [r.name for r in rules], attribution, meta)
    console = Console(stderr=False)
    console.print(mx.to_terminal(m))
    for rule, s in m.summary().items():
        console.print(f"{rule}: {s['detected']}/{s['real_ran']} real shells detected, "
                      f"{s['false_positives']}/{s['benign_ran']} look-alikes alerted, "
                      f"{s['background_alerts']} background alert(s)")
    for line in m.background_detail:
        console.print(f"background alert: {line}", markup=False)
    if markdown:
        Path(markdown).write_text(_markdown_page(m))
    if html_out:
        Path(html_out).write_text(mx.to_html(m))
    if json_out:
        Path(json_out).write_text(json.dumps(m.as_dict(), indent=1) + "\n")


def _markdown_page(m) -> str:  # type: ignore[no-untyped-def]
    """docs/coverage.md: the generated matrix inside a page that explains how to read it."""
    from auditeql.emulate import matrix as mx

    meta = "; ".join(f"{k}: {v}" for k, v in m.meta.items())
    return (
        "# Detection coverage (generated)\n\n"
        "Generated by `sudo auditeql emulate --check --markdown docs/coverage.md --html docs/coverage.html` "
        "(do not edit by hand).\n\n"
        f"{meta}\n\n"
        "Each technique ran for real against a test host in a private network namespace while the detection "
        "pipeline read the kernel audit stream in-process (netlink → normalizer → streaming engine per rule). "
        "An alert counts for a technique when one of its events comes from that technique's process tree within "
        "its time window; alerts caused by other activity on the machine are counted as *background*. "
        "Rules marked † are auditeql's own built-in rules; the seed rule is Elastic's, exactly as written.\n\n"
        + mx.to_markdown(m)
        + "\n## Reading it\n\n"
        "- *detected* / *missed*: a real UDP reverse shell, with / without an alert of that rule; *false positive* / "
        "*quiet*: a benign look-alike, with / without an alert. *skipped*: the tool is not installed here.\n"
        "- *evidence*: what the test host's listener saw: `shell answered` means the output of `id` came back "
        "over UDP, i.e. the reverse shell really worked.\n"
        "- **hand-off†** links a UDP socket connected to a remote address with a program started by the same "
        "process; **relay†** covers relay tools (nc, socat, openssl…) that start nothing themselves. One EQL "
        "query cannot express both shapes, so the two are meant to be deployed together (`auditeql scan "
        "--all-builtin`); the last column is their union. Their design, limits and known false positives are "
        "in docs/deviations.md, section *Efficacy rule extensions*.\n"
        "- The same rules on the shared recording udp-shells-1 (offline, `tests/emulate/test_rules_offline.py`): "
        "the seed rule alerts exactly on the recording's 9 scenarios; the two auditeql rules together on 17 of its "
        "18 UDP-shell scenarios and on none of its look-alikes. The 18th, `busybox_nc_udp`, opened no socket "
        "(that busybox `nc` has no `-u`).\n"
    )
