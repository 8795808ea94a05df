"""Kernel audit plumbing for the emulation: our own audit rules, and a background record reader.

:class:`AuditRules` adds the syscall rules the emulation needs under its own key
(``aeq_emulate``) and deletes exactly those rules afterwards (``auditctl -d`` with the same
spec; never ``auditctl -D``, which would delete other people's rules). :class:`RecordCollector`
reads the audit multicast stream (:class:`auditeql.sources.netlink.NetlinkSource`) in a thread
and keeps ``(type, payload)`` pairs, which ``--check`` feeds to the normalizer and ``--record``
writes out as an audit.log.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

KEY = "aeq_emulate"

#: Syscalls the emulation audits: the seed rule's three, plus dup2/dup3 (the second rule and the
#: design recordings use them). Both ABIs; socket() only for AF_INET (2) and AF_INET6 (10).
DEFAULT_SPECS: tuple[tuple[str, ...], ...] = tuple(
    spec
    for arch in ("b64", "b32")
    for spec in (
        ("-a", "always,exit", "-F", f"arch={arch}", "-S", "execve,execveat"),
        ("-a", "always,exit", "-F", f"arch={arch}", "-S", "socket", "-F", "a0=2"),
        ("-a", "always,exit", "-F", f"arch={arch}", "-S", "socket", "-F", "a0=10"),
        ("-a", "always,exit", "-F", f"arch={arch}", "-S", "connect"),
        ("-a", "always,exit", "-F", f"arch={arch}", "-S", "dup2,dup3"),
    )
)


def specs_for_rules(rules: Sequence[object]) -> list[tuple[str, ...]]:
    """The audit rules ``auditeql audit-rules`` would install for ``rules`` (without their key).

    Using the same derivation as the real deployment means the matrix shows what a user who ran
    ``audit-rules --install`` gets. Falls back to :data:`DEFAULT_SPECS` when nothing is derived.
    """
    from auditeql.watch.audit_rules import derive_needs, rule_lines

    syscalls = derive_needs(rules).syscalls
    if not syscalls:
        return list(DEFAULT_SPECS)
    specs = []
    for line in rule_lines(syscalls, key=KEY):
        words = line.split()
        if "-k" in words:
            words = words[: words.index("-k")]
        specs.append(tuple(words))
    return specs


class AuditRuleError(RuntimeError):
    """auditctl refused a rule; the message carries its complaint."""


def _auditctl(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["auditctl", *args], capture_output=True, text=True)


@dataclass
class AuditRules:
    """Context manager: add ``specs`` (auditctl argument lists, without ``-k``) with our key."""

    specs: Sequence[Sequence[str]] = DEFAULT_SPECS
    key: str = KEY
    backlog: int = 8192
    added: list[list[str]] = field(default_factory=list)
    _was_enabled: str | None = None

    def __enter__(self) -> AuditRules:
        status = _auditctl(["-s"])
        if status.returncode != 0:
            raise AuditRuleError(f"auditctl -s failed: {status.stderr.strip()} (is the kernel audit available? are you root?)")
        fields = dict(line.split(" ", 1) for line in status.stdout.splitlines() if " " in line)
        self._was_enabled = fields.get("enabled")
        if self._was_enabled == "0":
            _auditctl(["-e", "1"])
        try:
            if int(fields.get("backlog_limit", "0")) < self.backlog:
                _auditctl(["-b", str(self.backlog)])
        except ValueError:
            pass
        try:
            for spec in self.specs:
                rule = [*spec, "-k", self.key]
                proc = _auditctl(rule)
                if proc.returncode != 0:
                    if "exists" in proc.stderr:
                        continue  # an identical rule (ours from a crashed run) is already there
                    raise AuditRuleError(f"auditctl {' '.join(rule)}: {proc.stderr.strip()}")
                self.added.append(rule)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for rule in reversed(self.added):
            delete = ["-d" if a == "-a" else a for a in rule]
            _auditctl(delete)
        self.added.clear()
        if self._was_enabled == "0":
            _auditctl(["-e", "0"])
            self._was_enabled = None


def remove_leftover_rules(key: str = KEY) -> int:
    """Delete rules carrying our key that a killed run left behind; returns how many."""
    listing = _auditctl(["-l"]).stdout.splitlines()
    n = 0
    for line in listing:
        if f"-F key={key}" in line or f"-k {key}" in line:
            args = line.split()
            args = ["-d" if a == "-a" else a for a in args]
            if _auditctl(args).returncode == 0:
                n += 1
    return n


class RecordCollector:
    """Read audit records from the kernel in a background thread until ``stop()``.

    With ``on_batch`` every batch is handed to it (in the reader thread) instead of being kept.
    """

    def __init__(self, on_batch: Callable[[list[tuple[int, bytes]]], object] | None = None) -> None:
        from auditeql.sources.netlink import NetlinkSource

        self._source = NetlinkSource()
        self._on_batch = on_batch
        self.records: list[tuple[int, bytes]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> RecordCollector:
        self._thread.start()
        return self

    def _handle(self, batch: list[tuple[int, bytes]]) -> None:
        if self._on_batch is not None:
            try:
                self._on_batch(batch)
            except Exception as exc:  # keep reading: one bad batch must not stop the check
                self.errors.append(f"{type(exc).__name__}: {exc}")
        else:
            with self._lock:
                self.records.extend(batch)

    def _loop(self) -> None:
        while not self._stop.is_set():
            batch = self._source.read(timeout=0.1)
            if batch:
                self._handle(batch)

    def snapshot(self) -> list[tuple[int, bytes]]:
        with self._lock:
            return list(self.records)

    def stop(self) -> list[tuple[int, bytes]]:
        self._stop.set()
        self._thread.join(timeout=5)
        while True:  # drain what is still queued in the socket
            batch = self._source.read(timeout=0)
            if not batch:
                break
            self._handle(batch)
        self._source.close()
        return self.records

    @property
    def overflows(self) -> int:
        return self._source.overflows


def _type_names() -> dict[int, str]:
    text = resources.files("auditeql.audit").joinpath("tables/record_types.json").read_text()
    return {int(k): v for k, v in json.loads(text).items()}


def to_log_lines(records: Iterable[tuple[int, bytes]]) -> list[bytes]:
    """Netlink records as audit.log lines (``type=NAME msg=audit(…): …``), auditd's RAW format."""
    names = _type_names()
    out = []
    for rtype, payload in records:
        name = names.get(rtype, f"UNKNOWN[{rtype}]")
        out.append(b"type=" + name.encode() + b" msg=" + payload)
    return out


def write_log(records: Iterable[tuple[int, bytes]], path: Path) -> int:
    """Write ``records`` as an audit.log (``.gz`` compressed when the name says so)."""
    lines = to_log_lines(records)
    data = b"\n".join(lines) + b"\n"
    if path.suffix == ".gz":
        import gzip

        data = gzip.compress(data)
    path.write_bytes(data)
    return len(lines)
