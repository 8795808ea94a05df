"""``auditeql query`` end to end: real files (plain, .gz, stdin), real subprocesses."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

CORPUS = Path(__file__).resolve().parents[0] / "fixtures" / "udp-shells-1" / "auditbeat_oracle.ndjson.gz"
SEED = Path(__file__).resolve().parent / "fixtures" / "spec" / "seed-rule.md"


class Result:
    def __init__(self, returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run(*args: str, stdin: bytes | None = None) -> Result:
    """In-process through click's CliRunner (fast); see ``run_process`` for the real thing."""
    from click.testing import CliRunner

    from auditeql.cli import main

    r = CliRunner().invoke(main, ["query", *args], input=stdin)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Result(r.exit_code, r.stdout_bytes, r.stderr_bytes)


def run_process(*args: str, stdin: bytes | None = None) -> Result:
    p = subprocess.run(
        [sys.executable, "-m", "auditeql.cli", "query", *args], input=stdin, capture_output=True, timeout=120
    )
    return Result(p.returncode, p.stdout, p.stderr)


def write_ndjson(path: Path, docs: list) -> Path:
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    return path


def ev(i: int, ts: int, cat: str = "process", **extra: object) -> dict:
    return {"@timestamp": ts, "id": i, "event": {"category": cat}, **extra}


@pytest.fixture()
def events_file(tmp_path: Path) -> Path:
    # input order differs from time order; equal timestamps keep input order
    docs = [ev(1, 30, name="a"), ev(2, 10, name="b"), ev(3, 20, name="a"), ev(4, 20, name="c"), ev(5, 5, "network", name="a")]
    return write_ndjson(tmp_path / "events.ndjson", docs)


def ids(out: bytes) -> list[int]:
    return [orjson.loads(line)["id"] for line in out.splitlines()]


def test_event_query_orders_by_timestamp_then_input(events_file: Path) -> None:
    r = run("process where true", str(events_file))
    assert r.returncode == 0, r.stderr
    assert ids(r.stdout) == [2, 3, 4, 1]


@pytest.mark.parametrize(
    "args,expected",
    [
        (["process where true | head 2"], [2, 3]),
        (["process where true | tail 2"], [4, 1]),
        (["--size", "3", "process where true"], [2, 3, 4]),
        (["--size", "2", "process where true | tail 1"], [1]),  # size: implicit first limit, in tail's direction
        (["any where name == \"a\""], [5, 3, 1]),
    ],
)
def test_pipes_and_size(events_file: Path, args: list[str], expected: list[int]) -> None:
    r = run(*args, str(events_file))
    assert r.returncode == 0, r.stderr
    assert ids(r.stdout) == expected


def test_tiebreaker_field(tmp_path: Path) -> None:
    f = write_ndjson(tmp_path / "t.ndjson", [ev(1, 10, seq=2), ev(2, 10, seq=1), ev(3, 10)])
    r = run("--tiebreaker-field", "seq", "process where true", str(f))
    assert ids(r.stdout) == [2, 1, 3]  # null tiebreaker sorts last


def test_documents_are_printed_exactly_as_read(tmp_path: Path) -> None:
    raw = b'{"@timestamp": 1, "event": {"category": "process"},   "x": "caf\\u00e9", "y": 1.50}\n'
    f = tmp_path / "raw.ndjson"
    f.write_bytes(raw)
    r = run('process where x == "café"', str(f))
    assert r.stdout == raw  # \u escapes kept, the pre-filter did not skip the line


def test_gzip_and_stdin_and_multiple_files(tmp_path: Path, events_file: Path) -> None:
    gz = tmp_path / "more.ndjson.gz"
    gz.write_bytes(gzip.compress(orjson.dumps(ev(9, 1, name="z")) + b"\n"))
    r = run("process where true", str(events_file), str(gz))
    assert ids(r.stdout) == [9, 2, 3, 4, 1]
    r = run_process("process where true", "-", stdin=events_file.read_bytes())
    assert ids(r.stdout) == [2, 3, 4, 1]
    r = run_process("process where true", stdin=gzip.compress(events_file.read_bytes()))
    assert ids(r.stdout) == [2, 3, 4, 1]


def test_bad_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    f = tmp_path / "bad.ndjson"
    f.write_bytes(
        orjson.dumps(ev(1, 1)) + b"\n{not json\n" + b"[1, 2]\n\n" + b"\xff\xfe garbage\n" + orjson.dumps(ev(2, 2)) + b"\n"
    )
    r = run("process where true", str(f))
    assert r.returncode == 0
    assert ids(r.stdout) == [1, 2]
    err = r.stderr.decode()
    assert f"{f}:2:" in err and f"{f}:3:" in err and f"{f}:5:" in err
    assert "3 unreadable line(s)" in err


def test_truncated_gzip_keeps_the_lines_before(tmp_path: Path) -> None:
    data = gzip.compress(b"".join(orjson.dumps(ev(i, i)) + b"\n" for i in range(1, 2001)))
    f = tmp_path / "cut.ndjson.gz"
    f.write_bytes(data[: len(data) * 2 // 3])
    r = run("--size", "5000", "process where true", str(f))
    got = ids(r.stdout)
    assert got and got == list(range(1, len(got) + 1))
    assert b"input ends early" in r.stderr


def test_missing_file_is_an_error_but_other_files_are_read(tmp_path: Path, events_file: Path) -> None:
    r = run("process where true", str(tmp_path / "nope.ndjson"), str(events_file))
    assert r.returncode == 1
    assert ids(r.stdout) == [2, 3, 4, 1]
    assert b"cannot read" in r.stderr


@pytest.mark.parametrize(
    "query,where",
    [("process where name = 1", "line 1:20:"), ("process where\n  name == 'x'", "line 2:11"), ("sequence [a where true]", "line 1:1")],
)
def test_invalid_query_exits_2_with_position(events_file: Path, query: str, where: str) -> None:
    r = run_process(query, str(events_file))
    assert r.returncode == 2
    assert r.stdout == b""
    assert where in r.stderr.decode()
    assert b"Traceback" not in r.stderr


def test_sequence_output_shape_with_missing_slot(tmp_path: Path) -> None:
    docs = [
        {"@timestamp": 1, "id": 1, "tag": "normal", "u": "x"},
        {"@timestamp": 2, "id": 2, "tag": "normal", "u": "x"},
        {"@timestamp": 3, "id": 3, "tag": "missing", "u": "x"},
        {"@timestamp": 4, "id": 4, "tag": "normal", "u": "x"},
    ]
    f = write_ndjson(tmp_path / "seq.ndjson", docs)
    r = run(
        'sequence by u with maxspan=1s [any where tag == "normal"] ![any where tag == "nonexisting"] [any where tag == "normal"]',
        str(f),
    )
    assert r.returncode == 0, r.stderr
    rows = [orjson.loads(line) for line in r.stdout.splitlines()]
    assert [row["join_keys"] for row in rows] == [["x"], ["x"]]
    assert [[e.get("id", -1) if not e.get("missing") else -1 for e in row["events"]] for row in rows] == [[1, -1, 2], [2, -1, 4]]
    assert rows[0]["events"][1] == {"missing": True}


def test_sample_with_max_samples_per_key(tmp_path: Path) -> None:
    docs = [{"id": i, "host": "a", "x": 1, "y": 1} for i in (1, 2)]
    f = write_ndjson(tmp_path / "s.ndjson", docs)
    q = "sample by host [any where x == 1] [any where y == 1]"
    one = [orjson.loads(line) for line in run(q, str(f)).stdout.splitlines()]
    two = [orjson.loads(line) for line in run("--max-samples-per-key", "2", q, str(f)).stdout.splitlines()]
    assert len(one) == 1 and len(two) == 2
    assert sorted(tuple(e["id"] for e in s["events"]) for s in two) == [(1, 2), (2, 1)]


@pytest.mark.skipif(not CORPUS.exists() or not SEED.exists(), reason="shared corpus not available")
def test_seed_rule_on_the_real_recording(tmp_path: Path) -> None:
    """The oracle documents plus host fields: the seed rule alerts on the 9 scenarios of the README."""
    src = gzip.decompress(CORPUS.read_bytes()).splitlines()
    out = tmp_path / "oracle_host.ndjson"
    with out.open("wb") as fh:
        for line in src:
            doc = orjson.loads(line)
            doc["host"] = {"id": "h1", "os": {"type": "linux"}}
            fh.write(orjson.dumps(doc) + b"\n")
    query = SEED.read_text().split("```")[1]
    r = run("--size", "100", query, str(out))
    assert r.returncode == 0, r.stderr
    rows = [orjson.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 9
    names = sorted(row["events"][1]["process"]["name"] for row in rows)
    assert names == ["bash", "bash", "bash", "ksh", "lua5.4", "ncat", "openssl", "php", "socat"]
    for row in rows:
        assert row["join_keys"][0] == "h1"
        assert [e["event"]["category"] for e in row["events"]] == [["process"], ["process"], ["network"]]


def test_closed_pipe_ends_quietly(events_file: Path) -> None:
    big = events_file.parent / "big.ndjson"
    write_ndjson(big, [ev(i, i) for i in range(20000)])
    p = subprocess.run(
        f"{sys.executable} -m auditeql.cli query --size 100000 'process where true' {big} | head -n 1",
        shell=True, capture_output=True, timeout=120,
    )
    assert p.stdout.count(b"\n") == 1
    assert b"Traceback" not in p.stderr and b"BrokenPipe" not in p.stderr


@pytest.mark.parametrize("chunk_bytes", [64, 1000, 1 << 22])
def test_chunked_needle_search_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int) -> None:
    """Candidate lines = exactly the lines holding a needle or a \\u escape, with their numbers."""
    from auditeql.sources import ndjson

    monkeypatch.setattr(ndjson, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(ndjson, "CHUNK_MAX_SHARE", 1.0)
    lines = []
    for i in range(300):
        name = "needle" if i % 37 == 0 else ("caf\\u00e9" if i % 53 == 0 else f"n{i}")
        lines.append(b'{"i": %d, "name": "%s"}\n' % (i, name.encode()))
    f = tmp_path / "c.ndjson"
    f.write_bytes(b"".join(lines)[:-1])  # no final newline
    got = [(n, line) for _p, n, line in ndjson.iter_candidate_lines([str(f)], (b'"needle"',))]
    want = [(i + 1, line) for i, line in enumerate(lines) if b'"needle"' in line or b"\\u" in line]
    want.append((300, lines[-1]))  # an unterminated last line is always handed out (and parsed)
    assert got == want


def test_chunk_with_a_damaged_line_is_read_line_by_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from auditeql.sources import ndjson

    f = tmp_path / "d.ndjson"
    f.write_bytes(b'{"a": "x"}\n{"a": "trunc\n{"a": "needle"}\n')
    got = [n for _p, n, _l in ndjson.iter_candidate_lines([str(f)], (b'"needle"',))]
    assert got == [1, 2, 3]  # the damaged chunk is handed out whole, so line 2 gets reported
    msgs: list[str] = []
    docs = list(ndjson.read_ndjson_raw([str(f)], needles=(b'"needle"',), report=msgs.append))
    assert [d["a"] for d, _ in docs] == ["x", "needle"]
    assert len(msgs) == 1 and ":2:" in msgs[0]


def test_blank_and_crlf_lines_are_read_line_by_line(tmp_path: Path) -> None:
    from auditeql.sources import ndjson

    f = tmp_path / "b.ndjson"
    f.write_bytes(b'\n{"a": "needle"}\r\n\n{"a": "x"}\n{"a": "needle"}\n')
    docs = [d["a"] for d, _ in ndjson.read_ndjson_raw([str(f)], needles=(b'"needle"',), report=lambda m: None)]
    assert docs == ["needle", "x", "needle"]  # the chunk is not all {...} lines: nothing skipped
