"""Deriving, writing, installing and removing the kernel audit rules the detection rules need."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditeql.rules.loader import builtin_rules
from auditeql.watch import audit_rules
from auditeql.eql.parser import parse_query
from auditeql.watch.audit_rules import derive_needs, required_syscalls, rule_lines, rules_file


@dataclass(frozen=True)
class _R:
    name: str
    query: str


SEED_ID = "a5eb21b7-13cc-4b94-9fe2-29bb2914e037"


def _seed() -> list:
    return [r for r in builtin_rules(compile=False) if r.rule_id == SEED_ID]


SEED_B64 = "-a always,exit -F arch=b64 -S connect,execve,execveat,socket -k auditeql"
SEED_B32 = "-a always,exit -F arch=b32 -S connect,execve,execveat,socket -k auditeql"


def test_seed_rule_needs_execve_socket_connect_on_both_abis_and_socketcall() -> None:
    needs = derive_needs(_seed())
    assert needs.syscalls == {"execve", "execveat", "socket", "connect"}
    assert needs.unknown == ()
    assert rule_lines(needs.syscalls) == [
        SEED_B64,
        SEED_B32,
        "-a always,exit -F arch=b32 -S socketcall -F a0=1 -k auditeql",  # SYS_SOCKET
        "-a always,exit -F arch=b32 -S socketcall -F a0=3 -k auditeql",  # SYS_CONNECT
    ]


def test_a_second_rule_adds_its_syscalls_automatically() -> None:
    dup_rule = _R("fd redirect", 'process where auditd.data.syscall : ("dup2", "dup3") and process.name == "bash"')
    needs = derive_needs([*_seed(), dup_rule])
    assert needs.syscalls == {"execve", "execveat", "socket", "connect", "dup2", "dup3"}
    assert needs.by_rule["fd redirect"] == {"dup2", "dup3"}
    assert "-S connect,dup2,dup3,execve,execveat,socket " in rule_lines(needs.syscalls, "k1")[0]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('event.action == "executed"', {"execve", "execveat"}),
        ('event.action in ("bound-socket", "connected-to")', {"bind", "connect"}),
        ('auditd.data.syscall == "socket" or auditd.data.syscall == "bind"', {"socket", "bind"}),
        ('auditd.data.syscall in ("socket", "connect") and event.action == "connected-to"', {"connect"}),
        ('process.name == "bash" and auditd.data.syscall : "SOCKET"', {"socket"}),
        ('auditd.data.syscall == "socket" or process.name == "bash"', None),  # either side: unknown
        ('auditd.data.syscall : "sock*"', None),  # wildcard: cannot enumerate
        ('not auditd.data.syscall == "socket"', None),
        ('event.action == "some-unknown-action"', None),
        ('process.name == "bash"', None),
    ],
)
def test_required_syscalls_algebra(condition: str, expected: set[str] | None) -> None:
    query = parse_query(f"any where {condition}")
    assert required_syscalls(query.filter.condition) == expected


def test_unknown_filters_are_reported_by_rule_and_position() -> None:
    rule = _R("vague", 'sequence [process where process.name == "x"] [network where event.action == "connected-to"]')
    needs = derive_needs([rule])
    assert needs.syscalls == {"connect"}
    assert needs.unknown == ("vague: filter 1",)


def test_rules_file_for_rules_d() -> None:
    text = rules_file({"execve"}, "mykey", rule_names=["A", "B"])
    lines = text.splitlines()
    assert lines[0].startswith("## ") and "--uninstall" in text
    assert "-a always,exit -F arch=b64 -S execve -k mykey" in lines
    assert text.endswith("\n")
    with pytest.raises(audit_rules.AuditRulesError, match="key"):
        rule_lines({"execve"}, "bad key with spaces")


@pytest.mark.kernel
def test_install_and_uninstall_touch_only_our_key(kernel_audit: None, audit_key: str) -> None:
    foreign = ["-a", "always,exit", "-F", "arch=b64", "-S", "chmod", "-k", audit_key + "-foreign"]
    subprocess.run(["auditctl", *foreign], check=True, capture_output=True)
    try:
        added = audit_rules.install({"execve", "execveat", "socket", "connect"}, audit_key)
        assert len(added) == 4
        listed = audit_rules.installed_rules(audit_key)
        assert len(listed) == 4
        assert any("arch=b32 -S socketcall -F a0=0x3" in line for line in listed)
        # installing again replaces, never duplicates
        audit_rules.install({"execve", "execveat", "socket", "connect"}, audit_key)
        assert len(audit_rules.installed_rules(audit_key)) == 4
        removed = audit_rules.uninstall(audit_key)
        assert len(removed) == 4
        assert audit_rules.installed_rules(audit_key) == []
        out = subprocess.run(["auditctl", "-l"], capture_output=True, text=True, check=True).stdout
        assert f"key={audit_key}-foreign" in out  # somebody else's rule survived
    finally:
        subprocess.run(["auditctl", "-d", *foreign[1:]], capture_output=True)
        audit_rules.uninstall(audit_key)


def test_cli_write_and_print(tmp_path: Path) -> None:
    import stat
    import sys

    target = tmp_path / "50-auditeql.rules"
    out = subprocess.run([sys.executable, "-m", "auditeql.cli", "audit-rules", "--write", str(target), "--key", "k1",
                          "--syscall", "openat"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = target.read_text()
    assert "-a always,exit -F arch=b64 -S connect,execve,execveat,openat,socket -k k1" in text
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    printed = subprocess.run([sys.executable, "-m", "auditeql.cli", "audit-rules", "--key", "k1", "--syscall", "openat"],
                             capture_output=True, text=True, timeout=60).stdout
    assert printed == text
    bad = subprocess.run([sys.executable, "-m", "auditeql.cli", "audit-rules", "--key", "no spaces"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "key" in bad.stderr
