"""The coverage matrix: technique × rule → detected / missed / false positive, and its renderings.

One data structure (:class:`Matrix`), three renderings: a terminal table (rich), Markdown (for
docs/coverage.md) and a self-contained HTML page (inline CSS, no scripts, no external assets).
The seed rule's verdict is also compared with what the reference recording (udp-shells-1)
says it does, for the techniques that recording contains.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from auditeql.emulate.check import Attribution
from auditeql.emulate.runner import Outcome
from auditeql.emulate.techniques import BY_NAME, RECORDED_SEED_ALERTS

SEED_RULE = "Potential Reverse Shell via UDP"

DETECTED, MISSED, FALSE_POSITIVE, QUIET, SKIPPED, ERROR = (
    "detected", "missed", "false positive", "quiet", "skipped", "error",
)
_SYMBOL = {DETECTED: "✅ detected", MISSED: "❌ missed", FALSE_POSITIVE: "⚠️ false positive", QUIET: "· quiet",
           SKIPPED: "skipped", ERROR: "error"}


@dataclass(frozen=True)
class Cell:
    verdict: str
    alerts: int = 0


@dataclass(frozen=True)
class Row:
    name: str
    real: bool
    note: str
    status: str
    reason: str
    reached_host: bool
    shell_answered: bool
    cells: tuple[Cell, ...]
    recorded_seed: bool | None = None  # what the reference recording says the seed rule does
    pid: int | None = None  # the technique's root pid and time window (for offline replays)
    start: float = 0.0
    end: float = 0.0

    def as_dict(self, rules: Sequence[str]) -> dict[str, Any]:
        return {
            "technique": self.name, "real": self.real, "status": self.status, "reason": self.reason,
            "reached_host": self.reached_host, "shell_answered": self.shell_answered,
            "recorded_seed": self.recorded_seed, "pid": self.pid, "start": self.start, "end": self.end,
            "verdicts": {r: {"verdict": c.verdict, "alerts": c.alerts} for r, c in zip(rules, self.cells)},
        }


@dataclass(frozen=True)
class Matrix:
    rules: tuple[str, ...]
    rows: tuple[Row, ...]
    background: Mapping[str, int] = field(default_factory=dict)
    meta: Mapping[str, str] = field(default_factory=dict)
    background_detail: tuple[str, ...] = ()

    def cell(self, technique: str, rule: str) -> Cell:
        row = next(r for r in self.rows if r.name == technique)
        return row.cells[self.rules.index(rule)]

    def seed_comparison(self) -> list[tuple[str, bool, bool]]:
        """(technique, recording says alert, alerted here) for the seed rule, where comparable."""
        if SEED_RULE not in self.rules:
            return []
        i = self.rules.index(SEED_RULE)
        return [
            (r.name, bool(r.recorded_seed), r.cells[i].verdict in (DETECTED, FALSE_POSITIVE))
            for r in self.rows
            if r.recorded_seed is not None and r.status == "ran"
        ]

    def summary(self) -> dict[str, dict[str, int]]:
        out = {}
        for i, rule in enumerate(self.rules):
            ran = [r for r in self.rows if r.status == "ran"]
            out[rule] = {
                "real_ran": sum(r.real for r in ran),
                "detected": sum(r.real and r.cells[i].verdict == DETECTED for r in ran),
                "benign_ran": sum(not r.real for r in ran),
                "false_positives": sum((not r.real) and r.cells[i].verdict == FALSE_POSITIVE for r in ran),
                "background_alerts": int(self.background.get(rule, 0)),
            }
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "rules": list(self.rules), "meta": dict(self.meta), "summary": self.summary(),
            "background": dict(self.background), "background_detail": list(self.background_detail), "rows": [r.as_dict(self.rules) for r in self.rows],
            "seed_vs_recording": [
                {"technique": t, "recording": a, "here": b} for t, a, b in self.seed_comparison()
            ],
        }


def build(
    outcomes: Sequence[Outcome],
    rules: Sequence[str],
    attribution: Attribution,
    meta: Mapping[str, str] | None = None,
) -> Matrix:
    rows = []
    for o in outcomes:
        tech = BY_NAME.get(o.name)
        real = tech.real if tech else False
        cells = []
        for rule in rules:
            if o.status != "ran":
                cells.append(Cell(SKIPPED if o.status == "skipped" else ERROR))
                continue
            n = len(attribution.per_technique.get((o.name, rule), ()))
            if real:
                cells.append(Cell(DETECTED if n else MISSED, n))
            else:
                cells.append(Cell(FALSE_POSITIVE if n else QUIET, n))
        rows.append(Row(
            o.name, real, tech.note if tech else "", o.status, o.reason, o.reached_host, o.shell_answered,
            tuple(cells), RECORDED_SEED_ALERTS.get(o.name), o.pid, o.start, o.end,
        ))
    rules = list(rules)
    mine = [r for r in rules if r.endswith("(auditeql)")]
    if len(mine) > 1:  # the auditeql rules are meant to be deployed together: show their union too
        union = []
        for row in rows:
            verdicts = [row.cells[rules.index(r)] for r in mine]
            alerts = sum(c.alerts for c in verdicts)
            if row.status != "ran":
                union.append(verdicts[0])
            elif row.real:
                union.append(Cell(DETECTED if alerts else MISSED, alerts))
            else:
                union.append(Cell(FALSE_POSITIVE if alerts else QUIET, alerts))
        rows = [Row(**{**r.__dict__, "cells": (*r.cells, u)}) for r, u in zip(rows, union)]
        rules.append(UNION)
    background = {r: len(attribution.background.get(r, ())) for r in rules}
    background[UNION] = sum(background.get(r, 0) for r in mine) if UNION in rules else 0
    detail = tuple(
        _describe(rule, a) for rule, alerts in sorted(attribution.background.items()) for a in alerts
    )
    return Matrix(tuple(rules), tuple(rows), background, dict(meta or {}), detail)


def _describe(rule: str, alert: Any) -> str:
    """One line about a background alert: which rule, which processes, where to."""
    from auditeql.fields import first

    procs = []
    dest = ""
    for e in alert.events:
        name = f"{first(e, 'process.name')}[{first(e, 'process.pid')}]"
        if name not in procs:
            procs.append(name)
        if first(e, "destination.ip") is not None:
            dest = f" → {first(e, 'destination.ip')}:{first(e, 'destination.port')}"
    exe = first(alert.events[0], "process.executable") if alert.events else None
    return f"{_short(rule)}: {', '.join(procs)} ({exe}){dest}"


# ---- renderings ------------------------------------------------------------------------------
UNION = "auditeql† rules together"
_LABELS = {
    SEED_RULE: "seed (Elastic)",
    "UDP Reverse Shell via Socket Hand-off (auditeql)": "hand-off†",
    "UDP Relay Tool Connected to a Remote Host (auditeql)": "relay†",
    UNION: "hand-off† + relay†",
}


def _short(rule: str) -> str:
    return _LABELS.get(rule, rule.replace(" (auditeql)", "†"))


def legend(m: Matrix) -> list[tuple[str, str]]:
    """(column label, full rule name) for the columns of ``m``."""
    return [(_short(r), r) for r in m.rules]


def _evidence(row: Row) -> str:
    if row.status != "ran":
        return row.reason or row.status
    if row.shell_answered:
        return "shell answered"
    return "reached test host" if row.reached_host else "no traffic seen"


def _seed_mark(row: Row, m: Matrix) -> str:
    if row.recorded_seed is None or row.status != "ran" or SEED_RULE not in m.rules:
        return ""
    here = row.cells[m.rules.index(SEED_RULE)].verdict in (DETECTED, FALSE_POSITIVE)
    rec = "alert" if row.recorded_seed else "no alert"
    return f"{rec} ({'same' if here == row.recorded_seed else 'DIFFERENT'})"


def to_markdown(m: Matrix) -> str:
    lines = []
    head = ["technique", "UDP shell?"] + [_short(r) for r in m.rules] + ["seed rule in recording", "evidence"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for row in m.rows:
        cells = [_SYMBOL[c.verdict] + (f" ({c.alerts})" if c.alerts > 1 else "") for c in row.cells]
        lines.append("| " + " | ".join(
            [f"`{row.name}`", "yes" if row.real else "no (look-alike)", *cells, _seed_mark(row, m), _evidence(row)]
        ) + " |")
    lines.append("")
    lines.append("| rule | real shells detected | look-alikes alerted | background alerts |")
    lines.append("|---|---|---|---|")
    for rule, s in m.summary().items():
        lines.append(f"| {rule} | {s['detected']} / {s['real_ran']} | {s['false_positives']} / {s['benign_ran']} | "
                     f"{s['background_alerts']} |")
    lines.append("")
    lines.append("Columns: " + "; ".join(f"**{lab}** = {full}" for lab, full in legend(m)) + ".")
    if m.background_detail:
        lines.append("")
        lines.append("Background alerts (activity on the machine that is not part of any technique):")
        lines.append("")
        lines.extend(f"- {d}" for d in m.background_detail)
    comp = m.seed_comparison()
    if comp:
        same = sum(a == b for _t, a, b in comp)
        lines.append("")
        lines.append(f"Seed rule vs. the recording udp-shells-1: same verdict for {same} of {len(comp)} techniques "
                     "present in both.")
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1b1f24}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .6rem;font-size:.9rem}
th{background:#f6f8fa;text-align:left}td.detected{background:#dafbe1}td.missed{background:#ffebe9;font-weight:600}
td.false-positive{background:#fff8c5;font-weight:600}td.quiet{color:#57606a}td.skipped,td.error{color:#8c959f;font-style:italic}
code{font-size:.85rem}.meta{color:#57606a;font-size:.85rem}
"""


def to_html(m: Matrix, title: str = "auditeql detection coverage") -> str:
    e = html.escape
    out = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{e(title)}</title><style>{_CSS}</style>"
           f"</head><body><h1>{e(title)}</h1>"]
    if m.meta:
        out.append("<p class=meta>" + " · ".join(f"{e(k)}: {e(str(v))}" for k, v in m.meta.items()) + "</p>")
    out.append("<table><tr><th>technique</th><th>UDP shell?</th>")
    out.extend(f"<th>{e(_short(r))}</th>" for r in m.rules)
    out.append("<th>seed rule in recording</th><th>evidence</th></tr>")
    for row in m.rows:
        out.append(f"<tr><td><code>{e(row.name)}</code><br><small>{e(row.note)}</small></td>"
                   f"<td>{'yes' if row.real else 'no'}</td>")
        for c in row.cells:
            label = c.verdict + (f" ({c.alerts})" if c.alerts > 1 else "")
            out.append(f"<td class=\"{c.verdict.replace(' ', '-')}\">{e(label)}</td>")
        out.append(f"<td>{e(_seed_mark(row, m))}</td><td>{e(_evidence(row))}</td></tr>")
    out.append("</table><table><tr><th>rule</th><th>real shells detected</th><th>look-alikes alerted</th>"
               "<th>background alerts</th></tr>")
    for rule, s in m.summary().items():
        out.append(f"<tr><td>{e(rule)}</td><td>{s['detected']} / {s['real_ran']}</td>"
                   f"<td>{s['false_positives']} / {s['benign_ran']}</td><td>{s['background_alerts']}</td></tr>")
    out.append("</table><p>" + "; ".join(f"<b>{e(lab)}</b> = {e(full)}" for lab, full in legend(m)) + "</p>")
    if m.background_detail:
        out.append("<h2>Background alerts</h2><ul>" + "".join(f"<li>{e(d)}</li>" for d in m.background_detail) + "</ul>")
    comp = m.seed_comparison()
    if comp:
        same = sum(a == b for _t, a, b in comp)
        out.append(f"<p>Seed rule vs. the recording udp-shells-1: same verdict for {same} of {len(comp)} "
                   "techniques present in both.</p>")
    out.append("</body></html>\n")
    return "".join(out)


def to_terminal(m: Matrix) -> Any:
    """A rich Table (print it with a rich Console)."""
    from rich.table import Table

    style = {DETECTED: "green", MISSED: "bold red", FALSE_POSITIVE: "bold yellow", QUIET: "dim",
             SKIPPED: "dim italic", ERROR: "red italic"}
    table = Table(title="technique × rule", show_lines=False)
    table.add_column("technique")
    table.add_column("shell?")
    for r in m.rules:
        table.add_column(_short(r), overflow="fold")
    table.add_column("seed in recording")
    table.add_column("evidence")
    for row in m.rows:
        cells = [f"[{style[c.verdict]}]{c.verdict}" + (f" ({c.alerts})" if c.alerts > 1 else "") + "[/]"
                 for c in row.cells]
        table.add_row(row.name, "yes" if row.real else "no", *cells, _seed_mark(row, m), _evidence(row))
    return table
