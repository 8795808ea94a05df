"""DuckDB on NDJSON reads lines as the Python engine does: raw-line pre-filter, input order, bad JSON.

The DuckDB back end tests each raw line against the query's terms in SQL before parsing it
(:func:`auditeql.scale.inputs.line_condition`) and numbers lines before that test. The reference
here is the Python engine over the documents the Python NDJSON reader reads from the *same
files* — written with ``\\uXXXX`` and ``\\/`` escapes, odd whitespace, dotted keys, bad and
truncated lines, several files, gzip with and without a ``.gz`` name.
"""

from __future__ import annotations

import gzip
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scale_helpers import seed_query
from scale_strategies import documents, event_queries, sample_queries, sequence_queries

from auditeql.engine import run_batch
from auditeql.eql import EqlError, compile_query
from auditeql.eql.plan import QueryOptions, plan_filters
from auditeql.scale import duckdb as sdb
from auditeql.scale.backend import RunStats
from auditeql.scale.dialect import DUCKDB
from auditeql.scale.inputs import line_condition
from auditeql.sources.ndjson import read_ndjson

duckdb = pytest.importorskip("duckdb")

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------ a JSON writer with choices
def _str(s: str, rnd: random.Random, escape: float, slash: bool) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if rnd.random() < escape:
            if o > 0xFFFF:  # a surrogate pair, as JSON spells astral characters
                o -= 0x10000
                out.append(f"\\u{0xD800 + (o >> 10):04x}\\u{0xDC00 + (o & 0x3FF):04X}")
            else:
                out.append(("\\u%04x" if rnd.random() < 0.5 else "\\u%04X") % o)
        elif ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "/" and slash:
            out.append("\\/")
        elif o < 0x20:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def spell(value: Any, rnd: random.Random, escape: float = 0.0, slash: bool = False, ws: str = "") -> str:
    """JSON text for ``value``: each string character escaped as ``\\uXXXX`` with probability
    ``escape`` (keys included), ``/`` as ``\\/`` when ``slash``, ``ws`` around tokens, keys in a
    shuffled order."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        body = ",".join(
            f"{ws}{_str(k, rnd, escape, slash)}{ws}:{ws}{spell(v, rnd, escape, slash, ws)}{ws}" for k, v in items
        )
        return "{" + body + "}"
    if isinstance(value, list):
        return "[" + ",".join(ws + spell(v, rnd, escape, slash, ws) + ws for v in value) + "]"
    if isinstance(value, str):
        return _str(value, rnd, escape, slash)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return repr(value) if isinstance(value, float) else str(value)


def _corrupt(text: str, how: str) -> str:
    """A line the Python reader refuses but that still holds the document's terms."""
    if how == "nan":
        return '{"x":NaN,' + text[1:] if text != "{}" else '{"x":NaN}'
    if how == "infinity":
        return text[:-1] + (',' if text != "{}" else "") + '"y":-Infinity}'
    if how == "comma":
        return text[:-1] + ",}" if text != "{}" else "{,}"
    if how == "formfeed":
        return "\x0c" + text
    if how == "overflow":
        return text[:-1] + (',' if text != "{}" else "") + '"z":1e400}'
    if how == "deep":
        return text[:-1] + (',' if text != "{}" else "") + '"d":' + "[" * 1100 + "]" * 1100 + "}"
    if how == "truncated":
        return text[: max(1, len(text) // 2)]
    if how == "two":
        return text + " " + text
    if how == "bom":
        return "\ufeff" + text
    raise AssertionError(how)


_BAD = ["", "   ", "{broken", "[1, 2]", '"text"', "null", "{}", '{"a":\r1}', "\t"]
_CORRUPTIONS = ["nan", "infinity", "comma", "formfeed", "overflow", "deep", "truncated", "two", "bom"]


@st.composite
def ndjson_lines(draw: Any) -> list[str]:
    docs = draw(st.lists(documents(), max_size=20))
    rnd = random.Random(draw(st.integers(0, 2**32)))
    escape = draw(st.sampled_from([0.0, 0.0, 0.2, 1.0]))
    lines = []
    for doc in docs:
        text = spell(doc, rnd, escape if rnd.random() < 0.7 else 0.0, rnd.random() < 0.3,
                     rnd.choice(["", "", " ", "\t", " \r "]))
        r = rnd.random()
        if r < 0.15:
            text = _corrupt(text, rnd.choice(_CORRUPTIONS))
        elif r < 0.25:
            lines.append(rnd.choice(_BAD))
        lines.append(text + ("\r" if rnd.random() < 0.1 else ""))
    return lines


_FIRST = '{{"@timestamp":"2026-11-29T14:07:50Z","event":{{"category":"process"}},"file":{}}}'


def write_files(tmp: Path, lines: list[str], cuts: list[int], gz: list[str]) -> list[str]:
    """``lines`` split at ``cuts`` into files; ``gz[i]``: "plain", "gz" or "gz-noext"."""
    bounds = [0, *sorted(c % (len(lines) + 1) for c in cuts), len(lines)]
    paths = []
    for i in range(len(bounds) - 1):
        # every file starts with a document: a file whose first line is not a JSON object is
        # taken for a raw audit log by the input sniffing (inputs.sniff, as `scan` does)
        part = [_FIRST.format(i), *lines[bounds[i] : bounds[i + 1]]]
        data = "".join(line + "\n" for line in part).encode("utf-8", "surrogatepass")
        kind = gz[i % len(gz)]
        path = tmp / (f"f{i}.ndjson.gz" if kind == "gz" else f"f{i}.ndjson")
        path.write_bytes(gzip.compress(data) if kind.startswith("gz") else data)
        paths.append(str(path))
    return paths


def python_reference(plan: Any, paths: list[str], options: QueryOptions) -> list:
    """The Python engine over what the Python NDJSON reader reads from the files."""
    docs = list(read_ndjson(paths, report=lambda _msg: None))
    return run_batch(plan, docs, options)


def _plan(text: str) -> Any:
    try:
        return compile_query(text)
    except EqlError:
        return None


_CI_QUERIES = st.sampled_from([
    'process where process.name : "BASH"',
    'any where process.name : ("b*", "PY*")',
    'any where process.name like~ "b?sh"',
    'any where stringContains~(custom.tag, "B")',
    'any where startsWith~(process.name, "İB")',
    'process where process.name in~ ("ßh", "İbash", "python3")',
    'any where event.action == "executed" and host.os.type : "LINUX"',
    'network where destination.ip == "10.0.0.1" or process.name == "nc"',
    "sample by host.id [process where process.name : \"bash\"] [any where custom.tag : \"b\"]",
])
QUERIES = st.one_of(_CI_QUERIES, event_queries(), sample_queries(), sequence_queries())
OPTIONS = st.builds(QueryOptions, size=st.sampled_from([2, 10, 50]), max_samples_per_key=st.sampled_from([1, 2]))
GZ = st.lists(st.sampled_from(["plain", "gz", "gz-noext"]), min_size=1, max_size=3)


@SETTINGS
@given(ndjson_lines(), QUERIES, OPTIONS, st.lists(st.integers(0, 40), max_size=2), GZ)
def test_raw_lines_equal_python_reader(lines: list[str], text: str, options: QueryOptions,
                                       cuts: list[int], gz: list[str]) -> None:
    plan = _plan(text)
    if plan is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_files(Path(tmp), lines, cuts, gz)
        expected = python_reference(plan, paths, options)
        got = sdb.run(plan, paths, options)
    assert got == expected, f"query: {text}"


@SETTINGS
@given(ndjson_lines(), QUERIES)
def test_line_condition_keeps_every_line_a_filter_matches(lines: list[str], text: str) -> None:
    """The SQL test alone: true for every raw line whose document some filter matches."""
    plan = _plan(text)
    if plan is None:
        return
    cond = line_condition(plan, DUCKDB, "line")
    if cond is None:
        return
    con = duckdb.connect()
    import orjson

    for line in lines:
        try:
            doc = orjson.loads(line.encode("utf-8", "surrogatepass"))
        except (orjson.JSONDecodeError, UnicodeEncodeError):
            continue
        if not isinstance(doc, dict) or not any(f.predicate(doc) for f in plan_filters(plan)):
            continue
        (kept,) = con.execute(f"SELECT {cond} FROM (SELECT $1::VARCHAR AS line)", [line]).fetchone()
        assert kept, f"query {text!r} matches {line!r} but the SQL line test drops it"


# ------------------------------------------------------------------ deterministic cases
def _write(path: Path, lines: list[str], gz: bool = False) -> str:
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return str(path)


def _doc(n: int, **fields: Any) -> dict[str, Any]:
    return {"@timestamp": "2026-11-29T14:07:54.517Z", "event": {"category": "process"}, "n": n, **fields}


def test_escaped_and_dotted_spellings_match(tmp_path: Path) -> None:
    """``\\u0062ash``, ``\\/``, a dotted key and mixed case all reach the engine; a term inside
    another field is kept by the line test and then rejected by the condition."""
    rnd = random.Random(1)
    lines = [
        spell(_doc(1, process={"name": "bash"}), rnd, escape=1.0),
        '{"@timestamp":"2026-11-29T14:07:54.517Z","event.category":"process","process.name":"BaSh","n":2}',
        spell(_doc(3, process={"name": "x"}, user={"name": "bash"}), rnd),
        spell(_doc(4, process={"name": "/bin/bash"}), rnd, slash=True),
        spell(_doc(5, process={"name": "BASH"}), rnd, escape=0.5),
        spell(_doc(6, process={"name": "zsh"}), rnd),
    ]
    path = _write(tmp_path / "a.ndjson", lines)
    q = 'process where process.name : ("bash", "/bin/bash")'
    got = sdb.run(q, [path], QueryOptions(size=20))
    assert [d["n"] for d in got] == [1, 2, 4, 5]
    assert got == python_reference(compile_query(q), [path], QueryOptions(size=20))


def test_dotted_key_spelled_with_escapes_is_decided_by_python(tmp_path: Path) -> None:
    """``{"\\u0063ustom\\u002etag": 0}`` is the dotted key ``custom.tag`` once decoded; the
    raw-text check for dotted keys missed it, so SQL said ``custom.tag == null`` (found by
    hypothesis: the Python engine reads the dotted key and says no)."""
    lines = [
        '{"@timestamp":"2026-11-29T14:07:54.517Z","n":1,"\\u0063ustom\\u002etag":0}',
        '{"@timestamp":"2026-11-29T14:07:55.517Z","n":2,"custo\\u006d.tag":0}',
        '{"@timestamp":"2026-11-29T14:07:56.517Z","n":3,"custom":{"tag":null}}',
        '{"@timestamp":"2026-11-29T14:07:57.517Z","n":4,"other":"x"}',
    ]
    path = _write(tmp_path / "k.ndjson", lines)
    for q in ("any where custom.tag == null", "any where custom.tag == 0"):
        got = sdb.run(q, [path], QueryOptions(size=20))
        assert got == python_reference(compile_query(q), [path], QueryOptions(size=20)), q
    assert [d["n"] for d in sdb.run("any where custom.tag == 0", [path], QueryOptions(size=20))] == [1, 2]


def test_input_order_survives_the_line_filter(tmp_path: Path) -> None:
    """Equal timestamps: results come in file order, then line order of the original files
    (skipped lines in between and across files, gzip with and without a .gz name)."""
    files = []
    n = 0
    for i, gz in enumerate([False, True, True]):
        lines = []
        for j in range(30):
            n += 1
            name = "nc" if j % 7 == 3 else "cron"
            lines.append(spell(_doc(n, process={"name": name}), random.Random(n)))
            if j % 5 == 0:
                lines.append("")
        path = tmp_path / (f"p{i}.ndjson.gz" if gz and i == 1 else f"p{i}.ndjson")
        files.append(_write(path, lines, gz=gz))
    q = 'process where process.name == "nc"'
    for pipe in ("", " | tail 4", " | head 5"):
        got = sdb.run(q + pipe, files, QueryOptions(size=100))
        expected = python_reference(compile_query(q + pipe), files, QueryOptions(size=100))
        assert [d["n"] for d in got] == [d["n"] for d in expected]
        assert got
    assert [d["n"] for d in sdb.run(q, files, QueryOptions(size=100))] == [k for k in range(1, 91) if (k - 1) % 30 % 7 == 3]


def test_lenient_json_lines_are_skipped_as_python_skips_them(tmp_path: Path) -> None:
    """DuckDB reads NaN, trailing commas, 1e400, form feeds and deep nesting; Python does not."""
    good = spell(_doc(0, process={"name": "bash"}), random.Random(0))
    lines = [_corrupt(good.replace('"n":0', f'"n":{i + 1}'), how) for i, how in enumerate(_CORRUPTIONS)]
    lines.append(good)
    path = _write(tmp_path / "lenient.ndjson", lines)
    for q in ('process where process.name == "bash"', "process where true"):
        stats = RunStats()
        got = sdb.run(q, [path], QueryOptions(size=50), stats=stats)
        assert [d["n"] for d in got] == [0]
        assert got == python_reference(compile_query(q), [path], QueryOptions(size=50))


def test_truncated_gzip_is_read_as_python_reads_it(tmp_path: Path) -> None:
    """A damaged .gz stops DuckDB's reader: the run falls back to the Python reader, which keeps
    every line before the damage (and says so in RunStats.notes)."""
    lines = [spell(_doc(i, process={"name": "bash" if i % 2 else "cron"}), random.Random(i)) for i in range(4000)]
    data = gzip.compress("".join(line + "\n" for line in lines).encode())
    path = tmp_path / "cut.ndjson.gz"
    path.write_bytes(data[: len(data) // 2])
    q = 'process where process.name == "bash" | tail 3'
    stats = RunStats()
    got = sdb.run(q, [str(path)], QueryOptions(size=10), stats=stats)
    expected = python_reference(compile_query(q), [str(path)], QueryOptions(size=10))
    assert got == expected and len(got) == 3
    assert any("read in Python" in n for n in stats.notes)


def test_only_candidate_lines_are_kept(oracle_docs: list[dict[str, Any]], tmp_path: Path) -> None:
    """The point of it all: for the seed rule most lines of the recording never reach the JSON
    functions, and the samples are the Python engine's."""
    import orjson

    path = tmp_path / "oracle.ndjson"
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in oracle_docs))
    plan = compile_query(seed_query())
    backend = sdb.DuckDBBackend()
    backend.use_paths([str(path)], plan=plan)
    (kept,) = backend.rows("SELECT count(*) FROM aeq_lines")[0]
    assert 0 < kept < len(oracle_docs) // 2
    options = QueryOptions(size=100)
    assert backend.run(plan, options) == run_batch(plan, oracle_docs, options)


def test_mixed_ndjson_and_audit_logs_keep_the_order_given() -> None:
    """A raw audit log and an NDJSON export of the same events (equal timestamps): documents
    come in the order the files were given, whichever kind comes first."""
    from scale_helpers import CORPUS

    from auditeql.scale.inputs import documents as read_inputs

    audit, nd = CORPUS / "audit.log.gz", CORPUS / "auditbeat_oracle.ndjson.gz"
    if not audit.exists() or not nd.exists():
        pytest.skip(f"the recording is not at {CORPUS} (set AUDITEQL_CORPUS)")
    q = compile_query('process where event.action == "executed" | head 40')
    options = QueryOptions(size=40)
    docs = {p: list(read_inputs([p])) for p in (str(audit), str(nd))}
    results = []
    for order in ([str(audit), str(nd)], [str(nd), str(audit)]):
        expected = run_batch(q, docs[order[0]] + docs[order[1]], options)
        got = sdb.run(q, order, options)
        assert got == expected
        results.append(got)
    assert results[0] != results[1]  # the order given decides ties: the check above could fail
