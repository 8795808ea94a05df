"""`scan` and `query` read pipes — stdin, a FIFO path, bash's `<(…)` — exactly as the same bytes in a
file: raw audit and ECS NDJSON, plain and gzip-compressed. Real pipes, real `python -m auditeql.cli`."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from sources.pipe_kit import (
    KINDS,
    env,
    make_inputs,
    normalize_names,
    run_file,
    run_piped,
    seed_query,
)

SCAN = ["scan", "--no-store", "--format", "ndjson", "-q", "--host-id", "h1"]


def query_args() -> list[str]:
    return ["query", seed_query(), "--size", "100"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    return make_inputs(tmp_path_factory.mktemp("pipes"))


@pytest.fixture(scope="module")
def reference(inputs):
    """The output for each (command, data) read from the plain regular file."""
    cache: dict[tuple[str, str], subprocess.CompletedProcess] = {}

    def get(command: str, data: str) -> subprocess.CompletedProcess:
        key = (command, data)
        if key not in cache:
            args = SCAN if command == "scan" else query_args()
            cache[key] = run_file(args, inputs[data])
        return cache[key]

    return get


def _check_reference(command: str, ref: subprocess.CompletedProcess) -> None:
    """The reference itself is the real answer: the 9 scenarios of the recording."""
    assert b"Traceback" not in ref.stderr
    lines = [orjson.loads(x) for x in ref.stdout.splitlines()]
    if command == "scan":
        assert ref.returncode == 1, ref.stderr
        shells = [a for a in lines if a.get("kibana.alert.group.id") == a["kibana.alert.uuid"]]
        assert len(shells) == 9
    else:
        assert ref.returncode == 0, ref.stderr
        assert len(lines) == 9 and all(len(r["events"]) == 3 for r in lines)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("data", ["audit", "ndjson"])
@pytest.mark.parametrize("command", ["scan", "query"])
def test_a_pipe_reads_as_the_file(inputs, reference, command: str, data: str, compressed: bool, kind: str) -> None:
    ref = reference(command, data)
    _check_reference(command, ref)
    args = SCAN if command == "scan" else query_args()
    got = run_piped(kind, args, inputs[data + (".gz" if compressed else "")])
    assert b"Traceback" not in got.stderr
    assert got.returncode == ref.returncode, got.stderr
    assert got.stdout == ref.stdout
    assert got.stderr == ref.stderr  # (no path appears in these runs' messages)


@pytest.mark.parametrize("command,data", [("scan", "audit"), ("query", "ndjson")])
def test_stdin_redirected_from_a_file(inputs, reference, command: str, data: str) -> None:
    """`- < file`: stdin is a regular file, read as that file."""
    args = SCAN if command == "scan" else query_args()
    got = run_piped("stdin-file", args, inputs[data])
    ref = reference(command, data)
    assert (got.returncode, got.stdout, got.stderr) == (ref.returncode, ref.stdout, ref.stderr)


# -- the spool: beyond the in-memory limit, a private file in $TMPDIR, gone afterwards ----------------


def _left_in(spool_dir: Path) -> list[Path]:
    """Files left in ``spool_dir`` (the EQL grammar's parser cache, lark's, lives in $TMPDIR too)."""
    return [p for p in spool_dir.iterdir() if not p.name.startswith(".lark_cache")]


def _spool_fds(pid: int, spool_dir: Path) -> list[os.stat_result]:
    """The unnamed (O_TMPFILE or unlinked) files ``pid`` has open in ``spool_dir``."""
    found = []
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for n in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{n}")
            if target.startswith(str(spool_dir) + "/") and target.endswith(" (deleted)"):
                found.append(os.stat(f"/proc/{pid}/fd/{n}"))
        except OSError:
            continue
    return found


class _HeldFifo:
    """A FIFO whose writer writes everything, then keeps it open until ``release()``."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path = path
        os.mkfifo(path)
        self.go = threading.Event()
        self.wrote = threading.Event()
        self.thread = threading.Thread(target=self._write, args=(data,), daemon=True)
        self.thread.start()

    def _write(self, data: bytes) -> None:
        try:
            with open(self.path, "wb") as fh:
                fh.write(data)
                fh.flush()
                self.wrote.set()
                self.go.wait(120)
        except BrokenPipeError:
            pass

    def release(self) -> None:
        self.go.set()
        self.thread.join(30)


@pytest.mark.parametrize("command,data", [("scan", "audit"), ("query", "ndjson")])
def test_a_pipe_bigger_than_the_memory_limit_is_spooled_privately_and_removed(
    tmp_path: Path, inputs, reference, command: str, data: str
) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    limit = 1 << 16
    assert inputs[data].stat().st_size > 10 * limit
    fifo = _HeldFifo(tmp_path / "in.fifo", inputs[data].read_bytes())
    args = SCAN if command == "scan" else query_args()
    proc = subprocess.Popen([sys.executable, "-m", "auditeql.cli", *args, str(fifo.path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env(TMPDIR=str(spool_dir), AUDITEQL_SPOOL_MEMORY=str(limit)))
    try:
        seen: list[os.stat_result] = []
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline and proc.poll() is None:
            seen = _spool_fds(proc.pid, spool_dir)
            time.sleep(0.02)
        assert seen, "the input was not spooled into $TMPDIR"
        assert all(st.st_mode & 0o777 == 0o600 for st in seen)
        assert seen[0].st_size > limit  # it moved there from memory
        assert _left_in(spool_dir) == []  # unnamed: nothing to leave behind
        fifo.release()
        out, err = proc.communicate(timeout=120)
    finally:
        fifo.release()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ref = reference(command, data)
    assert (proc.returncode, out, err) == (ref.returncode, ref.stdout, ref.stderr)
    assert _left_in(spool_dir) == []


def test_interrupted_while_spooling_leaves_nothing(tmp_path: Path, inputs) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    fifo = _HeldFifo(tmp_path / "in.fifo", inputs["audit"].read_bytes())
    proc = subprocess.Popen([sys.executable, "-m", "auditeql.cli", *SCAN, str(fifo.path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env(TMPDIR=str(spool_dir), AUDITEQL_SPOOL_MEMORY="0"))
    try:
        deadline = time.monotonic() + 60
        while not _spool_fds(proc.pid, spool_dir) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert _spool_fds(proc.pid, spool_dir)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        fifo.release()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert b"Traceback" not in err, err.decode()
    assert _left_in(spool_dir) == []


# -- no room for the spool: read once instead, same results ---------------------------------------------


def _file_size_limit(limit: int):
    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("room", [10, 200_000], ids=["at-once", "midway"])
@pytest.mark.parametrize("command,data", [("scan", "audit"), ("query", "ndjson")])
def test_a_full_disk_mid_spool_keeps_every_byte(
    tmp_path: Path, inputs, reference, command: str, data: str, room: int
) -> None:
    """No room for the spool (a file size limit: the first write fails, or one in the middle is cut
    short): what was copied is read first, then the rest of the pipe; a warning says so."""
    args = SCAN if command == "scan" else query_args()
    got = run_piped("stdin-pipe", args, inputs[data], env(TMPDIR=str(tmp_path), AUDITEQL_SPOOL_MEMORY="0"),
                    preexec=_file_size_limit(room))
    ref = reference(command, data)
    assert (got.returncode, got.stdout) == (ref.returncode, ref.stdout)
    assert b"cannot keep a copy" in got.stderr
    assert b"Traceback" not in got.stderr


# -- bad input through a pipe: the file's messages, under the pipe's name ------------------------------


def _truncated(src: Path, dst: Path) -> Path:
    blob = src.read_bytes()
    dst.write_bytes(blob[: len(blob) // 2])
    return dst


@pytest.mark.parametrize("kind", ["fifo", "procsub", "stdin-pipe"])
def test_truncated_gzip_audit_log_through_a_pipe(tmp_path: Path, inputs, kind: str) -> None:
    bad = _truncated(inputs["audit.gz"], tmp_path / "cut.log.gz")
    ref = run_file(SCAN, bad)
    got = run_piped(kind, SCAN, bad)
    assert b"input cut short" in ref.stderr and b"Traceback" not in got.stderr
    assert got.returncode == ref.returncode and got.stdout == ref.stdout
    assert normalize_names(got.stderr, got.input_name, bad) == normalize_names(ref.stderr, "", bad)


@pytest.mark.parametrize("kind", ["fifo", "procsub", "stdin-pipe"])
def test_bad_ndjson_lines_through_a_pipe(tmp_path: Path, inputs, kind: str) -> None:
    lines = inputs["ndjson"].read_bytes().splitlines(keepends=True)
    lines[3] = b'{"broken": \n'
    lines[10] = b"[1, 2]\n"
    blob = b"".join(lines)
    bad = tmp_path / "bad.ndjson.gz"
    bad.write_bytes(gzip.compress(blob)[:-20])  # and cut short
    for args in (query_args(), ["query", "process where true", "--size", "5"]):
        ref = run_file(args, bad)
        got = run_piped(kind, args, bad)
        assert b"skipped: not valid JSON" in ref.stderr and b"input ends early" in ref.stderr
        assert b"Traceback" not in got.stderr
        assert got.returncode == ref.returncode and got.stdout == ref.stdout
        assert normalize_names(got.stderr, got.input_name, bad) == normalize_names(ref.stderr, "", bad)


@pytest.mark.parametrize("command", ["scan", "query"])
def test_an_empty_pipe_is_an_empty_file(tmp_path: Path, command: str) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    args = SCAN if command == "scan" else query_args()
    ref = run_file(args, empty)
    for kind in ("stdin-pipe", "fifo"):
        got = run_piped(kind, args, empty)
        assert (got.returncode, got.stdout, got.stderr) == (ref.returncode, ref.stdout, ref.stderr)


@pytest.mark.parametrize("command,data", [("scan", "audit"), ("query", "ndjson"), ("query-sample", "ndjson")])
def test_two_fifos_fed_one_after_the_other(tmp_path: Path, inputs, command: str, data: str) -> None:
    """One writer fills the second pipe only once the first is drained (`cat a > f1; cat b > f2`):
    the pipes are read in turn, as `cat f1 f2` would, and give the files' answer."""
    first, second = inputs[data], inputs[data + ".gz"]
    args = {"scan": SCAN, "query": ["query", "any where true", "--size", "100000"], "query-sample": query_args()}[command]
    ref = subprocess.run([sys.executable, "-m", "auditeql.cli", *args, str(first), str(second)],
                         check=False, capture_output=True, timeout=180)
    f1, f2 = tmp_path / "one.fifo", tmp_path / "two.fifo"
    os.mkfifo(f1)
    os.mkfifo(f2)
    writer = subprocess.Popen(["sh", "-c", 'cat "$1" > "$3"; cat "$2" > "$4"', "sh", str(first), str(second), str(f1), str(f2)])
    try:
        got = subprocess.run([sys.executable, "-m", "auditeql.cli", *args, str(f1), str(f2)],
                             check=False, capture_output=True, timeout=180)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert ref.stdout.count(b"\n") >= 9
    assert (got.returncode, got.stdout, got.stderr) == (ref.returncode, ref.stdout, ref.stderr)
