"""Lucene regexp, wildcard and raw-line pre-filter details, one table each."""

from __future__ import annotations

import pytest

from auditeql.eql import EqlError, compile_query
from auditeql.eql.lucene_regex import LuceneRegex, RegexError

REGEX = [
    # (pattern, case-insensitive, value, matches)
    ("cmd", False, "cmd.exe", False),  # anchored
    ("cmd.*", False, "cmd.exe", True),
    ("cmd\\..*", True, "CMD.EXE", True),
    ("a{2,3}", False, "aaa", True),
    ("a{2,3}", False, "aaaa", False),
    ("a{2,}", False, "aaaaaa", True),
    ("(ab){2}", False, "abab", True),
    ("[a-c]+x", False, "abcx", True),
    ("[^a-c]x", False, "dx", True),
    ("[^a-c]x", False, "ax", False),
    ("[A-Z]+", True, "abc", True),
    ("[^A-Z]", True, "a", False),
    ('"a.b"', False, "a.b", True),
    ('"a.b"', False, "axb", False),
    ("<1-10>", False, "7", True),
    ("<1-10>", False, "11", False),
    ("<01-10>", False, "07", True),
    ("@", False, "anything at all", True),
    ("#", False, "", False),
    ("\\d+", False, "123", True),
    ("\\w+\\s\\w+", False, "ab cd", True),
    ("(foo|bar)baz", False, "barbaz", True),
    ("ä+", True, "ÄÄ", False),  # ASCII-only folding
    ("^a$", False, "^a$", True),  # ^ and $ are plain characters in Lucene
    ("a?b+c*", False, "bbb", True),
    (".", False, "😀", True),
    ("", False, "", True),
]


@pytest.mark.parametrize("pattern,ci,value,expected", REGEX)
def test_lucene_regex(pattern: str, ci: bool, value: str, expected: bool) -> None:
    assert LuceneRegex(pattern, ci).fullmatch(value) is expected


@pytest.mark.parametrize("pattern", ["a(b", "a)", "[ab", "a{2", "*a", "a&b", "~a", "<1-x>", "a\\"])
def test_bad_regex(pattern: str) -> None:
    with pytest.raises(RegexError):
        LuceneRegex(pattern)


def test_regex_has_no_catastrophic_backtracking() -> None:
    # exponential for a backtracking engine; linear for the lazy DFA
    assert LuceneRegex("(a+)+b").fullmatch("a" * 5000 + "c") is False
    assert LuceneRegex("(a|a)*(a|a)*b").fullmatch("a" * 5000) is False
    assert compile_query('any where f regex "(x+x+)+y"').filter.predicate({"f": "x" * 3000}) is False


WILDCARDS = [
    # (query, value, matches)
    ('f : "*a*b*c*d*"', "xAxBxCxDx", True),  # many stars: DFA path
    ('f : "*a*b*c*d*"', "xAxBxDxCx", False),
    ('f like "*a*b*c*d*"', "xAxBxCxDx", False),
    ('f : "a?c"', "ABC", True),
    ('f : "a?c"', "AC", False),
    ('f like "a\\\\*"', "a\\bc", True),  # backslash is a literal character, * still a wildcard
    ('f : "x.y"', "X.Y", True),  # '.' is not special
    ('f : ""', "", True),
    ('f : ""', "a", False),
    ('f like~ "İ*"', "i", False),
    ("f : 5", 5, True),  # non-strings: term
    ('f : "5"', 5, True),
    ('f : "5*"', 5, False),  # wildcard queries only match strings
]


@pytest.mark.parametrize("query,value,expected", WILDCARDS)
def test_wildcards(query: str, value: object, expected: bool) -> None:
    assert compile_query(f"any where {query}").filter.predicate({"f": value}) is expected


SEED_FIRST = (
    'process where host.os.type == "linux" and event.action == "executed" and '
    'process.name : ("bash", "python*", "lua*")'
)


@pytest.mark.parametrize(
    "line,may_match",
    [
        (b'{"event":{"category":["process"],"action":"executed"},"process":{"name":"bash"},"host":{"os":{"type":"linux"}}}', True),
        (b'{"event":{"category":["process"],"action":"executed"},"process":{"name":"BaSh"},"host":{"os":{"type":"linux"}}}', True),
        (b'{"event":{"category":["process"],"action":"executed"},"process":{"name":"python3.11"},"host":{"os":{"type":"linux"}}}', True),
        (b'{"event":{"category":["process"],"action":"executed"},"process":{"name":"dash"},"host":{"os":{"type":"linux"}}}', False),
        (b'{"event":{"category":["process"],"action":"connected-to"},"process":{"name":"bash"},"host":{"os":{"type":"linux"}}}', False),
        (b'{"event":{"category":["process"],"action":"executed"},"process":{"name":"bash"},"host":{"os":{"type":"windows"}}}', False),
        # "process" also occurs as a JSON key: the category literal cannot rule this line out
        (b'{"event":{"category":["network"],"action":"executed"},"process":{"name":"bash"},"host":{"os":{"type":"linux"}}}', True),
        (b'{"event":{"category":["network"],"action":"executed"},"name":"bash","host":{"os":{"type":"linux"}}}', False),
        # a \\u escape may spell any character: never skipped
        (b'{"event":{"category":["process"],"action":"executed"},"process":{"name":"\\u0062ash"},"host":{"os":{"type":"linux"}}}', True),
    ],
)
def test_line_filter(line: bytes, may_match: bool) -> None:
    import orjson

    flt = compile_query(SEED_FIRST).filter
    assert flt.line_filter is not None
    assert flt.line_filter(line) is may_match
    if not may_match:  # exactness: a skipped line really cannot match
        assert not flt.predicate(orjson.loads(line))


@pytest.mark.parametrize(
    "query",
    [
        "process where not name == \"x\"",
        "process where pid == 5",  # numbers have several JSON spellings
        'process where name == "1.0"',
        "any where true",
    ],
)
def test_no_literal_when_unsure(query: str) -> None:
    flt = compile_query(query).filter
    if query.startswith("any"):
        assert flt.literals is None and flt.line_filter is None
    else:
        # only the category may be required
        assert flt.literals in (None, frozenset({'"process"'}))


def test_seed_rule_parses_verifies_and_compiles() -> None:
    from pathlib import Path

    from auditeql.eql.plan import SamplePlan

    spec = Path(__file__).resolve().parents[1] / "fixtures" / "spec" / "seed-rule.md"
    if not spec.exists():
        pytest.skip("shared spec not available")
    plan = compile_query(spec.read_text().split("```")[1])
    assert isinstance(plan, SamplePlan)
    assert [f.category for f in plan.filters] == ["process", "process", "network"]
    for f in plan.filters:
        assert [k.path for k in f.keys] == ["host.id", "process.pid", "process.parent.pid"]
        assert f.line_filter is not None and f.literals
    exec_doc = {
        "host": {"id": "h", "os": {"type": "linux"}},
        "event": {"category": ["process"], "type": ["start"], "action": "executed"},
        "process": {"name": "python3.11", "pid": 2, "parent": {"pid": 1}},
    }
    sock_doc = {**exec_doc, "event": {"category": ["process"]}, "auditd": {"data": {"syscall": "socket", "a1": "2"}}}
    conn_doc = {
        **exec_doc,
        "event": {"category": ["network"], "type": ["start", "connection"], "action": "connected-to"},
        "network": {"direction": "egress"},
        "destination": {"ip": "203.0.113.2"},
    }
    assert [f.predicate(exec_doc) for f in plan.filters] == [True, False, False]
    assert [f.predicate(sock_doc) for f in plan.filters] == [False, True, False]
    assert [f.predicate(conn_doc) for f in plan.filters] == [False, False, True]
    for ip in ("127.0.0.1", "169.254.1.1", "224.0.0.5", "::1"):
        assert not plan.filters[2].predicate({**conn_doc, "destination": {"ip": ip}})
    assert not plan.filters[1].predicate({**sock_doc, "auditd": {"data": {"syscall": "socket", "a1": "80002"}}})
    with pytest.raises(EqlError):
        compile_query(spec.read_text().split("```")[1].replace("==", "=", 1))
