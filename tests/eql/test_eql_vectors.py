"""Spec §8.3 (expressions) and §8.4 (functions) vectors, one table row each.

Each row is (vector id, query or expression, expected). Event-query rows run the compiled
predicate over the vector's base events and compare the matching ids; function rows fold a
constant expression with Java semantics.
"""

from __future__ import annotations

import math

import pytest

from auditeql.eql import EqlError, compile_query
from auditeql.eql.compiler import evaluate_constant


def _proc(**fields):
    return {"event": {"category": "process"}, **fields}


# Base events for E01–E13 (all cat: process)
BASE = {
    1: _proc(name="cmd.exe", pid=10, args=["/c", "whoami"]),
    2: _proc(name="CMD.EXE", pid=20),
    3: _proc(pid=30),
    4: _proc(name="cmd*.exe"),
}


def matching(query: str, events: dict) -> list:
    plan = compile_query(query)
    return [i for i, doc in events.items() if plan.filter.predicate(doc)]


EXPRESSION_VECTORS = [
    ("E01", 'process where name == "cmd.exe"', [1]),
    ("E02", 'process where name : "cmd.exe"', [1, 2]),
    ("E03a", 'process where name : "c?d.exe"', [1, 2]),
    ("E03b", 'process where name : "cmd*"', [1, 2, 4]),
    ("E04", 'process where name == "cmd*.exe"', [4]),
    ("E05a", 'process where name like "CMD*"', [2]),
    ("E05b", 'process where name like~ "cmd*"', [1, 2, 4]),
    ("E06", 'process where name in~ ("CMD*.EXE")', [4]),
    ("E07", 'process where name != "cmd.exe"', [2, 3, 4]),
    ("E08a", 'process where not name == "cmd.exe"', [2, 3, 4]),
    ("E08b", 'process where name not in ("cmd.exe")', [2, 3, 4]),
    ("E08c", 'process where not name : "CMD.exe"', [3, 4]),
    ("E09a", "process where length(name) != 7", [4]),
    ("E09b", "process where not (length(name) == 7)", [3, 4]),
    ("E10a", "process where name == null", [3]),
    ("E10b", "process where name != null", [1, 2, 4]),
    ("E11a", 'process where name regex "cmd"', []),
    ("E11b", 'process where name regex "cmd.*"', [1, 4]),
    ("E11c", 'process where name regex~ "cmd\\\\..*"', [1, 2]),
    ("E12a", 'process where args == "whoami"', [1]),
    ("E12b", 'process where args != "whoami"', [2, 3, 4]),
    ("E12c", 'process where args : "/C"', [1]),
    ("E13", "process where not (pid > 15)", [1, 4]),
    ("E21", 'process where name : ("x", "CMD*")', [1, 2, 4]),
]


@pytest.mark.parametrize("vid,query,expected", EXPRESSION_VECTORS, ids=[v[0] for v in EXPRESSION_VECTORS])
def test_expression_vectors(vid: str, query: str, expected: list) -> None:
    assert matching(query, BASE) == expected


@pytest.mark.parametrize(
    "query,expected",
    [("any where 4 / n == 1", [1, 2]), ("any where 4.0 / n == 1", [2])],
)
def test_e14_integer_division(query: str, expected: list) -> None:
    events = {1: {"n": 3}, 2: {"n": 4}, 3: {"n": 5}}
    assert matching(query, events) == expected


@pytest.mark.parametrize("query,expected", [("any where n % 6 == -4", [1]), ("any where n % 6 == 2", [])])
def test_e15_modulo_sign(query: str, expected: list) -> None:
    assert matching(query, {1: {"n": -10}}) == expected


@pytest.mark.parametrize(
    "query,expected",
    [
        ("Process where true", []),
        ("process where true", [1, 2]),
        ("network where true", [2]),
        ("any where true", [1, 2, 3]),
        ('"process" where true', [1, 2]),
    ],
)
def test_e16_event_category(query: str, expected: list) -> None:
    events = {1: {"event": {"category": "process"}}, 2: {"event": {"category": ["process", "network"]}}, 3: {}}
    assert matching(query, events) == expected


def test_e16_event_category_field_is_configurable() -> None:
    plan = compile_query("process where true", event_category_field="kind")
    assert plan.filter.predicate({"kind": "process"})
    assert not plan.filter.predicate({"event": {"category": "process"}})


@pytest.mark.parametrize("query,expected", [("process where ?zz == null", [1, 2, 3, 4]), ("process where ?zz != null", [])])
def test_e17_optional_field_absent_everywhere(query: str, expected: list) -> None:
    assert matching(query, BASE) == expected


def test_e18_unknown_column_is_a_documented_deviation() -> None:
    # ES: "Unknown column [zz]" because zz is mapped in no index. auditeql has no mapping, so an
    # unmapped field is simply missing (docs/deviations.md): the query compiles and matches nothing.
    assert matching("process where zz == 1", BASE) == []


def test_e19_field_to_field_comparison_is_rejected() -> None:
    with pytest.raises(EqlError, match="comparisons against fields") as err:
        compile_query("process where name == other_name")
    assert (err.value.line, err.value.column) == (1, 15)


@pytest.mark.parametrize(
    "query",
    [
        'any where path == "C:\\\\Windows\\\\cmd.exe"',
        'any where path == """C:\\Windows\\cmd.exe"""',
        'any where path : "c:\\\\windows\\\\*"',
    ],
)
def test_e20_escapes(query: str) -> None:
    assert matching(query, {1: {"path": "C:\\Windows\\cmd.exe"}}) == [1]


@pytest.mark.parametrize(
    "query,expected", [("any where name == null", [1]), ('any where name != "x"', [1]), ('any where name : "*"', [])]
)
def test_e22_json_null_is_missing(query: str, expected: list) -> None:
    assert matching(query, {1: {"name": None}}) == expected


@pytest.mark.parametrize(
    "query,expected", [("any where name != null", [1]), ('any where name == ""', [1]), ('any where name : "*"', [1])]
)
def test_e23_empty_string_is_a_value(query: str, expected: list) -> None:
    assert matching(query, {1: {"name": ""}}) == expected


def test_e24_case_folding_is_ascii_only_for_queries_but_unicode_for_scripts() -> None:
    ev = {1: {"name": "ärger"}}
    assert matching('any where name : "ÄRGER"', ev) == []
    assert matching('any where name : "äRGER"', ev) == [1]
    assert matching('any where name like~ "ÄR*"', ev) == []
    assert matching('any where name in~ ("ÄRGER")', ev) == []
    # script-evaluated ~ functions fold full Unicode (Locale.ROOT lower-casing)
    assert matching('any where stringContains~(substring(name, 0), "ÄRG")', ev) == [1]
    assert matching('any where indexOf~(name, "Ä") == 0', ev) == [1]


def test_e25_mixed_type_in_list_is_rejected() -> None:
    with pytest.raises(EqlError, match="mixes types"):
        compile_query('any where pid in (1, "a")')


# ----------------------------------------------------------------------------- §8.4 functions

FUNCTION_VECTORS = [
    ("F02a", 'between(s, "System32\\\\", ".exe")', "cmd"),
    ("F02b", 'between(s, "system32\\\\", ".exe")', ""),
    ("F02c", 'between~(s, "system32\\\\", ".exe")', "cmd"),
    ("F02d", 'between(s, "\\\\", "\\\\")', "Windows"),
    ("F02e", 'between(s, "\\\\", "\\\\", true)', "Windows\\System32"),
    ("F02f", 'between(s, "", ".exe")', "C:\\Windows\\System32\\cmd.exe"),
    ("F02g", 'between(null, "a", "b")', None),
    ("F03a", 'indexOf(d, "d")', 3),
    ("F03b", 'indexOf(d, "D")', None),
    ("F03c", 'indexOf~(d, "D")', 3),
    ("F03d", 'indexOf(d, ".", 10)', 17),
    ("F03e", 'indexOf(d, ".", -6)', 9),
    ("F03f", 'indexOf(d, "z")', None),
    ("F03g", 'indexOf(d, ".", 30)', None),
    ("F03h", 'indexOf(d, "", 10)', 10),
    ("F03i", 'indexOf(d, ".", null)', 9),
    ("F04a", 'substring("hello world", -5, -1)', "worl"),
    ("F04b", 'substring("hello world", 0, 500)', "hello world"),
    ("F04c", 'substring("hello world", -60, 5)', "hello"),
    ("F04d", 'substring("hello world", 6)', "world"),
    ("F04e", 'substring("hello world", 7, 3)', ""),
    ("F05a", 'stringContains("start regsvr32.exe", "regsvr32")', True),
    ("F05b", 'stringContains("", "")', False),
    ("F05c", 'stringContains~("start regsvr32.exe", "Regsvr32")', True),
    ("F06a", 'number("1337")', 1337),
    ("F06b", 'number("42.5")', 42.5),
    ("F06c", 'number("0xdeadbeef")', 3735928559),
    ("F06d", 'number("deadbeef", 16)', 3735928559),
    ("F06e", 'number("052403", 8)', 21763),
    ("F06f", 'number("1e3")', 1000.0),
    ("F06g", 'number("  1337  ")', 1337.0),
    ("F06h", "number(null)", None),
    ("F07a", 'concat("a", "||", 1, "||", true)', "a||1||true"),
    ("F07b", 'concat("a", null)', None),
    ("F07c", "concat(null)", None),
    ("F08a", 'length("😀")', 2),
    ("F08b", 'length("")', 0),
    ("F08c", "length(null)", None),
    ("F09a", "add(2147483647.0, 1)", 2147483648.0),
    ("F09b", "add(null, 1)", None),
    ("F10a", "string(42)", "42"),
    ("F10b", "string(42.5)", "42.5"),
    ("F10c", "string(true)", "true"),
    ("F10d", "string(null)", None),
    ("F11a", 'endsWith("regsvr32.exe", ".EXE")', False),
    ("F11b", 'endsWith~("regsvr32.exe", ".EXE")', True),
    ("F11c", 'endsWith("", "")', True),
    ("F11d", 'startsWith("regsvr32.exe", "")', True),
    ("F12a", "modulo(10, -6)", 4),
    ("F12b", "modulo(-10, -6)", -4),
    ("F12c", "divide(4, 3)", 1),
    ("F12d", "divide(-7, 2)", -3),
    ("F12e", "divide(4.0, 0)", math.inf),
    ("F12f", "-7 / 2", -3),
    ("F01a", 'cidrMatch("10.1.2.3", "10.0.0.0/8")', True),
    ("F01b", 'cidrMatch("10.1.2.3", "192.168.0.0/16", "10.0.0.0/8")', True),
    ("F01c", 'cidrMatch("10.1.2.3", "10.1.2.3")', True),
    ("F01d", 'cidrMatch("10.1.2.3", "::ffff:10.0.0.0/104")', True),
    ("F01e", 'cidrMatch("2001:db8::1", "2001:db8::/32")', True),
    ("F01f", 'cidrMatch("2001:db8::1", "10.0.0.0/8")', False),
]

_S = '"C:\\\\Windows\\\\System32\\\\cmd.exe"'
_D = '"subdomain.example.com"'


@pytest.mark.parametrize("vid,expr,expected", FUNCTION_VECTORS, ids=[v[0] for v in FUNCTION_VECTORS])
def test_function_vectors(vid: str, expr: str, expected: object) -> None:
    text = expr.replace("(s,", f"({_S},").replace("(d,", f"({_D},")
    value = evaluate_constant(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "expr",
    [
        'cidrMatch(ip, "10.0.0.0/33")',  # F01
        "add(2147483647, 1)",  # F09
        "divide(4, 0)",  # F12
        'number("0XFF")',  # F06
        'number("abc")',  # F06
        "2147483647 * 2",
    ],
)
def test_function_errors(expr: str) -> None:
    with pytest.raises(EqlError):
        compile_query(f"any where {expr} == 1" if "cidr" not in expr else f"any where {expr}")


@pytest.mark.parametrize(
    "query,doc,expected",
    [
        ('any where cidrMatch(ip, "10.0.0.0/8")', {"ip": "10.1.2.3"}, True),
        ('any where cidrMatch(ip, "10.1.2.3")', {"ip": "10.1.2.3"}, True),
        ('any where cidrMatch(ip, "::ffff:10.0.0.0/104")', {"ip": "10.1.2.3"}, True),
        ('any where cidrMatch(ip, "2001:db8::/32")', {"ip": "2001:db8::1"}, True),
        ('any where cidrMatch(ip, "10.0.0.0/8")', {"ip": "2001:db8::1"}, False),
        ('any where cidrMatch(ip, "10.0.0.0/8")', {}, False),  # missing ip -> no match
        ('any where cidrMatch(ip, "10.0.0.0/8")', {"ip": "not an ip"}, False),  # cannot be indexed
        ('any where cidrMatch(ip, "10.0.0.0/8")', {"ip": ["192.168.1.1", "10.9.9.9"]}, True),
        ('any where not cidrMatch(ip, "10.0.0.0/8")', {}, True),
        ('any where stringContains(f, "")', {"f": "abc"}, True),  # F05: pushed-down wildcard **
        ('any where stringContains(f, "")', {}, False),
        ('any where startsWith~(f, "ABC")', {"f": "abcdef"}, True),
        ('any where endsWith(f, ".EXE")', {"f": "x.exe"}, False),
        ("any where length(f) > 2", {"f": ["a", "abcd"]}, True),  # script: any value
        ("any where f + 1 != 5", {}, False),  # script null-safe !=
        ("any where not (length(f) > 3)", {}, True),  # not(script) matches missing
    ],
)
def test_functions_on_fields(query: str, doc: dict, expected: bool) -> None:
    assert compile_query(query).filter.predicate(doc) is expected


def test_function_names_are_case_insensitive() -> None:
    plan = compile_query('any where CIDRMATCH(ip, "10.0.0.0/8") and StartsWith~(f, "A")')
    assert plan.filter.predicate({"ip": "10.0.0.1", "f": "abc"})
