"""The one-read sample semi-join (``auditeql.sources.ndjson_semijoin``) against the plain single pass.

Every fast path is compared with ``--semijoin off`` byte for byte (stdout, stderr, exit code):
small block sizes (lines across blocks, a line longer than a block, damaged blocks), the C lines
read back from the file instead of held in memory, the helper process that reads the second half
(a cut inside a file, between files, inside a long line), and a helper that dies.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditeql.eql import compile_query
from auditeql.sources import linescan, ndjson
from auditeql.sources import ndjson_semijoin as nj

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "tests" / "fixtures" / "spec" / "seed-rule.md"

pytestmark = pytest.mark.skipif(linescan._hs is None, reason="Hyperscan (auditeql[fast]) is not installed")

_here = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("aeq_query_semijoin_tests", _here / "test_query_semijoin.py")
sj = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(sj)  # type: ignore[union-attr]


def seed_query() -> str:
    text = SEED.read_text()
    return text[text.index("## Query (verbatim)"):].split("```")[1].strip()


@pytest.fixture
def knobs(monkeypatch: pytest.MonkeyPatch):
    """Set block size, parallelism and the in-memory budget for one comparison."""

    def set_(chunk: int, parallel: bool, hold: int) -> None:
        monkeypatch.setattr(ndjson, "CHUNK_BYTES", chunk)
        monkeypatch.setattr(nj, "PARALLEL_MIN_BYTES", 0 if parallel else 1 << 62)
        monkeypatch.setattr(nj, "_cpus", lambda: 2)
        monkeypatch.setattr(nj, "HOLD_BYTES", hold)

    return set_


def same_as_single_pass(query: str, *files: str, extra: tuple[str, ...] = ()) -> tuple[int, bytes, bytes]:
    off = sj.run("--semijoin", "off", *extra, query, *files)
    for mode in ("auto", "force"):
        got = sj.run("--semijoin", mode, *extra, query, *files)
        assert got[0] == off[0], (mode, got[2], off[2])
        assert got[1] == off[1], mode
        assert got[2] == off[2], (mode, got[2], off[2])
    return off


def damaged_copies(tmp_path: Path, copies: int) -> tuple[Path, Path]:
    """Two files of the replicated corpus with damage, blank lines and a very long line in them."""
    lines = sj.replicated(tmp_path, copies).read_bytes().splitlines(keepends=True)
    long_line = b'{"process":{"name":"bash","pid":1,"args":["' + b"x" * 20000 + b'"]},"event":{"category":"process"}}\n'
    third = len(lines) // 3
    a = tmp_path / "a.ndjson"
    b = tmp_path / "b.ndjson"
    a.write_bytes(b"".join(lines[:third]) + b"not json\n" + long_line + b"".join(lines[third : 2 * third]))
    b.write_bytes(
        b"\n"
        + b"".join(lines[2 * third : -3])
        + b'{"truncated": \n   \n[1, 2]\n'
        + b"".join(line.rstrip(b"\n") + b"\r\n" for line in lines[-3:-1])
        + lines[-1].rstrip(b"\n")  # no final newline
    )
    return a, b


@pytest.mark.parametrize(
    ("chunk", "parallel", "hold"),
    [
        (4 << 20, False, 1 << 30),  # the real block size: every line in one block
        (65536, False, 1 << 30),
        (65536, True, 1 << 30),  # a helper reads the second half
        (65536, True, 0),  # and C lines are read back from the files
        (7919, True, 50000),  # lines across blocks; some held, the rest read back
        (4096, True, 1 << 30),  # the 20 kB line spans several blocks
    ],
)
def test_damaged_files_identical(tmp_path: Path, knobs, chunk: int, parallel: bool, hold: int) -> None:
    a, b = damaged_copies(tmp_path, 2)
    knobs(chunk, parallel, hold)
    code, out, err = same_as_single_pass(seed_query(), str(a), str(b), extra=("--size", "1000"))
    assert code == 0
    assert len(out.splitlines()) >= 2 * 9 - 2
    assert b"not valid JSON" in err and b"a document must be a JSON object" in err


def test_paths_really_taken(tmp_path: Path, knobs) -> None:
    """The one-read path, its helper and the read-back are really used on these inputs."""
    a, b = damaged_copies(tmp_path, 2)
    knobs(65536, True, 0)
    plan = compile_query(seed_query())
    run_stats: dict = {}
    stats = ndjson.NdjsonStats()
    messages: list[str] = []
    source = nj.semijoin_source(plan, [str(a), str(b)], stats, "auto", run_stats, report=messages.append)
    assert source is not None
    n = sum(1 for _ in source)
    info = run_stats["semijoin"]
    assert info["parallel"] is True and info["key_condition"] is True
    assert info["deferred"] > 10 * n > 0  # far more C lines remembered than documents handed out
    assert stats.bad_lines == 3 and len(messages) == 3
    mine, theirs = nj.split_ranges([str(a), str(b)])
    assert mine and theirs and mine[-1][0] <= theirs[0][0]
    # --jobs 1: one process, same answer
    run_stats = {}
    source = nj.semijoin_source(plan, [str(a), str(b)], ndjson.NdjsonStats(), "auto", run_stats,
                                report=lambda m: None, jobs=1)
    assert source is not None and sum(1 for _ in source) == n and run_stats["semijoin"]["parallel"] is False
    one = sj.run("--jobs", "1", "--size", "1000", seed_query(), str(a), str(b))
    two = sj.run("--jobs", "2", "--size", "1000", seed_query(), str(a), str(b))
    assert one == two and one[0] == 0


def test_helper_that_dies_changes_nothing(tmp_path: Path, knobs, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = damaged_copies(tmp_path, 2)
    knobs(65536, True, 1 << 30)
    real = nj._helper_main

    def dies_at_once(*args: object) -> None:
        raise RuntimeError("helper failure")

    def dies_later(*args: object) -> None:
        def boom(*_a: object) -> None:
            raise RuntimeError("helper failure")

        nj._key_lines = boom  # (in the helper process only: it is a fork)
        real(*args)  # type: ignore[arg-type]

    for fake in (dies_at_once, dies_later):
        monkeypatch.setattr(nj, "_helper_main", fake)
        code, out, _err = same_as_single_pass(seed_query(), str(a), str(b), extra=("--size", "1000"))
        assert code == 0 and len(out.splitlines()) >= 2 * 9 - 2


@pytest.mark.parametrize("parallel", [False, True])
def test_terms_spelled_with_escapes(tmp_path: Path, knobs, parallel: bool) -> None:
    """A rare or common filter's term spelled with ``\\u`` escapes is still found (the escape guard)."""
    knobs(4096, parallel, 1 << 30)
    lines = []
    for i in range(400):  # bulk: common-filter lines of other pids, in several blocks
        lines.append(f'{{"@timestamp":1,"event":{{"category":"process"}},"process":{{"name":"bash","pid":{1000 + i}}}}}')
    lines[50] = ('{"@timestamp":2,"event":{"category":"network","action":"conn\\u0065ct"},'
                 '"process":{"name":"sh","pid":5}}')
    lines[300] = '{"@timestamp":3,"event":{"category":"process"},"process":{"name":"b\\u0061sh","pid":5}}'
    lines[320] = '{"@timestamp":4,"event":{"category":"network","action":"connect"},"process":{"name":"x","pid":1100}}'
    path = tmp_path / "escaped.ndjson"
    path.write_text("\n".join(lines) + "\n")
    code, out, _err = same_as_single_pass(sj.QUERIES[0], str(path), extra=("--size", "100"))
    assert code == 0
    assert len(out.splitlines()) == 2  # pid 5 (both escaped) and pid 1100


def test_every_line_of_a_damaged_block_is_parsed(tmp_path: Path, knobs) -> None:
    """A block with a line not ending in ``}`` is read line by line, so an invalid line that looks like an
    object and holds no term of any filter is reported too (as the single pass reports it)."""
    knobs(4 << 20, False, 1 << 30)
    lines = sj.replicated(tmp_path, 1).read_bytes().splitlines(keepends=True)[:600]
    path = tmp_path / "damaged.ndjson"
    path.write_bytes(b"".join(lines[:300]) + b'{"x": 1,}\nnot json\n' + b"".join(lines[300:]))
    code, _out, err = same_as_single_pass(seed_query(), str(path), extra=("--size", "1000"))
    assert code == 0
    assert b"damaged.ndjson:301: skipped: not valid JSON" in err and b"damaged.ndjson:302:" in err


def test_split_ranges_cover_every_block(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ndjson, "CHUNK_BYTES", 100)
    monkeypatch.setattr(nj, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(nj, "_cpus", lambda: 2)
    files = []
    for i, size in enumerate([250, 0, 1000, 99]):
        f = tmp_path / f"f{i}"
        f.write_bytes(b"x" * size)
        files.append(str(f))
    mine, theirs = nj.split_ranges(files)
    blocks = {(fi, k) for fi, n in enumerate([3, 0, 10, 1]) for k in range(n)}

    def cover(ranges: list) -> set:
        n = [3, 0, 10, 1]
        return {(fi, k) for fi, first, stop in ranges for k in range(first, n[fi] if stop is None else stop)}

    assert cover(mine) | cover(theirs) == blocks and not cover(mine) & cover(theirs)
    assert len(cover(mine)) == 7  # half of 14 blocks
    monkeypatch.setattr(nj, "_cpus", lambda: 1)
    assert nj.split_ranges(files)[1] == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    docs=sj.documents(),
    q=st.sampled_from(sj.QUERIES),
    chunk=st.sampled_from([64, 200, 1000, 1 << 20]),
    parallel=st.booleans(),
    hold=st.sampled_from([0, 300, 1 << 30]),
)
def test_generated_identical_at_any_block_size(
    tmp_path: Path, knobs, docs: list[str], q: str, chunk: int, parallel: bool, hold: int
) -> None:
    knobs(chunk, parallel, hold)
    half = len(docs) // 2
    a = tmp_path / "a.ndjson"
    b = tmp_path / "b.ndjson"
    a.write_text("".join(d + "\n" for d in docs[:half]))
    b.write_text("".join(d + "\n" for d in docs[half:]))
    same_as_single_pass(q, str(a), str(b), extra=("--size", "100"))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
