"""Push-down is exact: every rule gives the same alerts with and without it, on real recordings.

Runs the real ``auditeql scan`` (in-process, NDJSON alerts, no store) twice per (rule, recording)
— once as shipped, once with ``--no-pushdown`` — and compares the alert documents byte for byte,
including auditeql's process ancestry (which push-down feeds lazily). Recordings: the shared
corpus (kernel audit + auditd, ENRICHED), the small fixtures, and an adversarial variant of the
corpus whose events' records are interleaved, as concurrent CPUs produce them. Each test also
checks that push-down really skipped events, so a no-op push-down cannot pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditeql.cli import main as cli
from auditeql.rules.pushdown import PushDown
from tests.perf.conftest import split_events

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = sorted((ROOT / "src" / "auditeql" / "rules" / "builtin").glob("*.toml"))
EXTRA = sorted((Path(__file__).parent / "rules").glob("*.toml"))
#: Rules that read every execve/socket/connect event: on this corpus (which records only those)
#: push-down can skip nothing for them, so only the equality is checked.
NOTHING_TO_SKIP = {"auditeql_udp_relay_tool_remote_connect", "auditeql_udp_reverse_shell_socket_handoff"}
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "audit").glob("*.log"))


@pytest.fixture(scope="module")
def recordings(tmp_path_factory, corpus_lines: list[bytes]) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rec")
    lines = corpus_lines
    plain = d / "corpus.log"
    plain.write_bytes(b"".join(lines))
    out = {"corpus": plain, "interleaved": d / "interleaved.log"}
    out["interleaved"].write_bytes(b"".join(_interleave(lines)))
    for f in FIXTURES:
        out[f.stem] = f
    return out


def _interleave(lines: list[bytes]) -> list[bytes]:
    """Pairs of consecutive events with their records alternated (SYSCALL lines stay first)."""
    events = split_events(lines)
    out: list[bytes] = []
    for i in range(0, len(events) - 1, 2):
        a, b = events[i], events[i + 1]
        out.append(a[0])
        out.append(b[0])
        rest_a, rest_b = a[1:], b[1:]
        for j in range(max(len(rest_a), len(rest_b))):
            if j < len(rest_a):
                out.append(rest_a[j])
            if j < len(rest_b):
                out.append(rest_b[j])
    if len(events) % 2:
        out.extend(events[-1])
    return out


def _scan(args: list[str]) -> tuple[list[dict], str]:
    result = CliRunner().invoke(cli, ["scan", "--no-store", "--format", "ndjson", "--host-id", "perf-host", *args])
    assert result.exit_code in (0, 1), result.output
    alerts = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return alerts, result.stderr


def _both(rule_args: list[str], path: Path, flavor: str = "auditd-manager") -> tuple[list[dict], list[dict]]:
    args = [*rule_args, "--flavor", flavor, "-q", str(path)]
    fast, _ = _scan(args)
    slow, _ = _scan([*args, "--no-pushdown"])
    return fast, slow


def _skipped(rule_files: list[Path], path: Path) -> int:
    from auditeql.audit.host import HostInfo
    from auditeql.rules import load_rules
    from auditeql.sources.files import read_documents

    rules = load_rules([str(p) for p in rule_files], [], builtin=False)
    pd = PushDown.from_rules(rules, defer=True)
    if not pd.active:
        return 0
    stats: dict = {}
    for _ in read_documents([str(path)], host=HostInfo.detect(host_id="perf-host"), pushdown=pd, stats=stats):
        pass
    return stats.get("pushdown_skipped_events", 0)


SEED = next(p for p in BUILTIN if p.stem == "execution_shell_via_udp_cli_utility_linux")


@pytest.mark.parametrize(
    "rule, recording",
    [(r, "corpus") for r in BUILTIN + EXTRA] + [(SEED, "interleaved"), (EXTRA[0], "interleaved")],
    ids=lambda v: getattr(v, "stem", v),
)
def test_same_alerts_with_and_without_pushdown(rule: Path, recording: str, recordings: dict[str, Path]) -> None:
    fast, slow = _both(["--no-builtin", "--rule", str(rule)], recordings[recording])
    assert fast == slow
    if rule.stem == "execution_shell_via_udp_cli_utility_linux":
        assert len(fast) > 0, "the seed rule alerts on this corpus; an empty result proves nothing"
    if rule.stem not in NOTHING_TO_SKIP:
        assert _skipped([rule], recordings[recording]) > 0, "push-down skipped nothing: the comparison would be vacuous"


@pytest.mark.parametrize("recording, flavor", [("corpus", "auditbeat"), ("interleaved", "auditd-manager")])
def test_all_rules_together(recording: str, flavor: str, recordings: dict[str, Path]) -> None:
    args = ["--all-builtin"] + [a for p in EXTRA for a in ("--rule", str(p))]
    fast, slow = _both(args, recordings[recording], flavor)
    assert fast == slow
    assert len(fast) > 0


@pytest.mark.parametrize("fixture", [f.stem for f in FIXTURES])
def test_fixtures(fixture: str, recordings: dict[str, Path]) -> None:
    for rule in BUILTIN + EXTRA:
        fast, slow = _both(["--no-builtin", "--rule", str(rule)], recordings[fixture])
        assert fast == slow, rule.stem


def test_ancestry_of_skipped_parents_is_kept(recordings: dict[str, Path]) -> None:
    """The seed rule's alerts name parents whose exec push-down skipped (built lazily, same text)."""
    fast, slow = _both(["--no-builtin", "--rule", str(SEED)], recordings["corpus"])
    parents = [a for doc in fast for a in doc.get("auditeql.ancestry", []) if a.get("exec") and a.get("command_line")]
    assert parents, "expected exec'd ancestors with command lines in the alerts"
    assert fast == slow
