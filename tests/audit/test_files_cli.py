"""sources.files.read_documents and `auditeql normalize`: formats, rotation order, stdin, errors."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from auditeql.audit.host import HostInfo
from auditeql.sources.files import InputError, expand_paths, read_documents

from .conftest import normalize_lines

HOST = HostInfo.fixed({"id": "h", "name": "h", "os": {"type": "linux"}})


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory, corpus_lines: list[bytes]) -> tuple[Path, list[bytes]]:
    """The corpus cut into an auditd rotated set: audit.log.2.gz (oldest), audit.log.1, audit.log."""
    d = tmp_path_factory.mktemp("rot")
    lines = corpus_lines[:6001]
    (d / "audit.log.2.gz").write_bytes(gzip.compress(b"".join(lines[:2000])))
    (d / "audit.log.1").write_bytes(b"".join(lines[2000:4001]))  # cuts an event across files
    (d / "audit.log").write_bytes(b"".join(lines[4001:]))
    return d, lines


def test_rotated_set_in_any_order_is_read_oldest_first(rotated) -> None:
    d, lines = rotated
    expected = normalize_lines(lines, "auditd-manager", HOST)
    for order in (["audit.log", "audit.log.1", "audit.log.2.gz"], ["audit.log.1", "audit.log.2.gz", "audit.log"]):
        stats: dict = {}
        docs = list(read_documents([str(d / p) for p in order], flavor="auditd-manager", host=HOST, stats=stats))
        assert docs == expected
        assert [Path(f["path"]).name for f in stats["files"]] == ["audit.log.2.gz", "audit.log.1", "audit.log"]
        assert stats["records"] == len(lines) and stats["events"] == len(expected)


def test_glob(rotated) -> None:
    d, lines = rotated
    docs = list(read_documents([str(d / "audit.log*")], flavor="auditbeat", host=HOST))
    assert docs == normalize_lines(lines, "auditbeat", HOST)
    with pytest.raises(InputError, match="no file matches"):
        list(read_documents([str(d / "nothing*")]))


def test_expand_paths_keeps_unrelated_order() -> None:
    assert expand_paths(["b.ndjson", "x/audit.log", "a.ndjson", "x/audit.log.3", "x/audit.log.10.gz"]) == [
        "b.ndjson", "x/audit.log.10.gz", "x/audit.log.3", "x/audit.log", "a.ndjson"]


def test_ndjson_is_autodetected_and_passed_through(tmp_path: Path, rotated) -> None:
    d, lines = rotated
    docs = normalize_lines(lines[:300], "auditd-manager", HOST)
    nd = tmp_path / "export.ndjson.gz"
    nd.write_bytes(gzip.compress(b"\n" + b"".join(orjson.dumps(x) + b"\n" for x in docs) + b"{bad json\n"))
    stats: dict = {}
    out = list(read_documents([str(nd)], stats=stats))
    assert out == docs and stats["ndjson_skipped"] == 1 and stats["files"][0]["kind"] == "ndjson"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        list(read_documents([str(tmp_path / "nope.log")]))
    with pytest.raises(InputError, match="is a directory"):
        list(read_documents([str(tmp_path)]))


def _cli(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "auditeql.cli", *args], input=stdin, capture_output=True, timeout=120)


def test_cli_normalize_files_and_summary(rotated) -> None:
    d, lines = rotated
    res = _cli(["normalize", "--flavor", "auditbeat", "--host-id", "abc", "--host-name", "srv1", str(d / "audit.log"), str(d / "audit.log.2.gz"), str(d / "audit.log.1")])
    assert res.returncode == 0, res.stderr
    docs = [orjson.loads(x) for x in res.stdout.splitlines()]
    expected = normalize_lines(lines, "auditbeat", HostInfo.detect(host_id="abc", host_name="srv1"))
    assert docs == expected
    assert all(x["host"] == {"id": "abc", "name": "srv1", "hostname": "srv1", "os": {"type": "linux"}} for x in docs)
    err = res.stderr.decode()
    assert f"{len(expected)} events" in err and f"{len(lines)} records" in err and "0 lines skipped" in err


def test_cli_normalize_stdin_with_garbage(rotated) -> None:
    d, lines = rotated
    data = b"".join(lines[:500]) + b"garbage line\n\xff\xfe\x00junk\n" + b"".join(lines[500:1000])
    res = _cli(["normalize"], stdin=data)
    assert res.returncode == 0, res.stderr
    docs = [orjson.loads(x) for x in res.stdout.splitlines()]
    assert docs == normalize_lines(lines[:1000], "auditd-manager", HostInfo.detect())
    assert "2 lines skipped (binary 1, not-audit 1)" in res.stderr.decode()


def test_cli_normalize_bad_path_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    res = _cli(["normalize", str(tmp_path / "missing.log")])
    assert res.returncode == 2 and b"no such file" in res.stderr and b"Traceback" not in res.stderr


def test_cli_query_accepts_raw_audit_logs(rotated, tmp_path: Path) -> None:
    d, lines = rotated
    q = 'process where auditd.data.syscall == "socket" and auditd.data.a1 == "2"'
    raw = _cli(["query", q, "--size", "100", str(d / "audit.log.2.gz"), str(d / "audit.log.1"), str(d / "audit.log")])
    assert raw.returncode == 0, raw.stderr
    nd = tmp_path / "docs.ndjson"
    nd.write_bytes(_cli(["normalize", str(d / "audit.log*")]).stdout)
    ref = _cli(["query", q, "--size", "100", str(nd)])
    raw_docs = [orjson.loads(x) for x in raw.stdout.splitlines()]
    assert raw_docs and raw_docs == [orjson.loads(x) for x in ref.stdout.splitlines()]
    assert all(x["auditd"]["data"]["a1"] == "2" and x["host"]["os"]["type"] == "linux" for x in raw_docs)


def test_query_reads_a_named_pipe_like_stdin(tmp_path: Path) -> None:
    """A pipe given as a path is read whole, as the same data on stdin (sources/pipes.py keeps the
    bytes read to detect its kind)."""
    import os
    import threading

    doc = b'{"@timestamp":"2026-11-29T14:00:00.000Z","event":{"category":["process"]},"process":{"pid":1}}\n'
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        try:
            with open(fifo, "wb") as fh:
                fh.write(doc * 50)
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    piped = _cli(["query", "--size", "1000", "process where true", str(fifo)])
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.count(b"\n") == 50
    taken = _cli(["query", "--size", "1000", "process where true", "-"], stdin=doc * 50)
    assert taken.returncode == 0
    assert taken.stdout == piped.stdout
