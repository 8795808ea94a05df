"""`auditeql audit-rules`: the kernel audit rules the loaded detection rules need.

Without audit rules the kernel records nothing for ``watch`` to see. By default the rules are
printed; ``--write PATH`` writes a file for /etc/audit/rules.d/ (auditd's augenrules loads it
at boot), ``--install`` loads them now with auditctl, ``--uninstall`` removes exactly the rules
carrying our key. The derivation itself is :mod:`auditeql.watch.audit_rules`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

EXIT_OK, EXIT_ERROR = 0, 2


def _fail(message: str) -> None:
    click.echo(f"auditeql audit-rules: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


@click.command("audit-rules")
@click.option("--install", "action", flag_value="install", help="Load the rules into the kernel now (auditctl; enables auditing).")
@click.option("--uninstall", "action", flag_value="uninstall", help="Remove every loaded rule carrying the key, and nothing else.")
@click.option("--write", "write_path", metavar="PATH", help="Write a rules file (e.g. /etc/audit/rules.d/50-auditeql.rules).")
@click.option("--rule", "rule_files", multiple=True, metavar="FILE", help="A detection-rules TOML file (repeatable).")
@click.option("--rules-dir", "rule_dirs", multiple=True, metavar="DIR", help="A folder of TOML rules (repeatable).")
@click.option("--no-builtin", is_flag=True, help="Leave out the built-in rules.")
@click.option("--all-builtin", is_flag=True, help="Include auditeql's own built-in rules (maturity development).")
@click.option("--syscall", "extra", multiple=True, metavar="NAME", help="Also audit this syscall (repeatable; for filters whose needs cannot be derived).")
@click.option("--key", default="auditeql", show_default=True, help="The audit rule key that marks our rules.")
@click.option("--backlog", type=int, default=None, metavar="N", help="With --install: also set the kernel backlog limit (auditctl -b N).")
def audit_rules(action: str | None, write_path: str | None, rule_files: tuple[str, ...], rule_dirs: tuple[str, ...],
                no_builtin: bool, all_builtin: bool, extra: tuple[str, ...], key: str, backlog: int | None) -> None:
    """Print, write, install or remove the audit rules the detection rules need.

    The syscalls are read off the rules' filters (auditd.data.syscall and event.action
    literals); both ABIs are covered, 32-bit socket calls also through socketcall(2).
    """
    from auditeql.watch import audit_rules as ar

    try:
        ar.check_key(key)
    except ar.AuditRulesError as exc:
        _fail(str(exc))

    if action == "uninstall":
        if write_path:
            _fail("--uninstall and --write exclude each other")
        try:
            removed = ar.uninstall(key)
        except ar.AuditRulesError as exc:
            _fail(str(exc))
        click.echo(f"removed {len(removed)} audit rule(s) with key {key!r}", err=True)
        for line in removed:
            click.echo(line)
        return

    if no_builtin and all_builtin:
        _fail("--no-builtin and --all-builtin exclude each other")
    rules = _load(rule_files, rule_dirs, False if no_builtin else ("all" if all_builtin else True))
    needs = ar.derive_needs(rules)
    for where in needs.unknown:
        click.echo(
            f"auditeql audit-rules: warning: cannot tell which syscalls {where} needs; add them with --syscall NAME",
            err=True,
        )
    syscalls = set(needs.syscalls) | set(extra)
    if not syscalls:
        _fail("the rules need no syscall that could be derived; name them with --syscall NAME")
    names = [r.name for r in rules]
    text = ar.rules_file(syscalls, key, rule_names=names)

    if write_path:
        try:
            _write(write_path, text)
        except OSError as exc:
            _fail(f"cannot write {write_path}: {exc.strerror}")
        click.echo(f"wrote {write_path}; load it with `augenrules --load` (or auditctl -R {write_path})", err=True)
    if action == "install":
        try:
            added = ar.install(syscalls, key, backlog_limit=backlog)
        except ar.AuditRulesError as exc:
            _fail(str(exc))
        click.echo(f"installed {len(added)} audit rule(s) with key {key!r}; remove them with "
                   f"`auditeql audit-rules --uninstall{'' if key == 'auditeql' else ' --key ' + key}`", err=True)
        for line in added:
            click.echo(line)
    elif not write_path:
        click.echo(text, nl=False)


def _load(rule_files: tuple[str, ...], rule_dirs: tuple[str, ...], builtin: bool | str) -> list[Any]:
    from auditeql.rules import LoadReport, RuleError, load_rules

    report = LoadReport()
    try:
        rules = load_rules(rule_files, rule_dirs, builtin=builtin, report=report)
    except RuleError as exc:
        _fail(str(exc))
    for err in report.errors:
        click.echo(f"auditeql audit-rules: warning: rule skipped: {err}", err=True)
    if not rules:
        _fail("no detection rules loaded; add --rule FILE or --rules-dir DIR, or drop --no-builtin")
    return rules


def _write(path: str, text: str) -> None:
    """Write atomically, mode 0640 (auditd's rules.d files are root-readable)."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
