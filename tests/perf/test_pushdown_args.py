"""Push-down on the syscall argument registers (``auditd.data.a0``–``a3``) is exact.

The seed rule's socket stage requires ``auditd.data.a1 == "2"`` (SOCK_DGRAM); deciding it on the
raw SYSCALL line halves the socket candidates and, through the join-key semi-join, the documents a
scan builds. A register is only read when the line holds its key once, as lower-case hex, with no
``msg=`` (whose nested pairs the record parser merges); otherwise its atoms count as true. These
tests pin each of those cases against the full path (every document, in order, with stand-ins
built: ``fuzz/targets.check_pushdown``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "fuzz"))

import targets  # noqa: E402

from auditeql.rules import load_rules  # noqa: E402
from auditeql.rules.pushdown import PushDown  # noqa: E402

SEED = ROOT / "src/auditeql/rules/builtin/execution_shell_via_udp_cli_utility_linux.toml"
ARGS_RULE = Path(__file__).parent / "rules" / "seq_socket_args.toml"

_SYS = ("type=SYSCALL msg=audit(1795961275.{ms:03d}:{serial}): arch=c000003e syscall={nr} success=yes exit=3 "
        "a0={a0} a1={a1} a2=0 a3=0 items=0 ppid=10 pid={pid} auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 "
        "sgid=0 fsgid=0 tty=(none) ses=1 comm=\"{comm}\" exe=\"/usr/bin/{comm}\" key=(null)")


def _seed_pd() -> PushDown:
    return PushDown.from_rules(load_rules([str(SEED)], [], builtin=False), defer=True)


def test_argument_atoms_are_found() -> None:
    pd = _seed_pd()
    assert pd.arg_bits == 0b010, "the seed rule's socket stage (filter 1) reads auditd.data.a1"
    both = PushDown.from_rules(load_rules([str(SEED), str(ARGS_RULE)], [], builtin=False), defer=True)
    assert both.arg_bits == 0b11010


@pytest.mark.parametrize(
    "a1, kept",
    [
        (b"2", True),
        (b"1", False),  # SOCK_STREAM: the seed rule's socket stage cannot match
        (b"80002", False),
        (b"2 a1=1", True),  # the key twice: unknown (the record keeps the last one)
        (b"0X2", True),  # not the kernel's hex: unknown
        (b"2 note=msg=x", True),  # a msg= somewhere: unknown
        (b'1 x="y"a1=2', True),  # a second a1= the splitter finds without a space: unknown
        (b"1 x=y\ta1=2", True),  # the same after a tab
    ],
)
def test_refine_mask_reads_a1_only_when_certain(a1: bytes, kept: bool) -> None:
    pd = _seed_pd()
    mask = pd.decide_mask("socket", "bash")
    assert mask & 0b010
    body = _SYS.format(ms=1, serial=1, nr=41, a0="2", a1=a1.decode(), pid=5, comm="bash").encode()
    assert bool(pd.refine_mask(mask, body) & 0b010) is kept
    assert pd.refine_mask(mask, body) & ~0b010 == mask & ~0b010, "other filters untouched"


def _log(*lines: str) -> bytes:
    return "\n".join(lines).encode() + b"\n"


@pytest.mark.parametrize("a1", ["2", "1", "80002", "2 a1=1", "1 a1=2", "0X2", "2 msg='a1=1'", "1 msg=a1=2",
                                "1 x=\"y\"a1=2", "1 x=y\ta1=2", "1 m='x a1=2'", "1 o=' a1=2 '"])
@pytest.mark.parametrize("rules", ["seed", "all"])
def test_same_documents_with_and_without_pushdown(a1: str, rules: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shell's socket + connect, then other events, for each spelling of a1: every document (and
    every stand-in's document) is what the full path builds, in the same order. With the seed rule
    alone a wrong a1 decision would skip the socket event (with the test rules too, other filters
    keep it)."""
    data = _log(
        _SYS.format(ms=1, serial=1, nr=59, a0="55d0", a1="55e0", pid=5, comm="bash"),
        'type=PROCTITLE msg=audit(1795961275.001:1): proctitle="bash"',
        _SYS.format(ms=2, serial=2, nr=41, a0="2", a1=a1, pid=5, comm="bash"),
        'type=PROCTITLE msg=audit(1795961275.002:2): proctitle="bash"',
        _SYS.format(ms=3, serial=3, nr=42, a0="3", a1="7ffd", pid=5, comm="bash"),
        "type=SOCKADDR msg=audit(1795961275.003:3): saddr=02000035C633640A0000000000000000",
        'type=PROCTITLE msg=audit(1795961275.003:3): proctitle="bash"',
        _SYS.format(ms=4, serial=4, nr=41, a0="a", a1="2", pid=6, comm="python3"),
        'type=PROCTITLE msg=audit(1795961275.004:4): proctitle="python3"',
    )
    targets.warm_up()
    if rules == "seed":
        seed = load_rules([str(SEED)], [], builtin=False)
        preds = [f.predicate for r in seed for f in targets._filters(r.plan)]
        monkeypatch.setattr(targets, "_PUSHDOWN", (PushDown.from_rules(seed, defer=True), preds))
    targets.check_pushdown(data)
