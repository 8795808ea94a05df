"""Bounded fuzzing in CI: the properties of fuzz/targets.py on generated and seed inputs.

Two parts, < 60 s together: hypothesis (structured audit lines, byte soup, EQL built from the
grammar's pieces) and a short coverage-guided atheris run of every harness (``-runs=N`` from the
real-recording seeds). The long run (10 minutes per target) is documented in fuzz/README.md.
Crashes found by fuzzing are pinned in tests/fuzz/test_regressions.py.
"""

from __future__ import annotations

import gzip
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "fuzz"
sys.path.insert(0, str(FUZZ))

import targets  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "audit.log.gz"
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _real_lines() -> list[bytes]:
    if CORPUS.exists():
        return gzip.decompress(CORPUS.read_bytes()).splitlines()[:600]
    return sorted((ROOT / "tests" / "fixtures" / "audit").glob("*.log"))[0].read_bytes().splitlines()


REAL = _real_lines()

keys = st.sampled_from(["arch", "syscall", "success", "exit", "a0", "a1", "pid", "ppid", "comm", "exe", "key",
                        "saddr", "argc", "a0_len", "a0[0]", "item", "name", "proctitle", "msg", "res", "cwd", "auid"])
values = st.one_of(
    st.from_regex(r"[0-9a-fA-F]{0,24}", fullmatch=True),
    st.text(max_size=12).map(lambda s: '"' + s + '"'),
    st.sampled_from(["c000003e", "40000003", "59", "41", "42", "yes", "no", "(null)", "?", "-1", "'x'", "'msg=a=b'",
                     "0200D1C3CB007102000000000000000000", "\x1dENRICHED", "18446744073709551615"]),
)
types = st.sampled_from(["SYSCALL", "EXECVE", "PATH", "CWD", "PROCTITLE", "SOCKADDR", "EOE", "USER_CMD",
                         "CONFIG_CHANGE", "UNKNOWN[1420]", "BPRM_FCAPS", "AVC", "NOPE"])
headers = st.tuples(st.integers(0, 2**34), st.integers(0, 1200), st.integers(0, 2**33))


@st.composite
def audit_line(draw) -> bytes:
    t = draw(types)
    sec, ms, serial = draw(headers)
    kv = " ".join(f"{k}={v}" for k, v in draw(st.lists(st.tuples(keys, values), max_size=8)))
    node = draw(st.sampled_from(["", "node=h1 "]))
    return f"{node}type={t} msg=audit({sec}.{ms:03d}:{serial}): {kv}".encode("utf-8", "surrogateescape")


mutated_real = st.tuples(st.sampled_from(REAL), st.integers(0, 400), st.binary(max_size=6)).map(
    lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
)
line = st.one_of(audit_line(), mutated_real, st.binary(max_size=200))


@SETTINGS
@given(line)
def test_records_property(data: bytes) -> None:
    targets.check_records(data)


@SETTINGS
@given(st.lists(st.one_of(line, st.sampled_from(REAL)), max_size=25))
def test_normalizer_property(lines: list[bytes]) -> None:
    targets.check_normalizer(b"\n".join(lines))


@SETTINGS
@given(st.lists(st.one_of(line, st.sampled_from(REAL)), max_size=25))
def test_pushdown_property(lines: list[bytes]) -> None:
    targets.check_pushdown(b"\n".join(lines))


@SETTINGS
@given(st.lists(line, max_size=10))
def test_netlink_property(lines: list[bytes]) -> None:
    targets.check_netlink(b"\n".join(lines))


eql_tokens = st.sampled_from([
    "process", "network", "any", "where", "and", "or", "not", "sequence", "sample", "by", "with", "maxspan=5s",
    "until", "[", "]", "![", "(", ")", ",", "==", "!=", ":", "like~", "regex", "in", "in~", "<", ">=", "+", "%",
    "process.name", "?x.y", "a", "`weird field`", '"bash"', '"py*"', '"(a+)+b"', "1", "-2", "3.5", "null", "true",
    "cidrMatch(", "number(", "startsWith~(", "length(", "|", "head", "tail", "1", "runs=2", '"""raw"""',
])
eql_text = st.lists(eql_tokens, min_size=1, max_size=30).map(" ".join)


@SETTINGS
@given(st.one_of(eql_text, st.text(max_size=80)))
def test_eql_property(text: str) -> None:
    targets.check_eql(text.encode("utf-8", "surrogateescape"))


def test_eql_property_on_valid_queries() -> None:
    for q in [
        'process where process.name : ("bash", "py*") and not process.args in ("-c")',
        "sequence by host.id with maxspan=1m [process where true] by process.pid ![network where true] until [any where false]",
        'sample by a [any where a regex~ "(a+)+b"] [any where length(b) > 3 and b like~ "x?y*"]',
    ]:
        targets.check_eql(q.encode())


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed (x86_64 test extra)")
def test_atheris_short_run(tmp_path: Path) -> None:
    """A short coverage-guided run of the all-properties harness from real seeds: no crash."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    lines = REAL[:120]
    blobs = [bytes([0]) + b for b in lines[:30]]  # records
    blobs += [bytes([k]) + b"\n".join(lines[i : i + 10]) for k in (1, 2, 3) for i in range(0, 60, 10)]
    blobs += [bytes([4]) + q for q in (b'process where a == "b"', b"sequence [any where true] [any where false]")]
    for i, b in enumerate(blobs):
        (seeds / f"s{i}").write_bytes(b)
    work = tmp_path / "work"
    work.mkdir()
    res = subprocess.run(
        [sys.executable, str(FUZZ / "fuzz_all.py"), "-runs=1500", "-timeout=20", "-max_len=1500",
         f"-artifact_prefix={tmp_path}/crash-", str(work), str(seeds)],
        capture_output=True, text=True, timeout=180,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Done 1500 runs" in res.stderr
