"""Raw audit log or ECS NDJSON: the one rule (sources/sniff.py) every reader uses.

The real recording is cut the ways users cut files (``tail -c``, ``split -b``: the first line
starts in the middle of a document), given a damaged first line (``null``, ``[1]``, a byte-order
mark), or, for the raw audit log, a garbage first line starting with ``{``; every command must
still read the input as what it is, losing only the damaged line. Before this rule, a cut export
was read as a raw audit log and every document in it was silently dropped.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditeql.scale import inputs as scale_inputs
from auditeql.sources import sniff
from auditeql.sources.files import input_kind, read_documents
from sources.pipe_kit import (
    SEED,
    make_inputs,
    normalize_names,
    run_file,
    run_piped,
    seed_query,
)

SCAN = ["scan", "--no-store", "--format", "ndjson", "-q", "--host-id", "h1"]
BOM = b"\xef\xbb\xbf"


def query_args() -> list[str]:
    assert SEED.exists()
    return ["query", seed_query(), "--size", "100"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The recording's NDJSON export and raw log, plain and gzip, and the damaged variants."""
    d = tmp_path_factory.mktemp("kind")
    base = make_inputs(d)
    nd = base["ndjson"].read_bytes()
    lines = nd.splitlines(keepends=True)
    first = lines[0]
    rest = b"".join(lines[1:])
    raw = base["audit"].read_bytes()
    out = dict(base)
    variants = {
        # the first document cut in the middle, as `tail -c` leaves it (it ends in `}}`)
        "cut": first[len(first) // 2 :] + rest,
        "rest": rest,  # the reference: the same file without the cut document
        "null": b"null\n" + rest,
        "array": b"[1]\n" + rest,
        "bom": BOM + nd,  # (the byte-order mark spoils the first document for the NDJSON reader)
        "blank-cut": b"\n  \n" + first[-40:] + rest,
    }
    for name, data in variants.items():
        p = d / f"{name}.ndjson"
        p.write_bytes(data)
        out[name] = p
        gz = d / f"{name}.ndjson.gz"
        gz.write_bytes(gzip.compress(data, 6))
        out[name + ".gz"] = gz
    for name, data in {"garbage": b"{garbage\n" + raw, "garbage-json": b'{"not": "a record"}\n' + raw}.items():
        p = d / f"{name}.log"
        p.write_bytes(data)
        out[name] = p
        gz = d / f"{name}.log.gz"
        gz.write_bytes(gzip.compress(data, 6))
        out[name + ".gz"] = gz
    # split -b: the second piece of the export cut at an arbitrary byte
    piece = d / "piece.ndjson"
    piece.write_bytes(nd[len(nd) // 3 :])
    out["piece"] = piece
    out["piece-ref"] = d / "piece-ref.ndjson"
    out["piece-ref"].write_bytes(nd[len(nd) // 3 :].split(b"\n", 1)[1])
    return out


NDJSON_VARIANTS = ["cut", "null", "array", "bom", "blank-cut", "piece"]
AUDIT_VARIANTS = ["garbage", "garbage-json"]


# -- the rule on bytes ---------------------------------------------------------------------------

RECORD = b"type=SYSCALL msg=audit(1795961274.517:23460): arch=c000003e syscall=59 success=yes exit=0\n"
DOC = b'{"@timestamp":"2026-11-29T14:07:50Z","event":{"category":["process"]}}\n'


@pytest.mark.parametrize(
    "data,want",
    [
        (b"", "empty"),
        (b"\n \r\n\t\n", "empty"),
        (DOC * 3, "ndjson"),
        (b'ss":{"name":"bash"}}\n' + DOC * 2, "ndjson"),
        (b"null\n" + DOC, "ndjson"),
        (b"[1]\n" + DOC, "ndjson"),
        (BOM + DOC * 2, "ndjson"),
        (b"{garbage\n" + RECORD, "audit"),
        (b"{garbage\n" + RECORD * 2 + DOC, "audit"),
        (b"node=web1 " + RECORD + b"node=web1 " + RECORD, "audit"),
        (b"garbage\n" + RECORD, "audit"),
        # no line of either kind, or a tie: the first non-blank byte decides, as before
        (b"{garbage\n", "ndjson"),
        (b"hello\nworld\n", "audit"),
        (DOC + RECORD, "ndjson"),
        (RECORD + DOC, "audit"),
        (b'ss":1}\n' + DOC + RECORD, "audit"),
    ],
)
def test_rule_on_bytes(data: bytes, want: str) -> None:
    assert sniff.kind_of(data, eof=True) == want
    assert sniff.kind_of(gzip.compress(data), eof=True) == want
    # a gzip of two members (`cat a.gz b.gz`) reads as one stream
    half = len(data) // 2
    assert sniff.kind_of(gzip.compress(data[:half]) + gzip.compress(data[half:]), eof=True) == want


def test_early_decision_reads_little() -> None:
    """A slow pipe need not fill the window: DECISIVE lines of one kind settle it."""
    s = sniff.Sniffer()
    kinds = [s.feed(RECORD) for _ in range(sniff.DECISIVE)]
    assert kinds[:-1] == [None] * (sniff.DECISIVE - 1) and kinds[-1] == "audit"


def test_window_bounds_the_look() -> None:
    """Lines past the window do not count: 64 KiB of garbage then documents stays the old rule."""
    junk = (b"x" * 99 + b"\n") * (sniff.WINDOW // 100 + 1)
    assert sniff.kind_of(junk + DOC * 50, eof=True) == "audit"
    assert sniff.kind_of(b"{" + junk + RECORD * 50, eof=True) == "ndjson"


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_verdict_does_not_depend_on_how_bytes_arrive(data: st.DataObject) -> None:
    lines = data.draw(st.lists(st.sampled_from([RECORD, DOC, b"\n", b"{junk\n", b'xx"}}\n', b"null\n", BOM + DOC]),
                               min_size=0, max_size=40))
    blob = b"".join(lines)
    whole = sniff.kind_of(blob, eof=True)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=8)))
    s = sniff.Sniffer()
    got = None
    for a, b in zip([0, *cuts], [*cuts, len(blob)]):
        got = s.feed(blob[a:b])
        if got is not None:
            break
    assert (got or s.finish(eof=True)) == whole
    # line by line, as `files._sniff` looks at a stream
    s = sniff.Sniffer()
    got = None
    for line in blob.splitlines(keepends=True):
        got = s.feed(line)
        if got is not None:
            break
    assert (got or s.finish(eof=True)) == whole


# -- every place that asks -----------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name", NDJSON_VARIANTS[:-1] + AUDIT_VARIANTS)
def test_input_kind_and_scale_sniff_agree(files: dict[str, Path], name: str, gz: bool) -> None:
    path = str(files[name + (".gz" if gz else "")])
    want = "audit" if name in AUDIT_VARIANTS else "ndjson"
    assert input_kind(path) == want
    assert scale_inputs.sniff(path) == ("other" if want == "audit" else "ndjson")


def test_split_piece_is_ndjson(files: dict[str, Path]) -> None:
    assert input_kind(str(files["piece"])) == "ndjson"
    assert scale_inputs.sniff(str(files["piece"])) == "ndjson"


def _docs(path: Path) -> list[bytes]:
    stats: dict = {}
    return [orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for d in read_documents([str(path)], stats=stats)]


@pytest.mark.parametrize("name", ["cut", "cut.gz", "null", "array", "bom.gz", "blank-cut"])
def test_read_documents_loses_only_the_damaged_line(files: dict[str, Path], name: str, capsys) -> None:
    got = _docs(files[name])
    want = _docs(files["rest"])
    assert len(want) == 3143 and got == want
    line = 3 if name == "blank-cut" else 1
    assert f"{name.removesuffix('.gz')}.ndjson{'.gz' if name.endswith('.gz') else ''}:{line}: skipped" in capsys.readouterr().err


def test_piece_of_a_split_export(files: dict[str, Path]) -> None:
    got = _docs(files["piece"])
    assert got and got == _docs(files["piece-ref"])


@pytest.mark.parametrize("name", ["garbage", "garbage.gz", "garbage-json"])
def test_audit_log_under_a_brace_line_is_read_as_audit(files: dict[str, Path], name: str) -> None:
    stats: dict = {}
    got = list(read_documents([str(files[name])], stats=stats))
    assert stats["files"][0]["kind"] == "audit"
    assert stats["skipped"] == {"not-audit": 1}
    ref = list(read_documents([str(files["audit"])]))
    assert len(got) == len(ref) > 1000
    assert got == ref


# -- the commands, as real processes -------------------------------------------------------------

@pytest.fixture(scope="module")
def ran(files: dict[str, Path]):
    cache: dict[tuple[str, str], subprocess.CompletedProcess] = {}

    def run(command: str, name: str) -> subprocess.CompletedProcess:
        key = (command, name)
        if key not in cache:
            args = SCAN if command == "scan" else query_args()
            cache[key] = run_file(args, files[name])
            # (scan exits 1 when it raised alerts, 0 when none)
            assert cache[key].returncode == (1 if command == "scan" else 0), cache[key].stderr.decode()
        return cache[key]

    return run


def _alert_ids(out: bytes) -> list[str]:
    return sorted(orjson.loads(line)["kibana.alert.uuid"] for line in out.splitlines() if line.strip())


@pytest.mark.parametrize("name", ["cut", "cut.gz", "null.gz", "bom", "blank-cut.gz"])
def test_scan_of_a_damaged_export(ran, name: str) -> None:
    ref = ran("scan", "rest")
    got = ran("scan", name)
    assert len(_alert_ids(ref.stdout)) >= 3
    assert got.stdout == ref.stdout
    if name != "null.gz":
        line = b":3:" if name.startswith("blank") else b":1:"
        assert line + b" skipped: not valid JSON" in got.stderr


@pytest.mark.parametrize("name", ["cut", "cut.gz", "array", "bom.gz"])
def test_query_of_a_damaged_export(ran, name: str) -> None:
    ref = ran("query", "rest")
    got = ran("query", name)
    assert len(ref.stdout.splitlines()) >= 3 and all(b'"join_keys"' in line for line in ref.stdout.splitlines())
    assert got.stdout == ref.stdout


def test_query_reports_the_cut_line(files: dict[str, Path]) -> None:
    res = run_file(["query", "any where true", "--size", "5000"], files["cut"])
    assert res.returncode == 0
    assert len(res.stdout.splitlines()) == 3143
    assert b"cut.ndjson:1: skipped: not valid JSON" in res.stderr


@pytest.mark.parametrize("command", ["scan", "query"])
@pytest.mark.parametrize("name", ["garbage", "garbage.gz", "garbage-json"])
def test_commands_read_an_audit_log_under_a_brace_line(ran, command: str, name: str) -> None:
    ref = ran(command, "audit")
    got = ran(command, name)
    assert len(ref.stdout) > 1000
    assert got.stdout == ref.stdout
    assert b"skipped" in got.stderr  # the garbage line is counted, as any bad audit line


def test_normalize_reads_an_audit_log_under_a_brace_line(files: dict[str, Path]) -> None:
    def norm(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "auditeql.cli", "normalize", "--host-id", "h1", "--host-name", "h",
                               str(path)], check=False, capture_output=True, timeout=180)

    ref, got = norm(files["audit"]), norm(files["garbage.gz"])
    assert ref.returncode == got.returncode == 0
    assert len(ref.stdout.splitlines()) > 1000
    assert got.stdout == ref.stdout
    assert b"not-audit" in got.stderr and b"not-audit" not in ref.stderr
    # and an export cut in the middle is recognised as one (not normalized to nothing)
    cut = norm(files["cut.gz"])
    assert cut.stdout == b"" and b"already ECS NDJSON" in cut.stderr


@pytest.mark.parametrize("kind", ["stdin-pipe", "fifo"])
@pytest.mark.parametrize("command", ["scan", "query"])
@pytest.mark.parametrize("name", ["cut", "cut.gz"])
def test_a_cut_export_through_a_pipe(ran, files: dict[str, Path], kind: str, command: str, name: str) -> None:
    ref = ran(command, name)
    args = SCAN if command == "scan" else query_args()
    got = run_piped(kind, args, files[name])
    assert got.returncode == ref.returncode, got.stderr.decode()
    assert got.stdout == ref.stdout == ran(command, "rest").stdout
    assert normalize_names(got.stderr, got.input_name, files[name]) == normalize_names(ref.stderr, "", files[name])


def test_an_audit_log_under_a_brace_line_through_a_pipe(ran, files: dict[str, Path]) -> None:
    got = run_piped("stdin-pipe", SCAN, files["garbage.gz"])
    assert got.returncode == 1 and got.stdout == ran("scan", "audit").stdout


# -- DuckDB --------------------------------------------------------------------------------------

def _matches(result: list) -> list[bytes]:
    return sorted(orjson.dumps([m.join_keys, m.events], option=orjson.OPT_SORT_KEYS) for m in result)


@pytest.mark.parametrize("name", ["cut", "cut.gz", "null"])
def test_duckdb_reads_a_cut_export_as_ndjson(files: dict[str, Path], name: str) -> None:
    duckdb_scale = pytest.importorskip("auditeql.scale.duckdb")
    assert scale_inputs.classify([str(files[name])]).ndjson == (str(files[name]),)
    ref = _matches(duckdb_scale.run(seed_query(), [str(files["rest"])]))
    got = _matches(duckdb_scale.run(seed_query(), [str(files[name])]))
    assert len(ref) >= 3 and got == ref


def test_duckdb_reads_an_audit_log_under_a_brace_line(files: dict[str, Path]) -> None:
    duckdb_scale = pytest.importorskip("auditeql.scale.duckdb")
    assert scale_inputs.classify([str(files["garbage.gz"])]).other == (str(files["garbage.gz"]),)
    ref = duckdb_scale.run(seed_query(), [str(files["audit"])])
    got = duckdb_scale.run(seed_query(), [str(files["garbage.gz"])])
    assert len(ref) >= 3 and len(got) == len(ref)
    assert [m.join_keys for m in got] == [m.join_keys for m in ref]

