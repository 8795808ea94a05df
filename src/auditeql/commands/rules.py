"""`auditeql rules list|show|validate`: what rules would run, and are my rule files valid."""

from __future__ import annotations

import os
import sys

import click

from auditeql.rules import LoadReport, Rule, RuleError, UnsupportedRule, load_rule, load_rules
from auditeql.rules.loader import rule_files_in


@click.group("rules")
def rules() -> None:
    """List, show and validate detection rules (Elastic detection-rules TOML)."""


def _load(rule_files: tuple[str, ...], rule_dirs: tuple[str, ...], no_builtin: bool, all_builtin: bool) -> list[Rule]:
    report = LoadReport()
    try:
        out = load_rules(rule_files, rule_dirs, builtin=False if no_builtin else ("all" if all_builtin else True), report=report)
    except RuleError as exc:
        click.echo(f"auditeql rules: error: {exc}", err=True)
        sys.exit(2)
    for err in report.errors:
        click.echo(f"auditeql rules: skipped: {err}", err=True)
    if report.unsupported:
        click.echo(f"auditeql rules: {len(report.unsupported)} rule(s) of other types skipped (only eql runs)", err=True)
    return out


_source_options = [
    click.option("--rule", "rule_files", multiple=True, metavar="FILE", help="A TOML rule file (repeatable)."),
    click.option("--rules-dir", "rule_dirs", multiple=True, metavar="DIR", help="A folder of TOML rules (repeatable)."),
    click.option("--no-builtin", is_flag=True, help="Leave out the built-in rules."),
    click.option("--all-builtin", is_flag=True, help="Include auditeql's own built-in rules (maturity development)."),
]


def _with_sources(fn):  # type: ignore[no-untyped-def]
    for opt in reversed(_source_options):
        fn = opt(fn)
    return fn


@rules.command("list")
@_with_sources
def list_rules(rule_files: tuple[str, ...], rule_dirs: tuple[str, ...], no_builtin: bool, all_builtin: bool) -> None:
    """One line per rule that `scan` would run."""
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("rule_id", "name", "severity", "risk", "interval", "from", "max", "source"):
        table.add_column(col, overflow="fold")
    for r in _load(rule_files, rule_dirs, no_builtin, all_builtin):
        table.add_row(r.rule_id, r.name, r.severity, str(r.risk_score), r.interval, r.from_, str(r.max_signals), r.path)
    Console(width=200).print(table)


@rules.command("show")
@click.argument("which")
@_with_sources
def show_rule(which: str, rule_files: tuple[str, ...], rule_dirs: tuple[str, ...], no_builtin: bool, all_builtin: bool) -> None:
    """Every field of one rule, found by rule_id (or a prefix of it) or by name."""
    found = [r for r in _load(rule_files, rule_dirs, no_builtin, True) if r.rule_id.startswith(which) or r.name.lower() == which.lower()]
    if len(found) != 1:
        click.echo(f"auditeql rules: error: {'no rule' if not found else f'{len(found)} rules'} match {which!r}; see `auditeql rules list`", err=True)
        sys.exit(2)
    r = found[0]
    lines = [
        ("name", r.name), ("rule_id", r.rule_id), ("source", r.path), ("type / language", f"{r.type} / {r.language}"),
        ("severity / risk", f"{r.severity} / {r.risk_score}"), ("interval", r.interval), ("from / to", f"{r.from_} / {r.to}"),
        ("max_signals", r.max_signals), ("timestamp_override", r.timestamp_override or "-"), ("index", ", ".join(r.index)),
        ("version", r.version), ("author", ", ".join(r.author)), ("license", r.license or "-"), ("tags", "; ".join(r.tags)),
        ("references", "\n  ".join(r.references) or "-"),
    ]
    for key, value in lines:
        click.echo(f"{key:>18}: {value}")
    for t in r.threat:
        techs = ", ".join(
            f"{x.ref.id} {x.ref.name}" + "".join(f" > {s.id} {s.name}" for s in x.subtechnique) for x in t.technique
        )
        click.echo(f"{'threat':>18}: {t.framework}: {t.tactic.id} {t.tactic.name}: {techs}")
    click.echo(f"{'description':>18}: {r.description.strip()}")
    click.echo("query:")
    click.echo(r.query.rstrip())


@rules.command("validate")
@click.argument("paths", nargs=-1, required=True, metavar="FILE_OR_DIR...")
def validate(paths: tuple[str, ...]) -> None:
    """Check rule files (or folders of them): TOML, fields, and the EQL query. Exit 1 if any is invalid."""
    bad = 0
    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            files.extend(rule_files_in(p))
        else:
            files.append(p)
    for f in files:
        try:
            r = load_rule(f)
        except UnsupportedRule as exc:
            click.echo(f"skip     {exc}")
            continue
        except RuleError as exc:
            bad += 1
            click.echo(f"INVALID  {exc}")
            continue
        click.echo(f"ok       {f}: {r.name} ({r.rule_id})")
        for w in r.warnings:
            click.echo(f"  warning: {w}")
    click.echo(f"{len(files) - bad} of {len(files)} file(s) valid", err=True)
    sys.exit(1 if bad else 0)
