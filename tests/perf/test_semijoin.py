"""The join-key semi-join of ``scan`` (auditeql.rules.semijoin): exact, and really narrowing.

Alerts must be byte-identical with and without push-down in both census modes (inputs held in
memory, and inputs read twice), also when some matches only show up as built documents in the
census (events written with a ``node=`` prefix), and the census must really leave
out most candidates on the corpus (otherwise these comparisons would prove nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditeql.audit.host import HostInfo
from auditeql.cli import main as cli
from auditeql.rules import load_rules
from auditeql.rules.pushdown import PushDown
from auditeql.rules.semijoin import SemiJoin
from auditeql.sources import files
from tests.perf.conftest import split_events

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = sorted((ROOT / "src" / "auditeql" / "rules" / "builtin").glob("*.toml"))
SEED = next(p for p in BUILTIN if p.stem == "execution_shell_via_udp_cli_utility_linux")
EXTRA = Path(__file__).parent / "rules"


@pytest.fixture(scope="module")
def logs(tmp_path_factory, corpus_lines: list[bytes]) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("sj")
    lines = corpus_lines
    plain = d / "corpus.log"
    plain.write_bytes(b"".join(lines))
    late = d / "connect-from-node.log"
    late.write_bytes(b"".join(_node_prefixed(lines, b" syscall=42 ")))
    return {"corpus": plain, "late": late}


def _node_prefixed(lines: list[bytes], which: bytes) -> list[bytes]:
    """The corpus with every record of the events whose SYSCALL record holds ``which`` written
    with a ``node=`` prefix (as a forwarding auditd writes them): such events are not "plain" for
    push-down and reach the census as built documents (same host.id, so they still join)."""
    events = split_events(lines)
    out: list[bytes] = []
    for ev in events:
        if ev[0].startswith(b"type=SYSCALL ") and which in ev[0]:
            ev = [b"node=relay " + x for x in ev]
        out.extend(ev)
    return out


def _scan(args: list[str]) -> list[dict]:
    result = CliRunner().invoke(cli, ["scan", "--no-store", "--format", "ndjson", "--host-id", "sj-host", "-q", *args])
    assert result.exit_code in (0, 1), result.output
    return [json.loads(x) for x in result.stdout.splitlines() if x.strip()]


def _census_stats(rule_files: list[Path], path: Path) -> dict:
    rules = load_rules([str(p) for p in rule_files], [], builtin=False)
    pd = PushDown.from_rules(rules, defer=True, semijoin=True)
    stats: dict = {}
    for _ in files.read_documents([str(path)], host=HostInfo.detect(host_id="sj-host"), pushdown=pd, stats=stats):
        pass
    return stats.get("semijoin", {})


RULES = [SEED, EXTRA / "seq_socket_connect.toml", EXTRA / "seq_missing_until.toml", EXTRA / "sample_syscall_in.toml"]


@pytest.mark.parametrize("mode", ["hold", "count"])
@pytest.mark.parametrize("recording", ["corpus", "late"])
@pytest.mark.parametrize("rule", RULES, ids=lambda p: p.stem)
def test_same_alerts_as_without_pushdown(rule: Path, recording: str, mode: str, logs, monkeypatch) -> None:
    if mode == "count":
        monkeypatch.setattr(files, "HOLD_LIMIT", 0)  # read twice, as for inputs too big to hold
    args = ["--no-builtin", "--rule", str(rule), str(logs[recording])]
    fast = _scan(args)
    assert fast == _scan([*args, "--no-pushdown"])
    if rule == SEED:
        assert len(fast) >= 36, "the seed rule alerts on 9 scenarios of this corpus"


def test_census_really_narrows(logs) -> None:
    st = _census_stats([SEED], logs["corpus"])
    assert st["candidates"] > 0
    # most execve-of-a-shell candidates belong to processes that never open a UDP socket
    assert st["not_needed"] > 0.7 * st["candidates"], st


def test_late_syscall_events_reach_the_census_as_documents(logs) -> None:
    st = _census_stats([SEED], logs["late"])
    assert st["documents"] > _census_stats([SEED], logs["corpus"])["documents"], st


def test_all_rules_together_both_modes(logs, monkeypatch) -> None:
    args = ["--all-builtin", *[a for p in RULES[1:] for a in ("--rule", str(p))], str(logs["corpus"])]
    held = _scan(args)
    monkeypatch.setattr(files, "HOLD_LIMIT", 0)
    counted = _scan(args)
    assert held == counted == _scan([*args, "--no-pushdown"])
    assert held


# -- the key logic on its own --------------------------------------------------------------------


def _join(query: str) -> SemiJoin | None:
    from auditeql.rules.loader import parse_rule

    text = (EXTRA / "seq_socket_connect.toml").read_text()
    head = text[: text.index("query = ")]
    quotes = "'" * 3
    return SemiJoin.from_rules([parse_rule(f"{head}query = {quotes}\n{query}\n{quotes}\n")])


def test_rules_keyed_on_fields_a_syscall_line_lacks_are_not_narrowed() -> None:
    assert _join('sample by user.id [process where true] [network where true]') is None
    assert _join('sample by host.id, ?process.pid [process where true] [network where true]') is None
    assert _join('process where process.name == "bash"') is None
    assert _join('sample by host.id, process.pid [process where true] [network where true]') is not None


def test_keys_must_be_seen_by_every_stage_and_conflicting_headers_are_kept() -> None:
    sj = _join('sample by host.id, process.pid [process where true] [network where true]')
    assert sj is not None
    sj.note_raw(b"1.000:1", 0b01, ("h", 10, 1))   # stage 1 only, key (h, 10)
    sj.note_raw(b"1.000:2", 0b10, ("h", 10, 2))   # stage 2, same (host, pid) projection
    sj.note_raw(b"1.000:3", 0b01, ("h", 11, 1))   # stage 1 only: pid 11 never reaches stage 2
    sj.note_raw(b"1.000:4", 0b01, ("h", 12, 1))
    sj.note_raw(b"1.000:4", 0b01, ("h", 13, 1))   # the same header twice, different keys
    sj.note_document({"host": {"id": "h"}, "process": {"pid": 14}, "event": {"category": ["network"]}})
    sj.note_raw(b"1.000:5", 0b01, ("h", 14, 1))   # completed by a built document of stage 2
    sj.finish()
    assert not sj.skips(b"1.000:1", 0b01, ("h", 10, 1))
    assert not sj.skips(b"1.000:2", 0b10, ("h", 10, 2))
    assert sj.skips(b"1.000:3", 0b01, ("h", 11, 1))
    assert not sj.skips(b"1.000:3", 0b01, ("h", 99, 1)), "a different raw key than counted is never skipped"
    assert not sj.skips(b"1.000:4", 0b01, ("h", 12, 1))
    assert not sj.skips(b"1.000:5", 0b01, ("h", 14, 1))
