"""The sample semi-join of ``auditeql query`` is exact: byte-identical output with and without it.

``--semijoin off`` is the single pass (every filter's candidate lines parsed once); ``auto`` parses
the rare filters' lines and the common filters' lines only where they can hold a key the rare
filters produced (``auditeql.sources.ndjson_semijoin``, uncompressed files only); ``force`` does so
whenever a sample has two filters or more (so that small generated inputs take that path too).
Compared: stdout bytes, stderr bytes (bad-line messages once each, in input order) and the exit
code. ``test_query_onepass.py`` adds block boundaries, the helper process and the read-back.
"""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditeql.eql import compile_query
from auditeql.sources import keyscan, linescan

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "udp-shells-1" / "auditbeat_oracle.ndjson.gz"
SEED = ROOT / "tests" / "fixtures" / "spec" / "seed-rule.md"

pytestmark = pytest.mark.skipif(linescan._hs is None, reason="Hyperscan (auditeql[fast]) is not installed")


def seed_query() -> str:
    text = SEED.read_text()
    return text[text.index("## Query (verbatim)"):].split("```")[1].strip()


def run(*args: str) -> tuple[int, bytes, bytes]:
    from click.testing import CliRunner

    from auditeql.cli import main

    r = CliRunner().invoke(main, ["query", *args])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout_bytes, r.stderr_bytes


def both_ways(query: str, *files: str, extra: tuple[str, ...] = ()) -> tuple[int, bytes, bytes]:
    """Run with the semi-join (auto and forced) and without; all must agree byte for byte."""
    off = run("--semijoin", "off", *extra, query, *files)
    for mode in ("auto", "force"):
        got = run("--semijoin", mode, *extra, query, *files)
        assert got[0] == off[0], (mode, got[2], off[2])
        assert got[1] == off[1], mode
        assert got[2] == off[2], mode
    return off


def replicated(tmp_path: Path, copies: int) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("aeq_bench_data", ROOT / "benchmarks" / "data.py")
        data = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(data)  # type: ignore[union-attr]
    finally:
        sys.path.pop(0)
    path = tmp_path / f"replicated-{copies}x.ndjson"
    with path.open("wb") as out:
        for line in data.replicate_ecs(copies):
            out.write(line if line.endswith(b"\n") else line + b"\n")
    return path


# -- the real recording ------------------------------------------------------------------------


def test_corpus_gz_identical(tmp_path: Path) -> None:
    # the vendored oracle as it is (no host fields: the seed rule's sample is empty on it) ...
    code, out, _err = both_ways(seed_query(), str(CORPUS), extra=("--size", "1000"))
    assert code == 0 and out == b""
    # ... and with Auditbeat's host block (benchmarks/data.py), gzip-compressed
    gz = tmp_path / "oracle-with-host.ndjson.gz"
    gz.write_bytes(gzip.compress(replicated(tmp_path, 1).read_bytes()))
    code, out, _err = both_ways(seed_query(), str(gz), extra=("--size", "1000"))
    assert code == 0
    assert len(out.splitlines()) == 9  # the corpus README's nine alerts


def test_replicated_copies_identical_and_semijoin_taken(tmp_path: Path) -> None:
    path = replicated(tmp_path, 4)
    code, out, _err = both_ways(seed_query(), str(path), extra=("--size", "1000"))
    assert code == 0
    assert len(out.splitlines()) == 4 * 9
    # auto really takes the semi-join on this data (else the test above compares nothing)
    from auditeql.sources.ndjson import NdjsonStats
    from auditeql.sources.ndjson_semijoin import semijoin_source

    run_stats: dict = {}
    plan = compile_query(seed_query())
    source = semijoin_source(plan, [str(path)], NdjsonStats(), "auto", run_stats)
    assert source is not None
    n = sum(1 for _ in source)
    info = run_stats["semijoin"]
    assert info["key_condition"] is True and info["keys"] > 0
    assert 0 < n < 0.1 * 4 * 3144  # far fewer documents than the single pass hands over


def test_several_files_bad_lines_and_max_samples(tmp_path: Path) -> None:
    path = replicated(tmp_path, 2)
    lines = path.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    a = tmp_path / "a.ndjson"
    b = tmp_path / "b.ndjson.gz"
    # damage of every kind: not JSON, a truncated line, a blank line, an array, CRLF
    a.write_bytes(b"".join(lines[:half]) + b"not json\n" + lines[half][:50] + b"\n\n[1, 2]\n")
    b.write_bytes(gzip.compress(b"".join(line.rstrip(b"\n") + b"\r\n" for line in lines[half:])))
    missing = str(tmp_path / "missing.ndjson")
    code, out, err = both_ways(seed_query(), str(a), missing, str(b), extra=("--size", "1000",
                                                                              "--max-samples-per-key", "3"))
    assert code == 1  # the missing file
    assert b"not valid JSON" in err and b"missing.ndjson" in err
    assert len(out.splitlines()) >= 2 * 9 - 1


def test_no_key_in_common_gives_empty_answer(tmp_path: Path) -> None:
    path = replicated(tmp_path, 1)
    query = seed_query().replace('auditd.data.a1 == "2"', 'auditd.data.a1 == "no-such-value"')
    code, out, _err = both_ways(query, str(path))
    assert code == 0 and out == b""


# -- generated documents with adversarial spellings of the key ---------------------------------

#: Raw JSON spellings of a pid field's value; several equal 123 once parsed (Python equality).
PID_SPELLINGS = [
    "123", "123.0", "1.23e2", "12300e-2", "122.99999999999999999", "123.00000000000000001", "1.23E+2",
    '"123"', '"\\u0031\\u0032\\u0033"', "[123, 7]", "[7, 123]", "[]", "null", "true", "false", "0", "-0",
    "-0.0", "7", "1234", "12", '"7"', "[[123]]", "{}", "7.5", "[true, 123]",
]
KEY_SPELLINGS = ["nested", "dotted", "escaped", "spaced", "array-of-objects", "missing"]


def pid_fragment(kind: str, value: str) -> tuple[str, str]:
    """(top-level key text, value text) putting ``value`` at process.pid in the ``kind`` spelling."""
    if kind == "nested":
        return '"process"', '{"name":"%s","pid":' + value + "}"
    if kind == "dotted":
        return '"process.pid"', value
    if kind == "escaped":
        return '"process"', '{"name":"%s","p\\u0069d":' + value + "}"
    if kind == "spaced":
        return '"process"', '{ "name" : "%s" , "pid" :\t' + value + " }"
    if kind == "array-of-objects":
        return '"process"', '[{"name":"%s"},{"pid":' + value + "}]"
    return '"process"', '{"name":"%s"}'


@st.composite
def documents(draw: st.DrawFn) -> list[str]:
    n = draw(st.integers(min_value=1, max_value=40))
    out = []
    for i in range(n):
        kind = draw(st.sampled_from(KEY_SPELLINGS))
        value = draw(st.sampled_from(PID_SPELLINGS))
        cat = draw(st.sampled_from(["process", "network"]))
        action = draw(st.sampled_from(["exec", "connect", "other"]))
        name = draw(st.sampled_from(["bash", "sh", "x"]))
        host = draw(st.sampled_from(['"h1"', '"h2"', "1", "true"]))
        ts = draw(st.integers(min_value=0, max_value=5))
        key, val = pid_fragment(kind, value)
        if "%s" in val:
            val = val % name
            proc_extra = ""
        else:
            proc_extra = ',"process.name":"%s"' % name
        bad = draw(st.integers(min_value=0, max_value=30))
        if bad == 0:
            out.append('{"broken": ')
            continue
        out.append(
            '{"@timestamp":%d,"host":{"id":%s},"event":{"category":"%s","action":"%s"},%s:%s%s,"seq":%d}'
            % (ts, host, cat, action, key, val, proc_extra, i)
        )
    return out


QUERIES = [
    # rare: a network connect; common: any shell's process event
    'sample by process.pid [process where process.name : ("bash", "sh")] [network where event.action == "connect"]',
    (
        'sample by host.id, process.pid [process where process.name == "bash"] '
        '[network where event.action == "connect"] [any where event.action == "exec"]'
    ),
    'sample [process where process.name : "sh"] by process.pid [network where event.action == "connect"] by ?process.pid',
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=documents(), q=st.sampled_from(QUERIES), per_key=st.integers(min_value=1, max_value=3))
def test_generated_spellings_identical(tmp_path: Path, docs: list[str], q: str, per_key: int) -> None:
    path = tmp_path / "gen.ndjson"
    path.write_text("\n".join(docs) + "\n")
    both_ways(q, str(path), extra=("--size", "100", "--max-samples-per-key", str(per_key)))


def test_generated_spellings_do_join() -> None:
    """The adversarial spellings are not a vacuous test: some of them do join 123 (and some do not)."""
    from auditeql.engine.keys import make_extractor

    plan = compile_query(QUERIES[0])
    extract = make_extractor(plan.filters[0].keys)
    joined = set()
    for kind in KEY_SPELLINGS:
        for value in PID_SPELLINGS:
            key, val = pid_fragment(kind, value)
            doc = orjson.loads("{%s:%s}" % (key, val.replace("%s", "bash")))
            ks = extract(doc)
            ks = [ks] if type(ks) is tuple else ks or []
            if (123,) in ks:
                joined.add((kind, value))
    assert ("nested", "1.23e2") in joined and ("escaped", "123") in joined and ("dotted", "[7, 123]") in joined
    assert ("nested", "122.99999999999999999") in joined
    assert ("nested", '"123"') not in joined


# -- the raw-line key condition on its own -----------------------------------------------------


@pytest.mark.parametrize("value", [123, 123.0, "abc", "a/b", "é\"\\", 0, 5])
def test_key_scanner_never_misses_a_spelling(value: object) -> None:
    """Every line whose document holds the value (by the engine's equality) is a candidate."""
    from auditeql.engine.keys import make_extractor

    plan = compile_query("sample by process.pid [any where true] [any where true]")
    extract = make_extractor(plan.filters[0].keys)
    scanner = keyscan.key_scanner([(["pid"], {value})])
    assert scanner is not None
    texts = [orjson.dumps(value).decode(), '"123"', "1.23e2", "123.5", "[1, 123]", '"a\\/b"', '"\\u00e9\\"\\\\"',
             "0.0", "-0", "5.000000000000000001", "4.99999999999999999999", '"abc"']
    for kind in KEY_SPELLINGS:
        for text in texts:
            key, val = pid_fragment(kind, text)
            line = ("{%s:%s}" % (key, val.replace("%s", "x"))).encode()
            ks = extract(orjson.loads(line))
            ks = [ks] if type(ks) is tuple else ks or []
            if (value,) in ks:
                assert scanner.may_match(line), line
    # and it does reject: another pid is not a candidate
    assert not scanner.may_match(b"{\"process\":{\"pid\":99}}")


def spellings(v: int) -> list[str]:
    """Raw JSON spellings of a pid value ``v`` (>= 1000): some join ``v`` in the engine, some do not."""
    t = str(v)
    esc = "".join("\\u%04x" % ord(c) for c in t)
    return [
        t, t + ".0", f"{t[0]}.{t[1:]}e{len(t) - 1}", f"{t[0]}.{t[1:]}E+{len(t) - 1}", f"{v * 100}e-2",
        f"{v - 1}.99999999999999999", f"{t}.00000000000000001", f'"{t}"', f'"{esc}"', f"[{t}, 7]", f"[7, {t}]",
        f"[[{t}]]", f"[true, {t}]", "[]", "null", "true", "false", "{}", f"{t}.5", f"{t}4", f"-{t}", f"{v + 1}",
    ]


def test_every_spelling_against_a_rare_match(tmp_path: Path) -> None:
    """Per spelling its own pid ``v``: a rare match with pid ``v``, and a common match spelling ``v`` so.

    A sample exists exactly for the spellings the engine joins with ``v``; the semi-join must keep
    every one of them (a missed spelling drops a whole result line).
    """
    from auditeql.engine.keys import make_extractor

    q = ('sample by host.id, process.pid [process where process.name : ("bash", "sh")] '
         '[network where event.action == "connect"]')
    extract = make_extractor(compile_query(q).filters[0].keys)
    lines = []
    expected = 0
    n = 0
    for kind in KEY_SPELLINGS:
        for j in range(len(spellings(1000))):
            n += 1
            v = 1000 + 7 * n
            key, val = pid_fragment(kind, spellings(v)[j])
            common = '{"@timestamp":%d,"host":{"id":"h"},"event":{"category":"process"},%s:%s}' % (
                n, key, val.replace("%s", "bash") if "%s" in val else val)
            if "%s" not in val:
                common = common[:-1] + ',"process.name":"bash"}'
            rare = ('{"@timestamp":%d,"host":{"id":"h"},"event":{"category":"network","action":"connect"},'
                    '"process":{"name":"sh","pid":%d}}' % (n, v))
            lines += [common, rare] if n % 2 else [rare, common]
            ks = extract(orjson.loads(common))
            ks = [ks] if type(ks) is tuple else ks or []
            expected += any(k == ("h", v) and type(k[1]) is not str for k in ks)
    # bulk: common-filter candidates of other pids, so that the key condition has work to do
    for i in range(3000):
        lines.append('{"@timestamp":1,"host":{"id":"h"},"event":{"category":"process"},'
                     '"process":{"name":"bash","pid":%d}}' % (100000 + i))
    path = tmp_path / "spellings.ndjson"
    path.write_text("\n".join(lines) + "\n")
    code, out, _err = both_ways(q, str(path), extra=("--size", "1000"))
    assert code == 0
    assert len(out.splitlines()) == expected
    assert 20 <= expected < n
