"""`auditeql.sources.pipes` in process, over real OS pipes: kind detection without losing bytes, the
spool (memory, then $TMPDIR), its failure, and `scan`'s census reading a spooled pipe twice."""

from __future__ import annotations

import errno
import gzip
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from auditeql.sources import files, pipes
from sources.pipe_kit import make_inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    return make_inputs(tmp_path_factory.mktemp("pipes-unit"))


@contextmanager
def os_pipe(pieces: list[bytes], pause: float = 0.0) -> Iterator[str]:
    """A real pipe fed by a thread, piece by piece (``pause`` between pieces); its /proc path."""
    r, w = os.pipe()

    def feed() -> None:
        try:
            for p in pieces:
                os.write(w, p) if len(p) < 65536 else _write_all(w, p)
                if pause:
                    time.sleep(pause)
        except BrokenPipeError:
            pass
        finally:
            os.close(w)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    try:
        yield f"/proc/self/fd/{r}"
    finally:
        os.close(r)
        t.join(10)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_all(stream) -> bytes:
    out = []
    while True:
        b = stream.read(1 << 16)
        if not b:
            return b"".join(out)
        out.append(b)


@pytest.mark.parametrize(
    "pieces,kind,gz",
    [
        ([b"{", b'"a": 1}\n'], "ndjson", False),
        ([b"\n", b"  \n", b"\t", b'{"a": 1}\n'], "ndjson", False),
        ([b"t", b"ype=SYSCALL msg=audit(1.000:1): x\n"], "audit", False),
        ([b""], "empty", False),
        ([b"\n\n  \n"], "empty", False),
    ],
)
def test_kind_from_the_first_bytes_and_nothing_lost(pieces: list[bytes], kind: str, gz: bool) -> None:
    with os_pipe(pieces, pause=0.01) as path, pipes.prepared([path]) as paths:
        assert paths == [path] and pipes.registered(path)
        assert pipes.kind(path) == (kind, gz)
        assert _read_all(pipes.open_stream(path)) == b"".join(pieces)
        with pytest.raises(OSError):
            pipes.open_stream(path)  # a pipe is handed out once
    assert not pipes.registered(path)


def test_gzip_magic_split_across_reads_and_blank_start(inputs) -> None:
    blob = gzip.compress(b"\n" * 200_000 + inputs["ndjson"].read_bytes()[:50_000])
    pieces = [blob[:1], blob[1:2], blob[2:9]] + [blob[i : i + 4096] for i in range(9, len(blob), 4096)]
    with os_pipe(pieces, pause=0.001) as path, pipes.prepared([path]) as paths:
        assert pipes.kind(paths[0]) == ("ndjson", True)
        assert _read_all(pipes.open_stream(path)) == blob


def test_files_input_kind_and_reader_use_the_registry(inputs) -> None:
    data = inputs["audit.gz"].read_bytes()
    want = list(files.read_documents([str(inputs["audit"])], host=_host()))
    with os_pipe([data]) as path:
        docs = list(files.read_documents([path], host=_host()))
    assert docs == want and len(want) > 1000


def _host():
    from auditeql.audit.host import HostInfo

    return HostInfo.detect(host_id="h1", host_name="h1")


@pytest.mark.parametrize("limit", [0, 1 << 16, 64 << 20], ids=["disk", "memory-then-disk", "memory"])
def test_spool_is_the_same_bytes_as_a_regular_file(inputs, tmp_path: Path, monkeypatch, limit: int) -> None:
    monkeypatch.setenv(pipes.SPOOL_MEMORY_ENV, str(limit))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = inputs["ndjson"].read_bytes()
    with os_pipe([data[i : i + 100_000] for i in range(0, len(data), 100_000)]) as path:
        with pipes.prepared([path], lambda kind, gz: kind == "ndjson") as paths:
            spooled = paths[0]
            assert spooled != path and pipes.display(spooled) == path and not pipes.registered(spooled)
            assert Path(spooled).read_bytes() == data and Path(spooled).read_bytes() == data  # re-readable
            target = os.readlink(spooled)
            assert target.startswith("/memfd:") if limit >= len(data) else target.startswith(str(tmp_path))
            assert os.stat(spooled).st_mode & 0o777 == 0o600 or target.startswith("/memfd:")
            fd = int(spooled.rsplit("/", 1)[1])
        with pytest.raises(OSError):
            os.fstat(fd)  # closed: the spool is gone
        assert pipes.display(spooled) == spooled
    assert os.listdir(tmp_path) == [] or all(n.startswith(".lark") for n in os.listdir(tmp_path))


def test_spool_that_cannot_be_created_streams_the_input(inputs, monkeypatch) -> None:
    def no_room(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setenv(pipes.SPOOL_MEMORY_ENV, "0")
    monkeypatch.setattr(tempfile, "TemporaryFile", no_room)
    warnings: list[str] = []
    data = inputs["audit"].read_bytes()
    with os_pipe([data]) as path, pipes.prepared([path], lambda k, gz: True, warnings.append) as paths:
        assert paths == [path] and pipes.registered(path)
        assert _read_all(pipes.open_stream(path)) == data
    assert len(warnings) == 1 and "No space left on device" in warnings[0]


def test_nested_prepare_leaves_the_outer_inputs_alone(inputs) -> None:
    data = inputs["ndjson"].read_bytes()[:10_000]
    with os_pipe([data]) as path, pipes.prepared([path]) as outer:
        with pipes.prepared(outer) as inner:
            assert inner == outer
        assert pipes.registered(path)
        assert _read_all(pipes.open_stream(path)) == data


def test_scan_census_reads_a_spooled_pipe_twice(inputs, monkeypatch) -> None:
    """Above HOLD_LIMIT, scan's semi-join reads its input twice: a spooled pipe can be, and the
    documents are those of the same bytes in a regular file."""
    from auditeql.rules import load_rules
    from auditeql.rules.pushdown import Deferred, PushDown

    monkeypatch.setattr(files, "HOLD_LIMIT", 1000)
    monkeypatch.setenv(pipes.SPOOL_MEMORY_ENV, str(1 << 16))
    census_runs: list[list[str]] = []
    real_census = files._census

    def counting(ordered, *a, **k):
        census_runs.append(list(ordered))
        return real_census(ordered, *a, **k)

    monkeypatch.setattr(files, "_census", counting)
    rules = load_rules((), (), builtin=True)

    def read(paths: list[str]) -> tuple[list, dict]:
        stats: dict = {}
        pd = PushDown.from_rules(rules, defer=True, semijoin=True)
        items = list(files.read_documents(paths, host=_host(), pushdown=pd, stats=stats))
        return [d if d.__class__ is not Deferred else ("deferred", d.pid, d.time_ms) for d in items], stats

    want, want_stats = read([str(inputs["audit.gz"])])
    with os_pipe([inputs["audit.gz"].read_bytes()]) as path:
        got, got_stats = read([path])
    assert len(census_runs) == 2 and census_runs[1][0].startswith("/proc/self/fd/")
    assert got == want
    assert got_stats["semijoin"] == want_stats["semijoin"] and want_stats["semijoin"]["not_needed"] > 0
