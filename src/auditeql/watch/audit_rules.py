"""The kernel audit rules that a set of detection rules needs: derive, write, install, remove.

Derivation reads each filter of a rule's parsed query for a *necessary*
syscall set: an equality / ``:`` / ``in`` of ``auditd.data.syscall`` against literals names
syscalls directly; ``event.action`` literals go through :data:`ACTION_SYSCALLS`; ``and``
intersects what its sides require, ``or`` unites (and is unknown if either side is). A filter
whose set stays unknown is reported: the user adds its syscalls with ``--syscall``. Rules for
both ABIs are generated, and 32-bit socket calls are also caught at ``socketcall(2)`` with its
``a0`` sub-call number.

Every generated rule carries ``-k KEY`` (default ``auditeql``). Removal parses ``auditctl -l``
and deletes exactly the rules whose key is ours: nobody else's rules are touched, and
``auditctl -D`` is never used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from auditeql.eql import ast
from auditeql.eql.parser import parse_query
from auditeql.watch.syscall_needs import (
    ABIS,
    ABSENT,
    ACTION_FIELDS,
    ACTION_SYSCALLS,
    SOCKETCALL_CALLS,
    SYSCALL_FIELDS,
)

DEFAULT_KEY = "auditeql"
_KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,31}$")


class AuditRulesError(RuntimeError):
    """auditctl is missing or refused a rule; the message says what to do."""


@dataclass(frozen=True)
class Needs:
    """What the detection rules need: syscall names, plus filters whose needs are unknown."""

    syscalls: frozenset[str]
    unknown: tuple[str, ...] = ()  # "rule name: filter N" descriptions
    by_rule: dict[str, frozenset[str]] = field(default_factory=dict, compare=False)


# --------------------------------------------------------------------------- derivation


def _literals(values: Iterable[Any]) -> set[str] | None:
    out: set[str] = set()
    for v in values:
        if not isinstance(v, ast.Literal) or not isinstance(v.value, str):
            return None
        out.add(v.value)
    return out


def _field_literals(expr: ast.Expr) -> tuple[str, set[str]] | None:
    """``(field, {values})`` when ``expr`` pins a field to literal strings, else ``None``."""
    if isinstance(expr, ast.Comparison) and expr.op == "==":
        left, right = expr.left, expr.right
        if isinstance(right, ast.Field):
            left, right = right, left
        if isinstance(left, ast.Field) and isinstance(right, ast.Literal) and isinstance(right.value, str):
            return left.name, {right.value}
    if isinstance(expr, ast.StringMatch) and expr.op == ":" and isinstance(expr.left, ast.Field):
        vals = _literals(expr.values)
        if vals is not None and not any("*" in v or "?" in v for v in vals):
            # ``:`` is case-insensitive; syscall names and actions are lower-case
            return expr.left.name, {v.lower() for v in vals}
    if isinstance(expr, ast.InSet) and not expr.negated and isinstance(expr.left, ast.Field):
        vals = _literals(expr.values)
        if vals is not None:
            return expr.left.name, {v.lower() for v in vals} if expr.case_insensitive else vals
    return None


def required_syscalls(expr: ast.Expr) -> frozenset[str] | None:
    """A set of syscalls one of which produced any event ``expr`` matches, or ``None``."""
    pinned = _field_literals(expr)
    if pinned is not None:
        name, vals = pinned
        if name in SYSCALL_FIELDS:
            return frozenset(vals)
        if name in ACTION_FIELDS:
            out: set[str] = set()
            for v in vals:
                if v not in ACTION_SYSCALLS:
                    return None
                out.update(ACTION_SYSCALLS[v])
            return frozenset(out)
        return None
    if isinstance(expr, ast.And):
        left, right = required_syscalls(expr.left), required_syscalls(expr.right)
        if left is None:
            return right
        if right is None:
            return left
        return left & right
    if isinstance(expr, ast.Or):
        left, right = required_syscalls(expr.left), required_syscalls(expr.right)
        if left is None or right is None:
            return None
        return left | right
    return None


def query_filters(query: ast.Query) -> list[tuple[ast.EventFilter, bool]]:
    """``(filter, missing)`` for every stage of a parsed query (a sequence's ``until`` included)."""
    if isinstance(query, ast.EventQuery):
        return [(query.filter, False)]
    stages = list(query.subqueries)
    until = getattr(query, "until", None)
    if until is not None:
        stages.append(until)
    return [(sub.filter, sub.missing) for sub in stages]


def derive_needs(rules: Sequence[Any]) -> Needs:
    """Syscalls needed by ``rules`` (objects with ``.name`` and ``.query``, the EQL text).

    The query text is parsed again rather than read from the compiled plan: derivation needs
    only the AST, and works the same for rules loaded without compiling.
    """
    total: set[str] = set()
    unknown: list[str] = []
    by_rule: dict[str, frozenset[str]] = {}
    for rule in rules:
        mine: set[str] = set()
        for i, (flt, _missing) in enumerate(query_filters(parse_query(rule.query)), start=1):
            # a sequence's ![…] stage is needed too: if its events were never recorded, every
            # sequence would look as if the event were missing
            need = required_syscalls(flt.condition)
            if need is None:
                unknown.append(f"{rule.name}: filter {i}")
            else:
                mine |= need
        by_rule[rule.name] = frozenset(mine)
        total |= mine
    return Needs(frozenset(total), tuple(unknown), by_rule)


# --------------------------------------------------------------------------- rule text


def check_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise AuditRulesError(f"audit rule key {key!r} must be 1-31 characters of letters, digits, '_.:-'")
    return key


def rule_lines(syscalls: Iterable[str], key: str = DEFAULT_KEY) -> list[str]:
    """auditctl rule lines (without the leading ``auditctl``) for ``syscalls`` on both ABIs."""
    check_key(key)
    names = sorted(set(syscalls))
    lines: list[str] = []
    for abi in ABIS:
        present = [n for n in names if n not in ABSENT.get(abi, frozenset())]
        if present:
            lines.append(f"-a always,exit -F arch={abi} -S {','.join(present)} -k {key}")
    subcalls = sorted({SOCKETCALL_CALLS[n] for n in names if n in SOCKETCALL_CALLS})
    for number in subcalls:
        lines.append(f"-a always,exit -F arch=b32 -S socketcall -F a0={number} -k {key}")
    return lines


def rules_file(syscalls: Iterable[str], key: str = DEFAULT_KEY, *, rule_names: Sequence[str] = ()) -> str:
    """The text of a file for /etc/audit/rules.d/ (auditd's augenrules reads it)."""
    header = [
        "## Audit rules needed by auditeql's detection rules (generated by `auditeql audit-rules --write`).",
        f"## Every rule carries the key '{key}'; `auditeql audit-rules --uninstall` removes exactly these.",
    ]
    if rule_names:
        header.append("## Detection rules: " + "; ".join(rule_names))
    return "\n".join(header + rule_lines(syscalls, key)) + "\n"


# --------------------------------------------------------------------------- auditctl


def _auditctl() -> str:
    path = shutil.which("auditctl") or ("/usr/sbin/auditctl" if shutil.which("/usr/sbin/auditctl") else None)
    if path is None:
        raise AuditRulesError("auditctl not found: install the audit userspace tools (Debian/Ubuntu: apt install auditd)")
    return path


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([_auditctl(), *args], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as exc:
        raise AuditRulesError(f"auditctl {' '.join(args)} timed out") from exc


def _fail(args: Sequence[str], proc: subprocess.CompletedProcess[str]) -> AuditRulesError:
    msg = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
    hint = " (run as root: changing audit rules needs CAP_AUDIT_CONTROL)" if "not permitted" in msg.lower() else ""
    return AuditRulesError(f"auditctl {' '.join(args)} failed: {msg}{hint}")


def installed_rules(key: str = DEFAULT_KEY) -> list[str]:
    """The rules currently loaded in the kernel that carry ``key`` (as ``auditctl -l`` prints them)."""
    proc = _run(["-l"])
    if proc.returncode != 0:
        raise _fail(["-l"], proc)
    return [line for line in proc.stdout.splitlines() if _has_key(line, key)]


def _has_key(line: str, key: str) -> bool:
    tokens = line.split()
    for i, tok in enumerate(tokens):
        if tok in (f"key={key}", f"-k{key}"):
            return True
        if tok == "-k" and i + 1 < len(tokens) and tokens[i + 1] == key:
            return True
        if tok == "-F" and i + 1 < len(tokens) and tokens[i + 1] == f"key={key}":
            return True
    return False


def uninstall(key: str = DEFAULT_KEY) -> list[str]:
    """Delete every loaded audit rule carrying ``key``; returns the rules deleted."""
    check_key(key)
    removed: list[str] = []
    for line in installed_rules(key):
        tokens = line.split()
        if not tokens or tokens[0] != "-a":
            continue  # watches (-w) are listed differently; we never add them
        args = ["-d", *tokens[1:]]
        proc = _run(args)
        if proc.returncode != 0:
            raise _fail(args, proc)
        removed.append(line)
    return removed


_UNKNOWN_SYSCALL = re.compile(r"Syscall name unknown: (\S+)")


def _add_rule(args: list[str]) -> str | None:
    """``auditctl -a …``; a syscall this architecture lacks is dropped (with a warning) and retried."""
    while True:
        proc = _run(args)
        if proc.returncode == 0:
            return " ".join(args)
        m = _UNKNOWN_SYSCALL.search(proc.stderr or "")
        if not m or "-S" not in args:
            raise _fail(args, proc)
        i = args.index("-S") + 1
        names = [n for n in args[i].split(",") if n != m.group(1)]
        print(f"auditeql: syscall {m.group(1)} does not exist for this architecture/ABI; left out of: {' '.join(args)}",
              file=sys.stderr)
        if not names:
            return None
        args = args[:i] + [",".join(names)] + args[i + 1:]


def install(syscalls: Iterable[str], key: str = DEFAULT_KEY, *, enable: bool = True,
            backlog_limit: int | None = None) -> list[str]:
    """Replace the rules carrying ``key`` with the ones ``syscalls`` need; returns those added.

    ``enable`` turns kernel auditing on (``auditctl -e 1``): without it no rule records anything.
    """
    lines = rule_lines(syscalls, key)
    uninstall(key)
    added: list[str] = []
    try:
        for line in lines:
            added_line = _add_rule(line.split())
            if added_line:
                added.append(added_line)
        if backlog_limit is not None:
            proc = _run(["-b", str(backlog_limit)])
            if proc.returncode != 0:
                raise _fail(["-b", str(backlog_limit)], proc)
        if enable:
            proc = _run(["-e", "1"])
            if proc.returncode != 0:
                raise _fail(["-e", "1"], proc)
    except AuditRulesError:
        uninstall(key)  # all or nothing
        raise
    return added
