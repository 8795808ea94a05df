"""Drop, at the SYSCALL header, events that no loaded rule can match (watch's push-down).

The normalizer asks ``keep(record_type, arch, syscall)`` before it parses an event (see
:mod:`auditeql.audit.pipeline`). When every filter of every rule names the syscalls it needs
(:func:`auditeql.watch.audit_rules.derive_needs`), any other syscall — and any event without a
SYSCALL record — cannot match, so it is skipped before parsing: on a busy machine most audit
events are someone else's (other tools' audit rules), and skipping them is most of the saving.
When some filter's needs are unknown, everything is kept (correctness first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auditeql.audit import tables
from auditeql.watch.audit_rules import derive_needs


class SyscallKeep:
    """A mutable keep-policy: :meth:`update` after a rule reload; ``syscalls is None`` keeps all."""

    def __init__(self, rules: Sequence[Any] = ()) -> None:
        self.syscalls: frozenset[str] | None = None
        if rules:
            self.update(rules)

    def update(self, rules: Sequence[Any]) -> None:
        needs = derive_needs(rules)
        self.syscalls = None if needs.unknown else needs.syscalls

    def __call__(self, record_type: int, arch: str | None, syscall: str | None) -> bool:
        wanted = self.syscalls
        if wanted is None:
            return True
        if record_type != tables.SYSCALL:
            return False
        return syscall in wanted
